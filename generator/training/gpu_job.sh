#!/usr/bin/env bash
# Train the default model (base, then foveated LoRA post-training) within a hard wall-clock budget.
#
#   OUT=/some/dir bash generator/training/gpu_job.sh 420
#
# Run from the repository root. $1: total budget in seconds (default 420), for everything: start-up,
# both stages, export. Each stage stops by time and saves what it has. Writes into $OUT:
#   base/{model.safetensors,loss.png,log.json}, foveated/{lora.safetensors,loss.png,log.json},
#   weights/ (the files to copy into generator/models/weights/), job.json, job.log.
# Works on a CPU too (small batches; for the smoke test).
set -euo pipefail
BUDGET_S=${1:-420}
OUT=${OUT:?set OUT to the output folder}
DATA=${DATA:-generator/data/photos-1024.npz}
PY=${PYTHON:-python}
START=$(date +%s)
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  GPU=1; NPROC=$($PY -c "import torch; print(torch.cuda.device_count())")
  BASE_ARGS=(--mixed-precision ${MIXED_PRECISION:-bf16} --batch-size 64 --crop-px 256 256 512 --lr 4e-4 --warmup-steps 300 --ema-decay 0.999)
  FOV_ARGS=(--mixed-precision ${MIXED_PRECISION:-bf16} --batch-size 48 --groups 4 --crop-px 512 1024 --lr 3e-4 --warmup-steps 100 --ema-decay 0.995)
  LAUNCH=($PY -m accelerate.commands.launch --num_processes "$NPROC" --mixed_precision ${MIXED_PRECISION:-bf16} -m)
else
  GPU=0; NPROC=1
  BASE_ARGS=(--batch-size 4 --crop-px 128 --warmup-steps 20)
  FOV_ARGS=(--batch-size 4 --groups 2 --crop-px 256 --warmup-steps 5)
  LAUNCH=($PY -m)
fi
elapsed() { echo $(( $(date +%s) - START )); }
# Absolute deadlines: start-up counts. The final 20 s are left for saving and the export; the base
# stage gets 62 % of the rest.
END=$(( START + BUDGET_S - 20 ))
BASE_END=$(( START + (BUDGET_S - 20) * 62 / 100 ))
echo "budget ${BUDGET_S}s, gpu=$GPU x$NPROC; base stage until +$(( BASE_END - START ))s" | tee "$OUT/job.log"
"${LAUNCH[@]}" generator.training.train base --data "$DATA" --out "$OUT/base" \
  --time-budget-s "$BUDGET_S" --deadline-unix "$BASE_END" --checkpoint-every-s 120 --no-progress "${BASE_ARGS[@]}" 2>&1 | tee -a "$OUT/job.log"
echo "foveated stage until +$(( END - START ))s (elapsed $(elapsed)s)" | tee -a "$OUT/job.log"
FOV_OK=1
if [ $(( END - $(date +%s) )) -gt 15 ]; then
  "${LAUNCH[@]}" generator.training.train foveated --init "$OUT/base/model.safetensors" \
    --data "$DATA" --out "$OUT/foveated" --time-budget-s "$BUDGET_S" --deadline-unix "$END" --checkpoint-every-s 120 \
    --no-progress "${FOV_ARGS[@]}" 2>&1 | tee -a "$OUT/job.log" || FOV_OK=0
else
  FOV_OK=0
fi
if [ "$FOV_OK" = 1 ] && [ -f "$OUT/foveated/lora.safetensors" ]; then
  $PY -m generator.training.export --base "$OUT/base" --foveated "$OUT/foveated" --out "$OUT/weights" | tee -a "$OUT/job.log"
else
  $PY -m generator.training.export --base "$OUT/base" --out "$OUT/weights" | tee -a "$OUT/job.log"
fi
# Large files; the shipped fp16 weights are in $OUT/weights.
rm -f "$OUT"/base/checkpoint.pt "$OUT"/foveated/checkpoint.pt "$OUT"/base/model.safetensors "$OUT"/foveated/lora.safetensors
$PY - "$OUT" "$BUDGET_S" "$(elapsed)" <<'PY'
import json, sys, pathlib
out, budget, elapsed = pathlib.Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
rec = {"budget_s": budget, "elapsed_s": elapsed}
for stage in ("base", "foveated"):
    p = out / stage / "log.json"
    if p.exists():
        log = json.loads(p.read_text())
        rec[stage] = {k: log.get(k) for k in ("steps", "loop_seconds", "loss_first50", "loss_last50",
                                              "device_name", "num_processes", "mixed_precision")}
(out / "job.json").write_text(json.dumps(rec, indent=1))
print(json.dumps(rec))
PY
