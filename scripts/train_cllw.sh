#!/usr/bin/env bash
# Train and export the cllwcsinet comparison (docs/cllwcsinet.md): CLLWCsiNet, CsiNet and CRNet
# (convolutional and FC latents) at CR 4 / 8 / 16 on the COST2100-shaped profile, the CR 8
# models on cdl-c-fdd (suffix -cdl), all under the same budget, and two diagnostic CLLWCsiNets
# trained without codeword noise (suffix -clean).
#
# Budget: MINUTES of CPU time per model (default 8, CLOCK=cpu), 1 torch thread, two trainings
# side by side on the 2-core machine. Resumable: re-running continues each run from its last
# checkpoint until its budget is used; finished runs are exported again. Bundles of SHIP go to
# bundles/, the others to runs/cllw/bundles/ (benchmarks/bench_cllw.py reads both).
#
#   bash scripts/train_cllw.sh                       # everything (~95 min wall on 2 idle cores)
#   MINUTES=2 bash scripts/train_cllw.sh cllw-cr8    # one model, shorter
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-8}
CLOCK=${CLOCK:-cpu}
CSILINK=${CSILINK:-.venv/bin/csilink}
RUNS=${RUNS:-runs/cllw}
COST=${COST:-data/generated/cost2100-like.h5}
CDL=${CDL:-data/generated/cdl-c-fdd.h5}
SHIP=" cllw-cr4 cllw-cr8 cllw-cr16 csinet-conv-cr8 crnet-conv-cr8 crnet-fc-cr8 cllw-cr8-cdl crnet-conv-cr8-cdl crnet-fc-cr8-cdl "
mkdir -p "$RUNS/bundles"
for f in "$COST" "$CDL"; do
  [ -f "$f" ] || { echo "no dataset $f (see docs/cllwcsinet.md, Reproduce)" >&2; exit 1; }
done

ids=("$@")
if [ ${#ids[@]} -eq 0 ]; then
  ids=(cllw-cr8 crnet-fc-cr8 csinet-fc-cr8 crnet-conv-cr8 csinet-conv-cr8 cllw-cr4 cllw-cr16 crnet-fc-cr4
       csinet-fc-cr4 crnet-conv-cr4 csinet-conv-cr4 crnet-fc-cr16 csinet-fc-cr16 crnet-conv-cr16
       csinet-conv-cr16 cllw-cr8-cdl crnet-fc-cr8-cdl csinet-fc-cr8-cdl crnet-conv-cr8-cdl csinet-conv-cr8-cdl
       cllw-cr4-clean cllw-cr16-clean)
fi

train_one() {
  local id=$1 cfg=${1%-cdl} data=$COST out
  [ "$id" != "$cfg" ] && data=$CDL
  out=$RUNS/bundles/$id
  case "$SHIP" in *" $id "*) out=bundles/$id ;; esac
  "$CSILINK" train --config "training/configs/cllwcsinet/$cfg.yaml" --dataset "$data" --minutes "$MINUTES" \
    --clock "$CLOCK" --out "$RUNS/$id" --threads 1 --no-progress >>"$RUNS/$id.log" 2>&1
  "$CSILINK" export "$RUNS/$id" --out "$out" --model-id "$id" --force >>"$RUNS/$id.log" 2>&1
  echo "$(date -u +%FT%TZ) $id done -> $out: $(tail -n 1 "$RUNS/$id/log.jsonl")"
}

for ((i = 0; i < ${#ids[@]}; i += 2)); do
  pids=()
  for id in "${ids[@]:i:2}"; do
    echo "$(date -u +%FT%TZ) training $id for $MINUTES $CLOCK-min (log: $RUNS/$id.log)"
    train_one "$id" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
done
