"""A pool of narrowband MIMO channel matrices from Sionna's TR 38.901 CDL models, for the
semantic image link (the emulator draws each block's H from it; training samples from it).

Each matrix is one CDL drop (model A..E drawn per matrix, delay spread 100 ns, UE speed
0..30 km/h) seen on one random subcarrier of a 20 MHz, 30 kHz carrier at 3.5 GHz: BS ULA of
Nt elements and UE ULA of Nr elements at half a wavelength. The pool is normalised to unit
average power per entry over its train split (the large-scale loss is the SNR's business).

HDF5 layout (``csilink-mimo-pool/1``): a group per size ``"{Nr}x{Nt}"`` with ``train`` and
``test`` complex64 ``[n, Nr, Nt]`` and ``model`` (the CDL letter per matrix) per split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np

SCHEMA = "csilink-mimo-pool/1"
MODELS = "ABCDE"


def _array(n: int, fc: float):
    from sionna.phy.channel.tr38901 import PanelArray

    return PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=n,
        polarization="single",
        polarization_type="V",
        antenna_pattern="omni",
        carrier_frequency=fc,
        precision="single",
        device="cpu",
    )


def draw(n: int, nr: int, nt: int, seed: int, fc: float = 3.5e9) -> tuple[np.ndarray, np.ndarray]:
    """``n`` matrices ``[n, Nr, Nt]`` (unnormalised) and their CDL letters."""
    import torch
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies
    from sionna.phy.channel.tr38901 import CDL

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    letters = rng.choice(list(MODELS), size=n)
    freqs = subcarrier_frequencies(624, 30e3, precision="single", device="cpu")
    out = np.zeros((n, nr, nt), np.complex64)
    for m in MODELS:
        idx = np.flatnonzero(letters == m)
        if not idx.size:
            continue
        # One subcarrier of a wideband channel: the delay spread only moves which frequency is
        # seen, so one value per model is enough for the matrix statistics.
        cdl = CDL(
            model=m,
            delay_spread=100e-9,
            carrier_frequency=fc,
            ut_array=_array(nr, fc),
            bs_array=_array(nt, fc),
            direction="downlink",
            min_speed=0.0,
            max_speed=8.3,
            precision="single",
            device="cpu",
        )
        a, tau = cdl(int(idx.size), 1, 1e4)
        h = cir_to_ofdm_channel(freqs, a, tau, normalize=False)  # [b, 1, Nr, 1, Nt, 1, F]
        f_idx = torch.as_tensor(rng.integers(0, freqs.shape[0], size=idx.size))
        h = h[:, 0, :, 0, :, 0, :]  # [b, Nr, Nt, F]
        out[idx] = h[torch.arange(idx.size), :, :, f_idx].numpy()
    return out, letters


def generate(
    out: Path, sizes: tuple[int, ...] = (2, 4, 8), n_train: int = 2000, n_test: int = 400, seed: int = 11
) -> Path:
    from shared.provenance import provenance

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".h5.partial")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = SCHEMA
        f.attrs["config"] = json.dumps(
            {
                "sizes": sizes,
                "n_train": n_train,
                "n_test": n_test,
                "seed": seed,
                "carrier_hz": 3.5e9,
                "models": MODELS,
            }
        )
        f.attrs["provenance"] = json.dumps(provenance(command="python -m datagen.mimo"))
        for k, n in enumerate(sizes):
            tr, ltr = draw(n_train, n, n, seed * 100 + 2 * k)
            te, lte = draw(n_test, n, n, seed * 100 + 2 * k + 1)
            scale = np.sqrt(np.mean(np.abs(tr) ** 2))
            g = f.create_group(f"{n}x{n}")
            g.create_dataset("train", data=(tr / scale).astype(np.complex64))
            g.create_dataset("test", data=(te / scale).astype(np.complex64))
            g.create_dataset("train_model", data=ltr.astype("S1"))
            g.create_dataset("test_model", data=lte.astype("S1"))
            g.attrs["scale"] = float(scale)
    tmp.replace(out)
    return out


def load_pool(path: str | Path, n: int, split: str) -> np.ndarray:
    """``[m, n, n]`` complex64 matrices of one size and split (clear error when absent)."""
    from shared.errors import InvalidInput

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != SCHEMA:
            raise InvalidInput(f"{path} is not a {SCHEMA} file")
        key = f"{n}x{n}"
        if key not in f or split not in f[key]:
            raise InvalidInput(f"{path} has no {key}/{split} channels (sizes: {sorted(f.keys())})")
        return f[key][split][:]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/sample/mimo-cdl.h5"))
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args(argv)
    print(generate(a.out, n_train=a.train, n_test=a.test, seed=a.seed))


if __name__ == "__main__":
    main()
