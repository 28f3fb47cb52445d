"""What the nodes of the downlink image link agree on, numpy only (UE, emulator, BS, runner).

* The CSI feedback wire: the UE's channel estimate goes to the BS as an ordinary ``CsiReport``
  of the built-in model ``mimo-csi`` (no bundle: the quantizer of ``shared.mimo`` is fixed),
  rate name ``"<Nr>x<Nt>b<bits>"`` (e.g. ``"4x4b6"``), payload ``shared.mimo.quantize_h``
  (``16 + 2 Nr Nt bits`` bits), the coherence block in ``CsiReport.block``. The rate name is
  CONTROL information, so the BS knows how to dequantize without guessing from the length.
* Image-link model families: a bundle of such a family loads as an image receiver at the UE
  (``shared.image_rx``) and an image transmitter at the BS (``models.<pkg>.bs``), not as a
  CSI encoder / decoder.
* Checks of the request fields every node validates the same way (sizes, SNR, CSI mode).

>>> rate_name(4, 4, 6), parse_rate("4x4b6")
('4x4b6', (4, 4, 6))
"""

from __future__ import annotations

import math
import re

import numpy as np

from shared import mimo
from shared.errors import InvalidInput
from shared.wire import Bits

#: Model id and version of the CSI feedback reports (built into the UE and the BS).
MIMO_CSI_MODEL = "mimo-csi"
MIMO_CSI_VERSION = "1"
#: ``ReportResult.target`` of a mimo-csi report: ``h_ad`` holds the dequantized H ``[Nr, Nt]``.
MIMO_CSI_TARGET = "h/mimo"
#: Bundle families that are image-link models (image receiver at the UE, transmitter at the BS).
IMAGE_FAMILIES = ("lcfsc",)
#: What the BS's encoder gets as CSI (SendImageRequest.csi_mode).
CSI_MODES = ("feedback", "perfect", "none")
#: Largest antenna count per side the nodes accept (the shipped models serve 2, 4, 8).
MAX_ANTENNAS = 64
SNR_RANGE_DB = (-50.0, 100.0)

_RATE = re.compile(r"^(\d+)x(\d+)b(\d+)$")


def is_image_family(family: str) -> bool:
    return family in IMAGE_FAMILIES


def rate_name(nr: int, nt: int, bits: int) -> str:
    return f"{nr}x{nt}b{bits}"


def parse_rate(rate: str) -> tuple[int, int, int]:
    """``"<Nr>x<Nt>b<bits>"`` -> ``(nr, nt, bits)``, validated."""
    m = _RATE.match(rate or "")
    if m is None:
        raise InvalidInput(
            f"{MIMO_CSI_MODEL} report rate {rate!r} is not '<Nr>x<Nt>b<bits>' (e.g. '4x4b6')"
        )
    nr, nt, bits = (int(g) for g in m.groups())
    check_size(nt, nr)
    if not 1 <= bits <= 12:
        raise InvalidInput(f"{MIMO_CSI_MODEL} report rate {rate!r}: bits per real must be 1..12, got {bits}")
    return nr, nt, bits


def encode_csi(h: np.ndarray, bits: int) -> tuple[Bits, str]:
    """The UE side: ``H [Nr, Nt]`` -> (payload, rate name)."""
    h = mimo.check_h(h)[0]
    data, n_bits = mimo.quantize_h(h, bits)
    return Bits(data, n_bits), rate_name(h.shape[0], h.shape[1], bits)


def decode_csi(payload: Bits | np.ndarray, rate: str) -> np.ndarray:
    """The BS side: payload + rate name -> ``H [Nr, Nt]`` complex64 (``InvalidInput`` when the
    payload is analog, of the wrong length, or decodes to a non-finite scale)."""
    nr, nt, bits = parse_rate(rate)
    if not isinstance(payload, Bits):
        raise InvalidInput(f"{MIMO_CSI_MODEL} reports are bitstreams, got analog symbols")
    return mimo.dequantize_h(payload.data, payload.n_bits, nr, nt, bits)


def check_size(nt: int, nr: int) -> None:
    for name, n in (("nt", nt), ("nr", nr)):
        if not 1 <= int(n) <= MAX_ANTENNAS:
            raise InvalidInput(f"{name} must be 1..{MAX_ANTENNAS} antennas, got {n}")


def check_snr(snr_db: float) -> float:
    lo, hi = SNR_RANGE_DB
    if not (math.isfinite(snr_db) and lo <= snr_db <= hi):
        raise InvalidInput(f"snr_db must be a number in [{lo:g}, {hi:g}] dB, got {snr_db}")
    return float(snr_db)


def check_model_size(model_id: str, sizes: tuple[int, ...], nt: int, nr: int) -> None:
    """The image-link models serve square MIMO sizes (``model.sizes``)."""
    if nt not in sizes or nr != nt:
        raise InvalidInput(
            f"model {model_id} serves {', '.join(f'{n}x{n}' for n in sizes)} MIMO, got "
            f"{nr}x{nt} (Nr x Nt)"
        )


def check_images(images: np.ndarray, size: int, what: str = "images") -> np.ndarray:
    """``[B, S, S, 3]`` uint8 with ``S == size``."""
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (size, size, 3) or x.shape[0] == 0:
        raise InvalidInput(f"{what} must be uint8 [B, {size}, {size}, 3], got {x.dtype} {list(x.shape)}")
    return x
