#!/usr/bin/env bash
# Generate the ray-traced world and train + export the multi-modal codec (docs/multimodal.md):
# stage 1 (encoder, thermometer quantizer, decoder; multi-rate loss over 48..144 bits) on the
# DL CSI of both sets, then stage 2 (codec frozen: the sensor extractor g_E and the fusion
# refiner R) for the camera image, the camera's car box (a detector, shared/camera.py) and the
# uplink CSI at Ne = 4 and 32, and one bundle with the codec and the six fusion branches
# (bundles/mm-swin).
#
# Budget: STAGE1 / STAGE2 minutes of CPU time per model (defaults 50 / 12; CLOCK=cpu), one
# torch thread each, the stage-2 runs two at a time (the 2-core machine); each step decodes 2
# of the 5 trained rates (an unbiased estimate of the multi-rate loss at 1/2 of the cost). Resumable: data
# generation continues its .partial files, trainings their last checkpoint.
#
#   bash scripts/train_multimodal.sh                 # everything (~3 h wall on 2 idle cores)
#   STAGE1=5 STAGE2=2 OUT=runs/mm-small bash scripts/train_multimodal.sh
#   BOX_ONLY=1 bash scripts/train_multimodal.sh      # only the box branches, on the shipped
#                                                    # bundle's codec, added to it in place
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python} CSILINK=${CSILINK:-.venv/bin/csilink}
STAGE1=${STAGE1:-50} STAGE2=${STAGE2:-12} CLOCK=${CLOCK:-cpu} RUNS=${RUNS:-runs/mm} OUT=${OUT:-bundles/mm-swin}
BOX_ONLY=${BOX_ONLY:-0}
IMAGE=${IMAGE:-data/generated/rt-street-image.h5} WIRELESS=${WIRELESS:-data/generated/rt-street-wireless.h5}
mkdir -p "$RUNS"

[ -f "$IMAGE" ] || "$CSILINK" dataset generate-rt --profile rt-street-image -o "$IMAGE"

stage2() {
  local sensor=$1 ne=$2 init=$3
  echo "$(date -u +%FT%TZ) stage 2 $sensor Ne=$ne for $STAGE2 $CLOCK-min"
  # the camera branches train on the camera-paired rows; the uplink branch on every row
  local data=(--data "$IMAGE")
  [ "$sensor" = uplink ] && data=(--data "$WIRELESS" --data "$IMAGE")
  "$PY" -m training.multimodal stage2 "${data[@]}" --fusion "$sensor" --ne "$ne" \
    --init "$init" --out "$RUNS/s2-$sensor-ne$ne" --minutes "$STAGE2" --clock "$CLOCK" \
    --rates-per-step 2 \
    >>"$RUNS/s2-$sensor-ne$ne.log" 2>&1
}

if [ "$BOX_ONLY" = 1 ]; then  # the shipped codec is the stage-1 result: train on it, add in place
  stage2 box 4 "$OUT" & stage2 box 32 "$OUT" & wait
  "$PY" -m training.multimodal add-branch --data "$IMAGE" --out "$OUT" \
    --branch "box:4:$RUNS/s2-box-ne4" --branch "box:32:$RUNS/s2-box-ne32"
  echo "$(date -u +%FT%TZ) added the box branches to $OUT"
  exit 0
fi

[ -f "$WIRELESS" ] || "$CSILINK" dataset generate-rt --profile rt-street-wireless -o "$WIRELESS"
echo "$(date -u +%FT%TZ) stage 1 for $STAGE1 $CLOCK-min (log: $RUNS/stage1.log)"
"$PY" -m training.multimodal stage1 --data "$WIRELESS" --data "$IMAGE" --out "$RUNS/stage1" \
  --minutes "$STAGE1" --clock "$CLOCK" --rates-per-step 2 >>"$RUNS/stage1.log" 2>&1

S1="$RUNS/stage1/best.pt"
stage2 image 4 "$S1" & stage2 image 32 "$S1" & wait
stage2 uplink 4 "$S1" & stage2 uplink 32 "$S1" & wait
stage2 box 4 "$S1" & stage2 box 32 "$S1" & wait

"$PY" -m training.multimodal export --init "$RUNS/stage1" --data "$WIRELESS" --data "$IMAGE" --out "$OUT" --force \
  --branch "image:4:$RUNS/s2-image-ne4" --branch "image:32:$RUNS/s2-image-ne32" \
  --branch "uplink:4:$RUNS/s2-uplink-ne4" --branch "uplink:32:$RUNS/s2-uplink-ne32" \
  --branch "box:4:$RUNS/s2-box-ne4" --branch "box:32:$RUNS/s2-box-ne32"
echo "$(date -u +%FT%TZ) wrote $OUT"
