"""Where a trial's two images come from: the generation service, a pre-generated stimulus set,
or (after a missed deadline) an image made earlier at the fixation target.

``TrialImageSources`` asks the service for the twin at trial start and for the foveated image at
the measured gaze (or resolves the speculation started at the fixation target), has the next
plan's twin prefetched into the service's cache, and (``on_deadline_miss = "cached"`` only)
keeps deadline-miss stand-ins: foveated images made within ``cache_gaze_tolerance_deg`` of the
target, including requests that finished after their trial gave up on them. A stand-in is shown
only when it was made within ``cache_gaze_tolerance_deg`` of the late trial's measured gaze too.
A request the trial gives up on is cancelled unless it may become a stand-in (``abandon``):
foveated requests run first in, first out, so a late one left running delays the next trial's.
"""

from __future__ import annotations

import math
import time

from generator.errors import FoveaError
from study.generation import GenerationRequest, GenerationResult, GenerationService
from study.procedures import TrialPlan
from study.service.cache import LruCache
from study.service.speculation import gaze_distance_deg

FALLBACKS_KEPT = 256  # deadline-miss stand-ins (one foveated image each)


def request_elapsed_s(ticket) -> float:
    """Seconds since the gaze-contingent request; for a kept speculation, since it was resolved
    (the participant's gaze was measured), not since it started at the fixation target."""
    start = ticket.resolved_s
    if not ticket.reused_speculative or start is None:
        return ticket.elapsed_s()
    end = ticket.finished_s if ticket.finished_s is not None else time.perf_counter()
    return max(0.0, end - start)


def shared_scene(foveated: GenerationResult, reference: GenerationResult) -> str | None:
    """The sha256 of the scene both images were made from (None for models without scenes).

    Raises:
        FoveaError: the two come from different scenes (a stimulus set built with other scenes
            would have been refused at start; this guards the invariant).
    """
    hashes = [(r.sidecar.get("scene") or {}).get("sha256") for r in (foveated, reference)]
    if hashes[0] is not None and hashes[1] is not None and hashes[0] != hashes[1]:
        raise FoveaError(
            f"the foveated image (scene {hashes[0][:12]}...) and its reference (scene "
            f"{hashes[1][:12]}...) come from different scenes"
        )
    return hashes[0] or hashes[1]


class TrialImageSources:
    """The trial's image requests.

    Args:
        protocol: the validated protocol (``[generation]`` settings, conditions).
        service: the started generation service.
        geometry: ``generator.StimulusGeometry`` (degrees -> image pixels).
        stimulus_set: a checked ``stimuli.StimulusSet`` or None: twins come from it, and with
            ``on_deadline_miss = "cached"`` its image at the fixation target stands in for a
            late foveated one.
    """

    def __init__(
        self, *, protocol, service: GenerationService, geometry, stimulus_set=None
    ) -> None:
        self.protocol = protocol
        self.service = service
        self.geometry = geometry
        self.stimulus_set = stimulus_set
        # fallback_key -> (gaze_px the image was made at, GenerationResult); "cached" mode only
        self.fallbacks = LruCache(FALLBACKS_KEPT)
        self._late: list[tuple[tuple, object]] = []  # (key, ticket) given up on, kept running

    # ------------------------------------------------------------------ the twin
    def request_twin(self, plan: TrialPlan):
        """The plan's twin (stimulus set, or the service's cache) or the ticket generating it.

        Returns:
            (twin, None) when it is here at once, else (None, ticket).
        """
        from generator.layout import LayoutSpec

        twin = self._set_image(self._set_twin_entry((plan.seed, plan.conditioning)))
        if twin is not None:
            return twin, None
        ticket = self.service.submit(
            GenerationRequest(
                kind="full",
                seed=plan.seed,
                conditioning=plan.conditioning,
                spec=LayoutSpec(mode="full"),
                gaze_px=None,
            )
        )
        if ticket.cache_hit:
            return ticket.result(), None
        return None, ticket

    def prefetch_twin(self, key: tuple | None) -> None:
        """Have the service generate the twin of ``key`` (seed, conditioning) into its cache
        (nothing when ``key`` is None or a stimulus set holds it)."""
        if key is None or self._set_twin_entry(key) is not None:
            return
        self.service.prefetch_twin(seed=key[0], conditioning=key[1])

    # ------------------------------------------------------------------ the foveated image
    def foveated_request(self, plan: TrialPlan, spec, gaze_px) -> GenerationRequest:
        return GenerationRequest(
            kind="foveated",
            seed=plan.seed,
            conditioning=plan.conditioning,
            spec=spec,
            gaze_px=gaze_px,
            deadline_s=self.protocol.generation.deadline_s,
        )

    def speculate(self, plan: TrialPlan, spec, target_deg: tuple[float, float]):
        """Start generating at the fixation target before the eyes get there (when the protocol
        asks and the service speculates; else None)."""
        if not self.protocol.generation.speculative:
            return None
        target_px = tuple(float(v) for v in self.geometry.deg_to_image_px(*target_deg))
        return self.service.submit_speculative(self.foveated_request(plan, spec, target_px))

    def request_foveated(self, plan: TrialPlan, spec, gaze_px, *, speculation):
        """The ticket of the foveated image at the measured ``gaze_px``: the speculation kept
        (or replaced) by ``resolve``, or a new request."""
        if speculation is None:
            return self.service.submit(self.foveated_request(plan, spec, gaze_px))
        return self.service.resolve(
            speculation,
            gaze_px=gaze_px,
            tolerance_deg=self.protocol.generation.speculation_tolerance_deg,
        )

    # ------------------------------------------------------------------ deadline-miss stand-ins
    @property
    def keeps_stand_ins(self) -> bool:
        """Only ``on_deadline_miss = "cached"`` shows stand-ins, so only it keeps any."""
        return self.protocol.generation.on_deadline_miss == "cached"

    def fallback_key(self, plan: TrialPlan, gaze_deg: tuple[float, float]) -> tuple | None:
        """Fallback-cache key: the plan's stimulus at its fixation target, or None when the gaze
        was too far from the target for the image to stand in for one made at the target."""
        fx, fy = self.protocol.condition(plan.condition).fixation_deg
        tolerance = self.protocol.generation.cache_gaze_tolerance_deg
        if math.hypot(gaze_deg[0] - fx, gaze_deg[1] - fy) > tolerance:
            return None
        return _plan_key(plan)

    def _made_at_key(self, plan: TrialPlan, ticket) -> tuple | None:
        """``fallback_key`` of the gaze ``ticket``'s image is made at (for a kept speculation the
        fixation target, not the measured gaze)."""
        gaze_px = ticket.request.gaze_px
        if gaze_px is None:
            return None
        made_deg = tuple(float(v) for v in self.geometry.image_px_to_deg(*gaze_px))
        return self.fallback_key(plan, made_deg)

    def remember(self, plan: TrialPlan, ticket, result: GenerationResult) -> None:
        """Keep the foveated image of ``ticket`` as a stand-in for later misses of the plan
        (``on_deadline_miss = "cached"`` only)."""
        if not self.keeps_stand_ins:
            return
        key = self._made_at_key(plan, ticket)
        if key is not None:
            self.fallbacks.put(key, (tuple(ticket.request.gaze_px), result))

    def abandon(self, plan: TrialPlan, ticket) -> bool:
        """The trial gives up on ``ticket`` (a missed deadline, a fixation break): with
        ``on_deadline_miss = "cached"``, when its image may stand in for the plan later and none
        is kept or coming yet, it goes on and is kept once finished (True); otherwise it is
        cancelled (False), so that the next trial's request does not wait behind it."""
        key = self._made_at_key(plan, ticket) if self.keeps_stand_ins else None
        wanted = (
            key is not None
            and self.fallbacks.get(key) is None
            and all(k != key for k, _ in self._late)
        )
        if wanted:
            self._late.append((key, ticket))
            return True
        ticket.cancel()
        return False

    def is_kept(self, ticket) -> bool:
        """``ticket`` was given up on and goes on as a future stand-in (``abandon``)."""
        return any(t is ticket for _, t in self._late)

    def harvest_late(self) -> None:
        """Move finished late requests into the stand-ins."""
        keep = []
        for key, ticket in self._late:
            if ticket.done():
                try:
                    self.fallbacks.put(key, (tuple(ticket.request.gaze_px), ticket.result()))
                except Exception:  # noqa: BLE001 - a failed late request is simply not cached
                    pass
            else:
                keep.append((key, ticket))
        self._late = keep

    def forget(self, plan: TrialPlan) -> None:
        """The plan is answered or given up: drop its stand-in, cancel its late request."""
        key = _plan_key(plan)
        self.fallbacks.pop(key)
        for late_key, ticket in self._late:
            if late_key == key:
                ticket.cancel()
        self._late = [(k, t) for k, t in self._late if k != key]

    def stand_in(
        self, plan: TrialPlan, gaze_px: tuple[float, float]
    ) -> tuple[GenerationResult, tuple[float, float]] | None:
        """An image to show instead of a late one made at the measured ``gaze_px`` (image
        pixels), and the gaze it was made for (image pixels): a kept one, else the stimulus
        set's (made at the fixation target); only one made within ``cache_gaze_tolerance_deg``
        of ``gaze_px``, else None. ``on_deadline_miss = "cached"`` only (None otherwise)."""
        if not self.keeps_stand_ins:
            return None
        self.harvest_late()
        tolerance = self.protocol.generation.cache_gaze_tolerance_deg
        kept = self.fallbacks.get(_plan_key(plan))
        if kept is not None:
            made_px, result = kept
            if gaze_distance_deg(self.geometry, made_px, gaze_px) <= tolerance:
                return result, tuple(float(v) for v in made_px)
        target = self.protocol.condition(plan.condition).fixation_deg
        target_px = tuple(float(v) for v in self.geometry.deg_to_image_px(*target))
        if gaze_distance_deg(self.geometry, target_px, gaze_px) <= tolerance:
            from_set = self._fallback_from_set(plan)
            if from_set is not None:
                return from_set, target_px
        return None

    # ------------------------------------------------------------------ the stimulus set
    def _set_twin_entry(self, key: tuple) -> dict | None:
        if self.stimulus_set is None:
            return None
        return self.stimulus_set.reference_entry(seed=key[0], conditioning=key[1])

    def _fallback_from_set(self, plan: TrialPlan) -> GenerationResult | None:
        if self.stimulus_set is None:
            return None
        entry = self.stimulus_set.foveated_entry(
            seed=plan.seed,
            conditioning=plan.conditioning,
            condition=plan.condition,
            level=plan.level,
        )
        return self._set_image(entry)

    def _set_image(self, entry: dict | None) -> GenerationResult | None:
        """A stimulus-set image as a generation result (no generator time)."""
        if entry is None:
            return None
        return GenerationResult(
            image=self.stimulus_set.read(entry),
            tokens=int(entry["tokens"]),
            tokens_full=int(entry["tokens_full"]),
            token_ratio=float(entry["token_ratio"]),
            seconds=0.0,
            sidecar={
                "stimulus_set": str(self.stimulus_set.directory),
                "file": entry["file"],
                "scene": entry.get("scene"),
            },
        )


def _plan_key(plan: TrialPlan) -> tuple:
    """The stand-in cache's key: the plan's stimulus (seed, conditioning, condition, level)."""
    return (plan.seed, plan.conditioning, plan.condition, plan.level)
