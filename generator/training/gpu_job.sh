#!/usr/bin/env bash
# Train the default model within a hard wall-clock budget: base training (by default continued
# from the shipped base, so that short GPU sessions add up), teacher pairs from that base, then
# consistency post-training (LoRA) on them, then the export.
#
#   OUT=/some/dir bash generator/training/gpu_job.sh 480
#
# Run from the repository root. $1: total budget in seconds (default 480), for everything: start-up,
# all stages, export. Each stage stops by time and saves what it has. Environment:
#   OUT          output folder (required)
#   BASE_INIT    base weights to continue from (default: the shipped base; "none" starts afresh)
#   DATA         packed photographs (default: the shipped pack)
#   MIXED_PRECISION  no (default: fp32 with TF32 matmuls on a GPU), bf16 or fp16
# Writes into $OUT: base/{loss.png,log.json}, consistency/{loss.png,log.json},
# weights/ (the files to copy into generator/models/weights/), job.json, job.log.
# Works on a CPU too (small batches and sizes; for the smoke test).
set -euo pipefail
BUDGET_S=${1:-480}
OUT=${OUT:?set OUT to the output folder}
DATA=${DATA:-generator/data/photos-1024.npz}
SHIPPED=generator/models/weights
BASE_INIT=${BASE_INIT:-$SHIPPED/default-base.safetensors}
PY=${PYTHON:-python}
START=$(date +%s)
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  GPU=1; NPROC=$($PY -c "import torch; print(torch.cuda.device_count())"); DEVICE=cuda
  MP=${MIXED_PRECISION:-no}  # bf16 crashed in cuBLAS backward on an H200 (stop 1); fp32 uses TF32
  BASE_ARGS=(--batch-size 64 --crop-px 256 512 512 1024 --lr 3e-4 --warmup-steps 200 --ema-decay 0.999)
  CONS_ARGS=(--batch-size 32 --groups 4 --lr 2e-4 --warmup-steps 50 --ema-decay 0.99)
  TEACHER_PX=(512 1024)
  LAUNCH=($PY -m accelerate.commands.launch --num_processes "$NPROC" --mixed_precision "$MP" -m)
else
  GPU=0; NPROC=1; DEVICE=cpu; MP=no
  BASE_ARGS=(--batch-size 4 --crop-px 128 --warmup-steps 20)
  CONS_ARGS=(--batch-size 4 --groups 2 --warmup-steps 5)
  TEACHER_PX=(128)
  LAUNCH=($PY -m)
fi
elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( END - $(date +%s) )); }
log() { echo "[+$(elapsed)s] $*" | tee -a "$OUT/job.log"; }
# Absolute deadlines: start-up counts. The final 25 s are kept for the exports. Of the rest, the
# base stage gets 50 %, the teacher pairs 15 % and the consistency stage what is left.
END=$(( START + BUDGET_S - 25 ))
SPAN=$(( BUDGET_S - 25 ))
BASE_END=$(( START + SPAN * 50 / 100 ))
TEACHER_END=$(( START + SPAN * 65 / 100 ))
: >"$OUT/job.log"
log "budget ${BUDGET_S}s, gpu=$GPU x$NPROC, precision $MP; base until +$(( BASE_END - START ))s"
INIT_ARGS=()
if [ "$BASE_INIT" != none ]; then INIT_ARGS=(--init "$BASE_INIT"); log "base continues from $BASE_INIT"; fi
"${LAUNCH[@]}" generator.training.train base --data "$DATA" --out "$OUT/base" "${INIT_ARGS[@]}" \
  --mixed-precision "$MP" --time-budget-s "$BUDGET_S" --deadline-unix "$BASE_END" \
  --checkpoint-every-s 600 --no-progress "${BASE_ARGS[@]}" 2>&1 | tee -a "$OUT/job.log"

# The new base alone, as a weights folder the generator loads (the teacher's model).
$PY -m generator.training.export --base "$OUT/base" --out "$OUT/base-weights" | tee -a "$OUT/job.log"

# Teacher pairs: the time until TEACHER_END, split evenly over the sizes.
PAIRS=()
for i in "${!TEACHER_PX[@]}"; do
  px=${TEACHER_PX[$i]}
  n_left=$(( ${#TEACHER_PX[@]} - i ))
  share=$(( (TEACHER_END - $(date +%s)) / n_left ))
  if [ "$share" -lt 5 ]; then log "no time left for $px px teacher pairs"; continue; fi
  log "teacher pairs at $px px for ${share}s"
  if $PY -m study.cli train teacher --out "$OUT/teacher-$px.npz" --crop-px "$px" \
    --time-budget-s "$share" --first-seed $(( 100000 * (i + 1) )) --weights "$OUT/base-weights" \
    --device "$DEVICE" >"$OUT/teacher.log" 2>&1; then
    PAIRS+=("$OUT/teacher-$px.npz")
  else
    log "teacher pairs at $px px failed:"
  fi
  tail -n 3 "$OUT/teacher.log" | tee -a "$OUT/job.log"
done

CONS_OK=0
if [ "${#PAIRS[@]}" -gt 0 ] && [ "$(left)" -gt 15 ]; then
  log "consistency until +$(( END - START ))s"
  "${LAUNCH[@]}" generator.training.train consistency --init "$OUT/base/model.safetensors" \
    --pairs "${PAIRS[@]}" --out "$OUT/consistency" --mixed-precision "$MP" \
    --time-budget-s "$BUDGET_S" --deadline-unix "$END" --checkpoint-every-s 600 --no-progress \
    "${CONS_ARGS[@]}" 2>&1 | tee -a "$OUT/job.log" && CONS_OK=1 || log "consistency stage failed"
fi
if [ "$CONS_OK" = 1 ] && [ -f "$OUT/consistency/lora.safetensors" ]; then
  $PY -m generator.training.export --base "$OUT/base" --foveated "$OUT/consistency" --out "$OUT/weights" | tee -a "$OUT/job.log"
else
  log "no consistency adapter: exporting the base alone"
  cp -r "$OUT/base-weights" "$OUT/weights"
fi
# Large files stay behind; the shipped fp16 weights are in $OUT/weights.
rm -rf "$OUT"/base-weights "$OUT"/teacher-*.npz "$OUT"/teacher.log "$OUT"/*/checkpoint.pt \
  "$OUT"/base/model.safetensors "$OUT"/consistency/lora.safetensors
$PY - "$OUT" "$BUDGET_S" "$(elapsed)" <<'PY'
import json, sys, pathlib
out, budget, elapsed = pathlib.Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
rec = {"budget_s": budget, "elapsed_s": elapsed}
for stage in ("base", "consistency"):
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
