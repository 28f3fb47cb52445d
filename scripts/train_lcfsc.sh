#!/usr/bin/env bash
# Render the image corpus and the CDL channel pool, then train and export the four image-link
# bundles (docs/image_link.md): LCFSC and its no-masking twin, each with the MSE and the
# MS-SSIM loss, after the UE's channel denoiser (NPN); then the SVD-precoded MSE pair.
#
# Budget: NPN / MSE / MSSSIM minutes of CPU time per model (defaults 4 / 30 / 20), one torch
# thread each; the four image models train at the same time (each pair shares data, budget
# and schedule, so their comparison is fair), while the corpus is still being rendered (the
# trainers re-read it every few minutes; the test scene is never used for training).
# Resumable: rendering continues its shards, trainings their last checkpoint.
# The shipped bundles: rendering was stopped at 2,200 training images (20 min into training)
# to give the trainers the cores, then merged with `--merge --partial` (docs/image_link.md).
#
#   bash scripts/train_lcfsc.sh                        # ~1 h 45 min wall on 2 idle cores
#   MSE=5 MSSSIM=5 RUNS=runs/lcfsc-small bash scripts/train_lcfsc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NPN=${NPN:-4} MSE=${MSE:-30} MSSSIM=${MSSSIM:-20} RUNS=${RUNS:-runs/lcfsc}
IMAGES=${IMAGES:-data/generated/rt-images-64.h5} POOL=${POOL:-data/sample/mimo-cdl.h5}
mkdir -p "$RUNS" runs/images
[ -f "$POOL" ] || "$PY" -m datagen.mimo --out "$POOL"
render() {
  for k in 0 1; do
    "$PY" -m datagen.images --out "$IMAGES" --train 4000 --test 400 --spp 48 --shard "$k/2" \
      >>"runs/images/shard$k.log" 2>&1 &
  done
  wait
  "$PY" -m datagen.images --out "$IMAGES" --train 4000 --test 400 --spp 48 --shard 0/2 --merge
}
[ -f "$IMAGES" ] || render &
"$PY" -m training.lcfsc npn --out "$RUNS/npn" --minutes "$NPN" >>"$RUNS/npn.log" 2>&1
until ls "${IMAGES%.h5}".shard*of2.h5 >/dev/null 2>&1 || [ -f "$IMAGES" ]; do sleep 30; done
sleep 600  # let the first few hundred images exist
for spec in "lcfsc mse $MSE" "nomask mse $MSE" "lcfsc msssim $MSSSIM" "nomask msssim $MSSSIM"; do
  set -- $spec
  "$PY" -m training.lcfsc jscc --out "$RUNS/$1-$2" --variant "$1" --loss "$2" --minutes "$3" \
    --npn "$RUNS/npn/best.pt" --images "$IMAGES" --pool "$POOL" >>"$RUNS/$1-$2.log" 2>&1 &
done
wait
for m in lcfsc-mse nomask-mse lcfsc-msssim nomask-msssim; do
  "$PY" -m models.lcfsc.export "$RUNS/$m" "bundles/$m"
done
# The SVD-precoded MSE pair (docs/image_link.md, "SVD precoding"): same NPN, data, schedule and
# budget as the MSE pair. The shipped pair trained after the four above, against the NPN read back
# from bundles/lcfsc-mse (`python -m training.lcfsc npn-from-bundle --out runs/lcfsc/npn`), while
# the corpus re-rendered (its first 290 training images at the start, 2,040 from 20 min on).
for v in lcfsc nomask; do
  "$PY" -m training.lcfsc jscc --out "$RUNS/$v-svd-mse" --variant "$v" --loss mse --minutes "$MSE" \
    --precoding svd --npn "$RUNS/npn/best.pt" --images "$IMAGES" --pool "$POOL" >>"$RUNS/$v-svd-mse.log" 2>&1 &
done
wait
for m in lcfsc-svd-mse nomask-svd-mse; do
  "$PY" -m models.lcfsc.export "$RUNS/$m" "bundles/$m"
done
