#!/usr/bin/env python3
"""Print the requirements of ``pyproject.toml`` (core + chosen extras), one per line.

The Dockerfiles install the dependencies in a layer of their own, before the source is
copied, so a code change does not reinstall numpy/onnxruntime/torch. This script keeps
``pyproject.toml`` the only list of dependencies: the images never carry a copy of it.

Usage: ``python deploy/pyproject_deps.py [PYPROJECT] [--extra bs] [--exclude torch] [--only NAME]``
Standard library only (tomllib, Python >= 3.11): it runs in the bare base image.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path


def requirement_name(req: str) -> str:
    """``"torch==2.13.0; sys_platform=='linux'"`` -> ``"torch"`` (normalized, PEP 503)."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    if not m:
        raise SystemExit(f"cannot read a package name from requirement {req!r}")
    return re.sub(r"[-_.]+", "-", m.group(1)).lower()


def requirements(
    pyproject: Path, extras: list[str], exclude: list[str], only: list[str] | None = None
) -> list[str]:
    """Core dependencies followed by each extra's, without duplicates or excluded names;
    with ``only``, just the requirements of those names (an unknown name is an error)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    reqs = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"{pyproject}: no extra {extra!r} (have: {', '.join(sorted(optional))})")
        reqs += optional[extra]
    skip = {requirement_name(x) for x in exclude}
    out: list[str] = []
    seen: set[str] = set()
    for req in reqs:
        name = requirement_name(req)
        if name in skip or req in seen:
            continue
        seen.add(req)
        out.append(req)
    if only:
        want = {requirement_name(x) for x in only}
        out = [r for r in out if requirement_name(r) in want]
        missing = want - {requirement_name(r) for r in out}
        if missing:
            names = ", ".join(sorted(missing))
            raise SystemExit(f"{pyproject}: no requirement named {names} in the chosen groups")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pyproject", nargs="?", default="pyproject.toml", type=Path)
    ap.add_argument("--extra", action="append", default=[], help="optional-dependency group to add")
    ap.add_argument("--exclude", action="append", default=[], help="package name to leave out")
    ap.add_argument("--only", action="append", default=[], help="print only this package's requirement")
    args = ap.parse_args(argv)
    print("\n".join(requirements(args.pyproject, args.extra, args.exclude, args.only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
