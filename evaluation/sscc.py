"""Separate source-channel coding over the same MIMO link, with a real code: JPEG (scan data;
tables known at both ends) + 5G NR LDPC + QAM (Sionna), the same Nt streams and channel uses
as the JSCC models (768 symbols per image), MMSE detection with the UE's own channel estimate
and max-log LLRs at each stream's post-MMSE noise level. One codeword per image; a failed
codeword loses the image (the receiver shows mid-grey): the cliff effect. MCSs are fixed
across SNR, as a link without adaptation, so each one shows its own cliff.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evaluation.image_link import QUALITIES, jpeg_join, jpeg_split
from shared import metrics, mimo

MCS = {"QPSK 1/2": (2, 0.5), "16QAM 1/2": (4, 0.5), "64QAM 2/3": (6, 2 / 3)}


def _fit_jpeg(img: np.ndarray, k: int) -> tuple[bytes, bytes] | None:
    """(headers, scan) of the best-quality JPEG whose scan fits ``k`` info bits, or None."""
    best = None
    for q in QUALITIES:
        head, scan = jpeg_split(img, q)
        if 8 * len(scan) > k:
            break
        best = (head, scan)
    return best


def jpeg_ldpc(
    images: np.ndarray,
    h: np.ndarray,
    y_p: np.ndarray,
    snr_db: np.ndarray,
    mcs: str,
    n_symbols: int,
    seed: int,
    rx: Any = None,
) -> dict[str, Any]:
    import torch
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import Constellation, Demapper, Mapper

    bps, rate = MCS[mcs]
    n_cw = n_symbols * bps
    k = int(round(rate * n_cw))
    enc = LDPC5GEncoder(k, n_cw)
    dec = LDPC5GDecoder(enc, num_iter=20, hard_out=True)
    const = Constellation("qam", bps)
    mapper, demapper = Mapper(constellation=const), Demapper("maxlog", constellation=const)
    b, nt = h.shape[0], h.shape[2]
    # source: the JPEG scan bytes, zero-padded to k (quality and length are control information)
    jpegs, info = [], np.zeros((b, k), np.float32)
    for i, img in enumerate(images):
        jpegs.append(_fit_jpeg(img, k))
        if jpegs[-1] is not None:
            bits = np.unpackbits(np.frombuffer(jpegs[-1][1], np.uint8))
            info[i, : bits.size] = bits
    x = mapper(enc(torch.from_numpy(info))).numpy().reshape(b, nt, -1)
    rng = np.random.default_rng(seed)
    y = mimo.propagate(h, x, snr_db, rng)
    h_e = rx.estimate(y_p, snr_db) if rx is not None else mimo.ls_estimate(y_p)
    x_hat, sinr_db = mimo.mmse(h_e, y, snr_db)
    no = np.repeat(10 ** (-sinr_db / 10), x_hat.shape[2], axis=1)  # per symbol, stream-major
    llr = demapper(torch.from_numpy(x_hat.reshape(b, -1)), torch.from_numpy(no.astype(np.float32)))
    bits_hat = dec(llr).numpy().astype(np.uint8)
    ok = (bits_hat == info).all(1)  # a CRC would flag the others: the image is lost
    rec = np.full_like(images, 128)
    for i in np.flatnonzero(ok):
        if jpegs[i] is not None:
            head, scan = jpegs[i]
            rec[i] = jpeg_join(head, np.packbits(bits_hat[i, : 8 * len(scan)]).tobytes())
    return {
        "psnr": metrics.psnr(images, rec),
        "msssim": metrics.ms_ssim(images, rec),
        "outage": float(1 - ok.mean()),
        "info_bits": k,
    }
