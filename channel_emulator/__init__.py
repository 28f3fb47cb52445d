"""Channel emulator: numpy channel models, modulation and CRC between the UE and the BS.

The physics lives in small modules (``config``, ``rng``, ``fading``, ``simo``, ``modulation``,
``crc``, ``analog``, ``digital``, ``stats``, ``link``); ``Link`` is what the gRPC servicer calls.
No torch here (see docs/ARCHITECTURE.md). Documented in docs/channel.md.
"""

from channel_emulator.analog import AnalogResult, transmit_analog
from channel_emulator.config import LinkConfig
from channel_emulator.digital import DigitalResult, transmit_bits
from channel_emulator.link import Link
from channel_emulator.rng import ReportRng
from channel_emulator.stats import LinkStats

__all__ = [
    "AnalogResult",
    "DigitalResult",
    "Link",
    "LinkConfig",
    "LinkStats",
    "ReportRng",
    "transmit_analog",
    "transmit_bits",
]
