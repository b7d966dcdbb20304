"""The embedded default model: a small pixel-space Flux-style transformer with x-prediction."""
