#!/usr/bin/env bash
# One GPU session's training of the default model on a lent device machine (see the `device` tool
# of this workplace): installs what that bare machine lacks, runs gpu_job.sh (base, then foveated
# post-training, then the export) within BUDGET_S and leaves at most 8 flat files under $OUT, each
# under 16 MiB (the tool's limits on what comes back).
#
#   bash benchmarks/device/train_default.sh 420      # as the device tool's command, carry [".whl"]
#   BASE_INIT=none MODEL_JSON='{"scene_conditioning": "reference"}' bash benchmarks/device/...
#
# BASE_INIT, MODEL_JSON, DATA, MIXED_PRECISION: passed on to gpu_job.sh (see there).
# JOB_DIR: where the job works (default /tmp/fovea-train; emptied first).
# .whl/ (git-excluded) holds the wheels the machine lacks: diffusers and importlib_metadata
# (`pip download --no-deps diffusers==0.42.1 importlib_metadata -d .whl`).
# Back here: reassemble the base with `cat default-base.safetensors.part-* > default-base.safetensors`,
# copy the files into a weights folder beside default.json and check them with `fovea bench quality
# --weights DIR` before they replace the shipped ones.
set -euo pipefail
BUDGET_S=${1:-420}
: "${OUT:?OUT must be set (the device tool sets it)}"
PY=${PYTHON:-python}
if ! $PY -c "import diffusers" 2>/dev/null; then
  $PY -m pip install -q --no-deps .whl/*.whl
fi
JOB=${JOB_DIR:-/tmp/fovea-train}
rm -rf "$JOB"
OUT="$JOB" bash generator/training/gpu_job.sh "$BUDGET_S" || echo "gpu_job.sh exited $?"
cp "$JOB/job.log" "$OUT/" 2>/dev/null || true
cp "$JOB/job.json" "$OUT/" 2>/dev/null || true
W="$JOB/weights"
if [ -f "$W/default-base.safetensors" ]; then
  split -b 15M "$W/default-base.safetensors" "$OUT/default-base.safetensors.part-"
  for f in default-foveated-lora.safetensors default.json default-base-loss.png default-foveated-loss.png; do
    [ -f "$W/$f" ] && cp "$W/$f" "$OUT/"
  done
fi
ls -la "$OUT"
