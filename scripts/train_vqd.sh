#!/usr/bin/env bash
# Train and export the side-information comparison (docs/vq_diffusion.md): the vq-diffusion
# codec at 64 / 128 / 192 bits, its variants (no side information, reconstruction), the
# CsiNet / CRNet baselines with 6-bit tanh quantization and side information, and the
# unquantized reference predictors, all on cdl-c-fdd (independent UL phases) under the same
# budget; ids ending in -ulcopy train on the near-copy UL set, -umi on umi-nlos.
#
# Budget: MINUTES of CPU time per model (default 10, CLOCK=cpu), 1 torch thread, JOBS trainings
# at once (default 2: the 2-core machine). Resumable: re-running continues each run from its
# last checkpoint until the budget is used; finished runs are exported again. Bundles of SHIP go
# to bundles/, the others to runs/vqd/bundles/ (benchmarks/bench_vqd.py reads both); the
# reference predictors (ref-*) have no UE half and stay checkpoints.
#
#   bash scripts/train_vqd.sh                        # everything (~90 min wall on 2 idle cores)
#   MINUTES=2 JOBS=1 bash scripts/train_vqd.sh vqd-b128
#   SHIP= MINUTES=20 RUNS=runs/vqd-x2 bash scripts/train_vqd.sh vqd-b128 si-csinet-b126   # budget x2
set -euo pipefail
cd "$(dirname "$0")/.."
export MINUTES=${MINUTES:-10} CLOCK=${CLOCK:-cpu} CSILINK=${CSILINK:-.venv/bin/csilink} RUNS=${RUNS:-runs/vqd}
export CDL=${CDL:-data/generated/cdl-c-fdd.h5} ULCOPY=${ULCOPY:-data/generated/cdl-c-fdd-ulcopy.h5}
export UMI=${UMI:-data/generated/umi-nlos.h5}
export SHIP=${SHIP-" vqd-b64 vqd-b128 vqd-b192 si-csinet-b126 "}
JOBS=${JOBS:-2}
mkdir -p "$RUNS/bundles"

ids=("$@")
if [ ${#ids[@]} -eq 0 ]; then
  ids=(vqd-b128 si-csinet-b126 vqd-b64 si-csinet-b66 vqd-b192 si-csinet-b192 vqd-b128-nosi si-crnet-b126
       ref-xy vqd-b128-umi ref-x vqd-b128-ulcopy si-csinet-b126-umi vqd-b128-recon si-csinet-b126-ulcopy)
fi

train_one() {
  local id=$1 cfg=$1 data=$CDL out
  case "$id" in
    *-ulcopy) cfg=${id%-ulcopy}; data=$ULCOPY ;;
    *-umi) cfg=${id%-umi}; data=$UMI ;;
  esac
  [ -f "$data" ] || { echo "no dataset $data (see docs/vq_diffusion.md, Reproduce)" >&2; return 1; }
  echo "$(date -u +%FT%TZ) training $id for $MINUTES $CLOCK-min on $data (log: $RUNS/$id.log)"
  "$CSILINK" train --config "training/configs/vq_diffusion/$cfg.yaml" --dataset "$data" --minutes "$MINUTES" \
    --clock "$CLOCK" --out "$RUNS/$id" --threads 1 --no-progress >>"$RUNS/$id.log" 2>&1
  case "$id" in
    ref-*) ;;
    *)
      out=$RUNS/bundles/$id
      case "$SHIP" in *" $id "*) out=bundles/$id ;; esac
      "$CSILINK" export "$RUNS/$id" --out "$out" --model-id "$id" --force >>"$RUNS/$id.log" 2>&1 ;;
  esac
  echo "$(date -u +%FT%TZ) $id done: $(tail -n 1 "$RUNS/$id/log.jsonl")"
}
export -f train_one
printf '%s\n' "${ids[@]}" | xargs -P "$JOBS" -I{} bash -c 'train_one {}'
