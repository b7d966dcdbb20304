"""Stimulus sets: pre-generated references and foveated versions in a content-addressed cache,
manifests with hashes, shard merging, the session-start check, contact sheets.

Heavy imports (torch, PIL) happen inside the functions; ``import stimuli`` stays light.
"""

from stimuli.check import check_stimulus_set
from stimuli.manifest import StimulusSet, merge_manifests

__all__ = ["StimulusSet", "check_stimulus_set", "merge_manifests"]
