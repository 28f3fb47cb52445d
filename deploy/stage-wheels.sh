#!/usr/bin/env bash
# stage-wheels.sh: put the CPU torch wheel into the Docker build context (.whl/, git-ignored)
# for deploy/Dockerfile.bs. Nothing is downloaded from the internet for it: pip resolves the
# pinned `torch==2.13.0+cpu` against this machine's pip settings (`pip config list`: here
# find-links=/opt/wheels holds torch-2.13.0+cpu-cp311-...whl) and copies the file. A machine
# without a local CPU wheel gets it from the PyTorch CPU index instead:
#   PIP_INDEX_URL=https://download.pytorch.org/whl/cpu deploy/stage-wheels.sh
# Idempotent: a wheel already staged is kept.
# Usage: deploy/stage-wheels.sh [PIP]     (PIP: default .venv/bin/pip, else pip3)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST="$REPO/.whl"
SPEC=${TORCH_SPEC:-torch==2.13.0+cpu}
PIP=${1:-}
if [ -z "$PIP" ]; then
  if [ -x "$REPO/.venv/bin/pip" ]; then PIP="$REPO/.venv/bin/pip"; else PIP=pip3; fi
fi
mkdir -p "$DEST"
ver=${SPEC#*==}
if compgen -G "$DEST/torch-${ver}-cp311-*.whl" >/dev/null; then
  echo "stage-wheels: $(cd "$DEST" && ls torch-"${ver}"-cp311-*.whl) already staged in .whl/"
  exit 0
fi
# The image runs CPython 3.11 on x86_64 Linux: ask for that wheel whatever runs this script.
if ! "$PIP" download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 -d "$DEST" "$SPEC"; then
  echo "stage-wheels: no wheel for $SPEC (CPython 3.11, x86_64) reachable by $PIP." >&2
  echo "  pip settings: $("$PIP" config list 2>/dev/null | tr '\n' ' ')" >&2
  echo "  Put the wheel in $DEST by hand, or set PIP_INDEX_URL=https://download.pytorch.org/whl/cpu." >&2
  exit 1
fi
echo "stage-wheels: staged $(cd "$DEST" && ls torch-"${ver}"-*.whl) ($(du -sh "$DEST" | cut -f1)) in .whl/"
