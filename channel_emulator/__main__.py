"""``python -m channel_emulator``: run the channel emulator node (same as ``csilink serve channel``)."""

from __future__ import annotations

import sys

from channel_emulator.server import main

if __name__ == "__main__":
    sys.exit(main())
