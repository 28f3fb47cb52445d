"""The docstring examples of the channel emulator run, and the package never imports torch."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

MODULES = ["config", "rng", "crc", "modulation", "fading", "simo", "analog", "digital", "theory", "stats",
           "link", "mimo"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"channel_emulator.{name}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_physics_modules_do_not_import_torch():
    code = (
        "import sys\n"
        + "".join(f"import channel_emulator.{m}\n" for m in MODULES)
        + "assert 'torch' not in sys.modules and 'sionna' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
