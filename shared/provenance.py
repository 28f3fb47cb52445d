"""Provenance of a result: git commit, package versions, platform, time. numpy-free, torch-free.

Every results file and bundle records one of these, so a number can be traced to the code
and libraries that made it.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

PACKAGES = ("csilink", "numpy", "torch", "onnx", "onnxruntime", "h5py", "safetensors", "sionna", "grpcio")


def git_commit(repo: str | Path = REPO) -> str:
    """``HEAD`` commit (40 hex), with ``-dirty`` when tracked files differ; ``"unknown"`` outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent packages are left out)."""
    out: dict[str, str] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def cpu_model() -> str:
    """The CPU's model name and clock (Linux ``/proc/cpuinfo``; ``platform.processor()`` else):
    VMs with the same core count differ up to 2x in speed, so timed results name theirs."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = dict(
                (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in f) if v
            )
    except OSError:
        return platform.processor() or "unknown"
    name = info.get("model name", platform.processor() or "unknown")
    mhz = info.get("cpu MHz")
    return f"{name} @ {float(mhz):.0f} MHz" if mhz else name


def provenance(**extra: Any) -> dict[str, Any]:
    """One dict: commit, versions, python, platform, CPU model and count, UTC time, plus ``extra``."""
    return {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }
