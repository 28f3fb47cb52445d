#!/usr/bin/env bash
# Train and export the shipped bundles (bundles/csinet-b64, -b128, -b192, csinet-jscc-k32,
# csinet-lite-b128).
#
# Budget: MINUTES minutes of CPU time per model (default 15, CLOCK=cpu; CLOCK=wall counts elapsed
# time instead), 1 torch thread each, two trainings side
# by side on a 2-core machine: about 2 x MINUTES wall minutes on an idle machine, plus exports;
# longer when other jobs share the cores (the CPU budget is unchanged). Resumable:
# re-running picks every run up from its last checkpoint (runs/shipped/<id>/last.pt) and
# only continues until its budget is used; a finished run is exported again.
#
#   bash scripts/train_shipped.sh                 # all five
#   MINUTES=5 bash scripts/train_shipped.sh csinet-b64   # one, shorter
#   DATA=path/to/other.h5 bash scripts/train_shipped.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/generated/cdl-c-fdd.h5}
MINUTES=${MINUTES:-15}
QAT_MINUTES=${QAT_MINUTES:-4}  # quantization-aware fine-tuning after the base budget (b128, b192)
CLOCK=${CLOCK:-cpu}  # cpu: MINUTES of each process's CPU time (fair on a busy machine); wall: elapsed
CSILINK=${CSILINK:-.venv/bin/csilink}
RUNS=${RUNS:-runs/shipped}
OUT=${OUT:-bundles}
mkdir -p "$RUNS"
[ -f "$DATA" ] || { echo "no dataset $DATA (make it with: csilink dataset generate --profile cdl-c-fdd ...)" >&2; exit 1; }

ids=("$@")
[ ${#ids[@]} -gt 0 ] || ids=(csinet-b128 csinet-jscc-k32 csinet-b64 csinet-b192 csinet-lite-b128)

train_one() {
  local id=$1 run=$RUNS/$1
  "$CSILINK" train --config "training/configs/$id.yaml" --dataset "$DATA" --minutes "$MINUTES" --clock "$CLOCK" \
    --out "$run" --threads 1 --no-progress >>"$RUNS/$id.log" 2>&1
  # quantization-aware fine-tuning where a <id>-qat.yaml exists (it starts from $RUNS/<id>/best.pt)
  if [ -f "training/configs/$id-qat.yaml" ]; then
    run=$RUNS/$id-qat
    "$CSILINK" train --config "training/configs/$id-qat.yaml" --dataset "$DATA" --minutes "$QAT_MINUTES" \
      --clock "$CLOCK" --out "$run" --threads 1 --no-progress >>"$RUNS/$id.log" 2>&1
  fi
  "$CSILINK" export "$run" --out "$OUT/$id" --model-id "$id" --force >>"$RUNS/$id.log" 2>&1
  echo "$(date -u +%FT%TZ) $id done: $(tail -n 1 "$run/log.jsonl")"
}

# two at a time (one per core)
for ((i = 0; i < ${#ids[@]}; i += 2)); do
  pids=()
  for id in "${ids[@]:i:2}"; do
    echo "$(date -u +%FT%TZ) training $id for $MINUTES min (log: $RUNS/$id.log)"
    train_one "$id" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
done
"$CSILINK" bundle verify "${ids[@]/#/$OUT/}"
