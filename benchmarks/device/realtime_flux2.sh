#!/usr/bin/env bash
# Fixation-to-image latency on a lent GPU (see the `device` tool of this workplace): klein-4B-sized
# and FLUX.1-schnell-sized transformers with random weights, 1024², 4 steps, full versus foveated
# (circle 1/2x and 1/4x, acuity s=1), the foveated decode included, each eager and at static
# shapes with CUDA graphs (generator/static_sampler.py). One command for the tool:
#
#   bash benchmarks/device/realtime_flux2.sh        # carry [".whl"], timeout_s 570
#
# Before it, here (the GPU image lacks diffusers): `pip download --no-deps diffusers==0.42.1
# importlib_metadata -d .whl` and `echo .whl/ >> .git/info/exclude`.
# Leaves $OUT/realtime_flux2_h200.json (records: device, model, resolution, steps, setting,
# sampler, latency_median_s, latency_p95_s, speedup, stage medians, command),
# $OUT/realtime_flux2_decode_h200.json (the decode alone: full/foveated x memory format) and
# $OUT/realtime_flux2.log; both JSON files are rewritten after every record, so a run cut short
# by the time limit keeps what it measured;
# copy the JSON to benchmarks/results/ and commit it with the command that made it.
# REPEATS (default 20) frames per setting; MODELS (default both) comma-separated, in that order;
# BUDGET_S (default 460) seconds for all of them; SMOKE=1: tiny
# sizes on the CPU (the dry run: `OUT=/tmp/rt SMOKE=1 PYTHON=.venv/bin/python bash ...`).
set -euo pipefail
: "${OUT:?OUT must be set (the device tool sets it)}"
PY=${PYTHON:-python}
MODELS=${MODELS:-flux2-klein-4b,flux1-schnell}
if ! $PY -c "import diffusers" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/ wheels: see the header of this script"; exit 2; }
  $PY -m pip install -q --no-index --no-deps .whl/*.whl || {  # a read-only environment:
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  }
fi
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") \
  | tee "$OUT/realtime_flux2.log"
$PY -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" \
  | tee -a "$OUT/realtime_flux2.log"
# Each model runs in its own process (--append adds to the same files), so a model that fails,
# or a failed CUDA graph capture that leaves the GPU context unusable, does not cost the next
# model its records; all of them share one deadline (BUDGET_S, default 460 s).
deadline=$((SECONDS + ${BUDGET_S:-460}))
rm -f "$OUT/realtime_flux2_h200.json" "$OUT/realtime_flux2_decode_h200.json"
for model in ${MODELS//,/ }; do
  left=$((deadline - SECONDS))
  if [ "$left" -lt 30 ]; then echo "$model: skipped, ${left}s left" | tee -a "$OUT/realtime_flux2.log"; continue; fi
  PYTHONUNBUFFERED=1 timeout "$left" $PY benchmarks/device/realtime_flux2.py --append \
    --json "$OUT/realtime_flux2_h200.json" --decode-json "$OUT/realtime_flux2_decode_h200.json" \
    --repeats "${REPEATS:-20}" --models "$model" ${SMOKE:+--smoke} 2>&1 \
    | tee -a "$OUT/realtime_flux2.log" || echo "$model: exited $?" | tee -a "$OUT/realtime_flux2.log"
done
# Last, at most 60 s: the embedded default model on the device (threshold_2afc's setting), its
# speed and its images against the CPU's ($OUT/default_on_cuda.json and .png).
PYTHONUNBUFFERED=1 timeout 60 $PY benchmarks/device/default_on_cuda.py ${SMOKE:+--size 256 --repeats 1} \
  --json "$OUT/default_on_cuda.json" --png "$OUT/default_on_cuda.png" 2>&1 \
  | tee -a "$OUT/realtime_flux2.log" || echo "default on the device: exited $?" | tee -a "$OUT/realtime_flux2.log"
