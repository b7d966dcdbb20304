"""Training data for the embedded default model: fetching, manifest, crops, packing."""
