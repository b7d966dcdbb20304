#!/usr/bin/env bash
# Train the default model within a hard wall-clock budget: base training on crops of the training
# photographs and their scenes (by default continued from the shipped base, so that short GPU
# sessions add up), then foveated post-training (LoRA on mixed-resolution tokens), then the export.
#
#   OUT=/some/dir bash generator/training/gpu_job.sh 480
#
# Run from the repository root. $1: total budget in seconds (default 480), for everything: start-up,
# both stages, export. Each stage stops by time and saves what it has. Environment:
#   OUT          output folder (required)
#   BASE_INIT    base weights to continue from (default: the shipped base; "none" starts afresh)
#   MODEL_JSON   ModelConfig fields of a base started afresh (BASE_INIT=none), e.g.
#                '{"scene_conditioning": "reference"}'
#   DATA         packed photographs (default: the shipped pack)
#   MIXED_PRECISION  no (default: fp32 with TF32 matmuls on a GPU), bf16 or fp16
# Writes into $OUT: base/{loss.png,log.json,losses.json}, foveated/{loss.png,log.json,losses.json},
# weights/ (a copy of the shipped weights folder with the new base and adapter exported into it,
# so it keeps the shipped detail and periphery stages: the set to score with `fovea bench quality
# --weights` and then copy into generator/models/weights/), job.json, job.log.
# Works on a CPU too (small batches and sizes; for the smoke test). Use a new OUT for each job:
# a stage refuses a folder that holds an earlier run's checkpoint.pt rather than overwrite it.
set -euo pipefail
BUDGET_S=${1:-480}
OUT=${OUT:?set OUT to the output folder}
DATA=${DATA:-generator/data/photos-1024.npz}
SHIPPED=generator/models/weights
BASE_INIT=${BASE_INIT:-$SHIPPED/default-base.safetensors}
MODEL_JSON=${MODEL_JSON:-}
PY=${PYTHON:-python}
START=$(date +%s)
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  GPU=1; NPROC=$($PY -c "import torch; print(torch.cuda.device_count())")
  MP=${MIXED_PRECISION:-no}  # bf16 crashed in cuBLAS backward on an H200 (stop 1); fp32 uses TF32
  BASE_ARGS=(--batch-size 64 --crop-px 256 512 512 1024 --lr 3e-4 --warmup-steps 200 --ema-decay 0.999)
  FOV_ARGS=(--batch-size 32 --groups 4 --crop-px 256 512 1024 --lr 1e-4 --warmup-steps 50 --ema-decay 0.99)
  LAUNCH=($PY -m accelerate.commands.launch --num_processes "$NPROC" --mixed_precision "$MP" -m)
else
  GPU=0; NPROC=1; MP=no
  BASE_ARGS=(--batch-size 4 --crop-px 64 --warmup-steps 20)
  FOV_ARGS=(--batch-size 4 --groups 2 --crop-px 128 --warmup-steps 5)
  LAUNCH=($PY -m)
fi
elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( END - $(date +%s) )); }
log() { echo "[+$(elapsed)s] $*" | tee -a "$OUT/job.log"; }
# Absolute deadlines: start-up counts. The final 25 s are kept for the export. Of the rest, the
# base stage gets 60 % and the foveated stage what is left.
END=$(( START + BUDGET_S - 25 ))
SPAN=$(( BUDGET_S - 25 ))
BASE_END=$(( START + SPAN * 60 / 100 ))
: >"$OUT/job.log"
log "budget ${BUDGET_S}s, gpu=$GPU x$NPROC, precision $MP; base until +$(( BASE_END - START ))s"
INIT_ARGS=()
if [ "$BASE_INIT" != none ]; then
  INIT_ARGS=(--init "$BASE_INIT"); log "base continues from $BASE_INIT"
elif [ -n "$MODEL_JSON" ]; then
  INIT_ARGS=(--model-json "$MODEL_JSON"); log "base starts afresh: $MODEL_JSON"
else
  log "base starts afresh"
fi
"${LAUNCH[@]}" generator.training.train base --data "$DATA" --out "$OUT/base" "${INIT_ARGS[@]}" \
  --mixed-precision "$MP" --time-budget-s "$BUDGET_S" --deadline-unix "$BASE_END" \
  --checkpoint-every-s 600 --no-progress "${BASE_ARGS[@]}" 2>&1 | tee -a "$OUT/job.log"

FOV_OK=0
if [ -f "$OUT/base/model.safetensors" ] && [ "$(left)" -gt 15 ]; then
  log "foveated until +$(( END - START ))s"
  "${LAUNCH[@]}" generator.training.train foveated --init "$OUT/base/model.safetensors" \
    --data "$DATA" --out "$OUT/foveated" --mixed-precision "$MP" \
    --time-budget-s "$BUDGET_S" --deadline-unix "$END" --checkpoint-every-s 600 --no-progress \
    "${FOV_ARGS[@]}" 2>&1 | tee -a "$OUT/job.log" && FOV_OK=1 || log "foveated stage failed"
fi
FOV_FLAG=()
if [ "$FOV_OK" = 1 ] && [ -f "$OUT/foveated/lora.safetensors" ]; then
  FOV_FLAG=(--foveated "$OUT/foveated")
else
  log "no foveated adapter: exporting the base alone"
fi
# A base that made no step (start-up took its share of the budget) is its --init, untrained:
# the export refuses it, so the copy keeps the shipped base (an adapter on it still goes in).
BASE_STEPS=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["steps"])' \
  "$OUT/base/log.json" 2>/dev/null || echo 0)
BASE_FLAG=(--base "$OUT/base")
if [ "$BASE_STEPS" = 0 ]; then
  BASE_FLAG=(); log "base made no training step within its share of the budget: not exported"
fi
# Into a copy of the shipped set: the export keeps what it is not given (the detail and periphery
# stages and their records), so the weights scored and shipped are the whole pipeline.
rm -rf "$OUT/weights"
cp -r "$SHIPPED" "$OUT/weights"
if [ ${#BASE_FLAG[@]} -gt 0 ] || [ ${#FOV_FLAG[@]} -gt 0 ]; then
  $PY -m generator.training.export "${BASE_FLAG[@]}" "${FOV_FLAG[@]}" --out "$OUT/weights" \
    | tee -a "$OUT/job.log"
else
  log "nothing was trained: $OUT/weights is the shipped set"
fi
# Large files stay behind; the shipped fp16 weights are in $OUT/weights.
rm -rf "$OUT"/*/checkpoint.pt "$OUT"/base/model.safetensors "$OUT"/foveated/lora.safetensors
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
        rec[stage]["init"] = log.get("config", {}).get("init")
(out / "job.json").write_text(json.dumps(rec, indent=1))
print(json.dumps(rec))
PY
log "done"
