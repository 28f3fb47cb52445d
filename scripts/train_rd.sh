#!/usr/bin/env bash
# Train and export the RD-JSCC bundles and their comparison models (docs/rd_jscc.md).
#
# Needs data/generated/cdl-c-fdd.h5 (the shipped csinet bundles' set) and
# data/generated/umi-nlos.h5:
#   csilink dataset generate --profile umi-nlos --n-train 100000 --n-val 5000 --n-test 1000 \
#       --seed 0 --sf-cap 200 --workers 2 -o data/generated/umi-nlos.h5
# and data/generated/gscm-outdoor.h5 (the COST 2100-shaped site, 70 s on 2 cores):
#   csilink dataset generate --profile gscm-outdoor --n-train 100000 --n-val 5000 --n-test 1000 \
#       --seed 0 --sf-cap 200 -o data/generated/gscm-outdoor.h5
# and the shipped csinet-jscc-k32 run (runs/shipped/csinet-jscc-k32, scripts/train_shipped.sh),
# the autoencoder of rd-jscc-cdl.
#
# Every model: MINUTES CPU-minutes (default 15, CLOCK=cpu), 1 torch thread, two at a time
# (one per core). Two chains, each in order (a denoiser needs its autoencoder):
#   A: csinet-jscc-umi (stage 1) -> rd-jscc-umi (stage 2) -> csinet-jscc-umi-k32
#   B: rd-jscc-cdl (stage 2 on csinet-jscc-k32) -> csinet-jscc-umi-k8 -> csinet-jscc-umi-cnr0
#   C (after both): rd-jscc-cdl-gd (Gaussian-diffusion baseline) beside csinet-jscc-umi-30
#   D (CHAIN=d, gscm-outdoor at two budgets): csinet-jscc-gscm -> rd-jscc-gscm (15 + 15) beside
#     csinet-jscc-gscm-30 -> rd-jscc-gscm-30 (30 + 30, each run its own schedule)
# Resumable: a run continues from its last checkpoint up to its budget; finished runs are
# exported again. Bundles go to bundles/.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-15}
CLOCK=${CLOCK:-cpu}
CSILINK=${CSILINK:-.venv/bin/csilink}
RUNS=${RUNS:-runs/rd}
OUT=${OUT:-bundles}
CDL=${CDL:-data/generated/cdl-c-fdd.h5}
UMI=${UMI:-data/generated/umi-nlos.h5}
GSCM=${GSCM:-data/generated/gscm-outdoor.h5}
mkdir -p "$RUNS"

one() {  # id dataset [minutes [noexport]]
  local id=$1 data=$2 minutes=${3:-$MINUTES} noexport=${4:-}
  echo "$(date -u +%FT%TZ) training $id on $data for $minutes CPU-min (log $RUNS/$id.log)"
  "$CSILINK" train --config "training/configs/$id.yaml" --dataset "$data" --minutes "$minutes" \
    --clock "$CLOCK" --threads 1 --out "$RUNS/$id" --no-progress >>"$RUNS/$id.log" 2>&1
  [ -n "$noexport" ] || "$CSILINK" export "$RUNS/$id" --out "$OUT/$id" --model-id "$id" --force >>"$RUNS/$id.log" 2>&1
  echo "$(date -u +%FT%TZ) $id done: $(tail -n 1 "$RUNS/$id/log.jsonl")"
}

chain_a() { one csinet-jscc-umi "$UMI"; one rd-jscc-umi "$UMI"; one csinet-jscc-umi-k32 "$UMI"; }
chain_b() { one rd-jscc-cdl "$CDL"; one csinet-jscc-umi-k8 "$UMI"; one csinet-jscc-umi-cnr0 "$UMI"; }
# chain C (baselines of docs/rd_jscc.md, run after A and B): the Gaussian-diffusion denoiser on
# cdl-c-fdd, and the umi autoencoder continued to twice its budget (a copy of its run resumed with
# a 2 x MINUTES budget; not exported: the benchmark exports it to a temporary folder)
chain_c() {
  "$CSILINK" train --config training/configs/rd-jscc-cdl-gd.yaml --dataset "$CDL" --minutes "$MINUTES" \
    --clock "$CLOCK" --threads 1 --out "$RUNS/rd-jscc-cdl-gd" --no-progress >>"$RUNS/rd-jscc-cdl-gd.log" 2>&1 &
  if [ ! -d "$RUNS/csinet-jscc-umi-30" ]; then
    cp -r "$RUNS/csinet-jscc-umi" "$RUNS/csinet-jscc-umi-30" && rm -f "$RUNS/csinet-jscc-umi-30/run.json"
  fi
  "$CSILINK" train --config training/configs/csinet-jscc-umi.yaml --dataset "$UMI" --minutes $((2 * MINUTES)) \
    --clock "$CLOCK" --threads 1 --out "$RUNS/csinet-jscc-umi-30" --no-progress >>"$RUNS/csinet-jscc-umi-30.log" 2>&1
  wait
}

# chain D: the whole method on the COST 2100-shaped site at two budgets (MINUTES and 2 x MINUTES
# per stage); the 2x pair is not exported (the benchmark's chain_budget section exports it to a
# temporary folder)
chain_d() {
  { one csinet-jscc-gscm "$GSCM"; one rd-jscc-gscm "$GSCM"; } &
  { one csinet-jscc-gscm-30 "$GSCM" $((2 * MINUTES)) no; one rd-jscc-gscm-30 "$GSCM" $((2 * MINUTES)) no; } &
  wait
}

case ${CHAIN:-all} in  # CHAIN=a, b or c: one chain only (e.g. to run them on two machines)
  a) chain_a; exit 0 ;;
  b) chain_b; exit 0 ;;
  c) chain_c; exit 0 ;;
  d) chain_d; exit 0 ;;
esac
chain_a & a=$!
chain_b & b=$!
wait $a; wait $b
chain_c
"$CSILINK" bundle verify "$OUT"/rd-jscc-cdl "$OUT"/rd-jscc-umi "$OUT"/csinet-jscc-umi "$OUT"/csinet-jscc-umi-k8 \
  "$OUT"/csinet-jscc-umi-k32 "$OUT"/csinet-jscc-umi-cnr0
