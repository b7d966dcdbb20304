"""Evaluation of generators: quality against full-resolution images and its bounds.

- ``quality``: ``fovea bench quality`` (JOD, fovea PSNR/SSIM and detail metrics of foveated
  images against their full-resolution twins, for the shipped model and its baselines);
  ``quality_summary`` (medians and targets), ``quality_plot`` (figures), ``sheets`` (contact
  sheets), ``detail_metrics`` (seam ratio, octave power), ``ceiling`` (bounds from above).
- ``latent_compare``, ``latent_recon``, ``latent_report``, ``latent_cli``: the pixel- vs
  latent-space comparison (``fovea bench latent``).

The models themselves live in ``generator.models``; evaluation imports them, never the reverse.
"""
