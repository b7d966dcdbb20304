"""Training the embedded default model: base (full-resolution tokens) and foveated post-training."""
