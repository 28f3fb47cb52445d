#!/usr/bin/env bash
# measure-images.sh: build the three csilink images from scratch (--no-cache, one after the
# other) and print a markdown table of build wall times and image sizes for docs/deploy.md.
# Needs a running engine and the python:3.11-slim base (deploy/docker-engine.sh) and the
# staged CPU torch wheel (deploy/stage-wheels.sh, run here first).
# Usage: deploy/measure-images.sh [--cached]
#   --cached: keep the layer cache and change one file of the build context first (a
#   throw-away stamp, removed on exit), so the times are those of a rebuild after a code change.
set -euo pipefail
cd "$(dirname "$0")/.."
NOCACHE=--no-cache
LABEL="from scratch"
if [ "${1:-}" = --cached ]; then
  NOCACHE=
  LABEL="after a code change"
  trap 'rm -f deploy/.measure-stamp' EXIT
  date +%s%N >deploy/.measure-stamp
fi
deploy/stage-wheels.sh >&2
declare -A secs
for s in ue channel bs; do
  t0=$(date +%s%N)
  docker build -q $NOCACHE --network host -f "deploy/Dockerfile.$s" -t "csilink-$s:latest" . >/dev/null
  secs[$s]=$(( ($(date +%s%N) - t0) / 1000000000 ))
done
echo "| image | Dockerfile | build $LABEL (s) | size (MB) | torch |"
echo "|---|---|---|---|---|"
for s in ue channel bs; do
  size=$(( $(docker image inspect "csilink-$s:latest" --format '{{.Size}}') / 1000000 ))
  if docker run --rm --network none "csilink-$s:latest" python -c "import torch" >/dev/null 2>&1; then
    torch=$(docker run --rm --network none "csilink-$s:latest" python -c "import torch; print(torch.__version__)")
  else
    torch="none"
  fi
  printf '| csilink-%s | deploy/Dockerfile.%s | %s | %s | %s |\n' "$s" "$s" "${secs[$s]}" "$size" "$torch"
done
base=$(( $(docker image inspect python:3.11-slim --format '{{.Size}}') / 1000000 ))
echo
echo "Base python:3.11-slim: ${base} MB. $(nproc) CPU cores, $(docker version --format 'engine {{.Server.Version}}'), classic builder."
