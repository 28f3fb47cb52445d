#!/usr/bin/env python3
"""Generate the Python gRPC code of ``proto/csilink/v1/*.proto`` into ``csilink/v1/``.

``csilink/v1/`` is git-ignored: it is a build output (``make proto``), never edited by hand.
The generated ``__init__.py`` records the sha256 of the .proto sources (``PROTO_DIGEST``) so
``csilink.rpc`` can tell a stale build from a current one and regenerate.

The output is written to a temporary folder and moved into place, so several processes
starting at once (the three services of a test) never see a half-written package.

Usage: ``python scripts/gen_proto.py [--check]`` (``--check``: exit 1 when stale or missing).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
PROTO_DIR = PROTO_ROOT / "csilink" / "v1"
OUT_DIR = ROOT / "csilink" / "v1"


def proto_files() -> list[Path]:
    files = sorted(PROTO_DIR.glob("*.proto"))
    if not files:
        raise SystemExit(f"no .proto files under {PROTO_DIR}")
    return files


def proto_digest() -> str:
    """sha256 over the names and bytes of every .proto source."""
    h = hashlib.sha256()
    for p in proto_files():
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def generated_digest() -> str | None:
    init = OUT_DIR / "__init__.py"
    if not init.is_file():
        return None
    for line in init.read_text().splitlines():
        if line.startswith("PROTO_DIGEST = "):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def is_current() -> bool:
    return generated_digest() == proto_digest()


def generate(force: bool = True) -> Path:
    """Run grpc_tools.protoc; returns the output package folder."""
    try:
        from grpc_tools import protoc
    except ImportError:  # pragma: no cover - depends on the install
        raise SystemExit(
            "grpcio-tools is not installed: pip install 'csilink[dev]' (or grpcio-tools)"
        ) from None
    if not force and is_current():
        return OUT_DIR
    digest = proto_digest()
    tmp = Path(tempfile.mkdtemp(prefix=".v1-gen-", dir=OUT_DIR.parent))
    try:
        include = Path(protoc.__file__).parent / "_proto"  # well-known types
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
        ]
        rc = protoc.main(args)
        if rc != 0:
            raise SystemExit(f"protoc failed (exit {rc}) on {PROTO_DIR}")
        gen = tmp / "csilink" / "v1"
        (gen / "__init__.py").write_text(
            '"""Generated from proto/csilink/v1 by scripts/gen_proto.py. Do not edit."""\n\n'
            f'PROTO_DIGEST = "{digest}"\n'
        )
        # Move into place: the old package (if any) aside first, then the new one in one rename.
        old = None
        if OUT_DIR.exists():
            old = Path(tempfile.mkdtemp(prefix=".v1-old-", dir=OUT_DIR.parent))
            with contextlib.suppress(FileNotFoundError):  # another process moved it meanwhile
                os.replace(OUT_DIR, old / "v1")
        try:
            os.replace(gen, OUT_DIR)
        except OSError:
            # Another process won the race and put a package there; keep theirs if current.
            if not is_current():
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return OUT_DIR


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when csilink/v1 is stale or missing")
    args = ap.parse_args(argv)
    if args.check:
        ok = is_current()
        print("csilink/v1 is current" if ok else "csilink/v1 is stale or missing: run make proto")
        return 0 if ok else 1
    out = generate(force=True)
    names = sorted(p.name for p in out.glob("*.py*"))
    print(f"generated {len(names)} files into {out.relative_to(ROOT)}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
