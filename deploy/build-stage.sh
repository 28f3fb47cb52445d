#!/bin/sh
# Build stage of every csilink image (runs inside `docker build`, in the copied source tree):
#   1. generate the gRPC code of proto/ into csilink/v1 (scripts/gen_proto.py, grpcio-tools);
#   2. build the csilink wheel (it then carries csilink/v1) into /out/wheels;
#   3. gather the runtime data the services read by relative path (bundles, the sample
#      dataset, scenarios) into /out/app, which becomes the image's /app working dir.
set -eu
python scripts/gen_proto.py
pip wheel -q --no-deps -w /out/wheels .
mkdir -p /out/app
for d in bundles data/sample scenarios; do
    if [ -d "$d" ]; then
        cp -a --parents "$d" /out/app/
    else
        echo "build-stage: note: $d/ is not in the build context; the image has none" >&2
    fi
done
