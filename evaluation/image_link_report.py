"""Tables and figures of the image-link benchmark (``benchmarks/bench_image_link.py``): the
results block of docs/image_link.md and docs/img/il_*.png, from docs/bench/image_link.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
LABEL = {
    "lcfsc-mse": "LCFSC (MSE)",
    "nomask-mse": "no masking (MSE)",
    "lcfsc-msssim": "LCFSC (MS-SSIM)",
    "nomask-msssim": "no masking (MS-SSIM)",
    "lcfsc-mse-ref": "LCFSC (MSE, retrained)",
    "nomask-mse-ref": "no masking (MSE, retrained)",
    "lcfsc-svd-mse": "LCFSC + SVD precoding (MSE)",
    "nomask-svd-mse": "no masking + SVD precoding (MSE)",
    "jpeg+capacity": "JPEG + capacity",
}
PRECODED = ("lcfsc-svd-mse", "nomask-svd-mse")
REF = ("lcfsc-mse-ref", "nomask-mse-ref")  # the unprecoded pair trained beside the precoded one


def _get(rows: list[dict], **kw: Any) -> dict | None:
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def _fmt(v: Any, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _snr_table(rows: list[dict], n: int, models: list[str], key: str = "psnr_db", nd: int = 2) -> list[str]:
    snrs = sorted({r["snr_db"] for r in rows if r["n"] == n})
    out = ["| model | " + " | ".join(f"{s:g} dB" for s in snrs) + " |", "|---|" + "---|" * len(snrs)]
    for m in models:
        vals = [(_get(rows, model=m, n=n, snr_db=s) or {}).get(key) for s in snrs]
        if any(v is not None for v in vals):
            out.append(f"| {LABEL.get(m, m)} | " + " | ".join(_fmt(v, nd) for v in vals) + " |")
    return out


def _plot_snr(doc: dict, img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc.get("snr", {}).get("rows", [])
    if not rows:
        return []
    sizes = sorted({r["n"] for r in rows})
    fig, ax = plt.subplots(2, len(sizes), figsize=(4.2 * len(sizes), 6.5), squeeze=False)
    for j, n in enumerate(sizes):
        for m in ("lcfsc-mse", "nomask-mse", "lcfsc-msssim", "nomask-msssim", "jpeg+capacity"):
            pts = sorted(
                (r["snr_db"], r["psnr_db"], r["msssim"]) for r in rows if r["model"] == m and r["n"] == n
            )
            if not pts:
                continue
            s, p, q = zip(*pts, strict=True)
            style = "--" if m.startswith("nomask") else (":" if m.startswith("jpeg") else "-")
            ax[0, j].plot(s, p, style, marker="o", label=LABEL[m])
            ax[1, j].plot(s, q, style, marker="o", label=LABEL[m])
        for mcs in dict.fromkeys(r["model"] for r in doc.get("sscc", {}).get("rows", []) if r["n"] == n):
            pts = sorted(
                (r["snr_db"], r["psnr_db"], r["msssim"]) for r in doc["sscc"]["rows"] if r["model"] == mcs
            )
            s, p, q = zip(*pts, strict=True)
            ax[0, j].plot(s, p, "-.", marker="x", alpha=0.7, label=mcs)
            ax[1, j].plot(s, q, "-.", marker="x", alpha=0.7, label=mcs)
        ax[0, j].set_title(f"{n}x{n} MIMO, CSI fed back at 6 b/real")
        ax[0, j].set_ylabel("PSNR (dB)")
        ax[1, j].set_ylabel("MS-SSIM")
        for a in ax[:, j]:
            a.set_xlabel("SNR (dB)")
            a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize=7)
    fig.tight_layout()
    img.mkdir(parents=True, exist_ok=True)
    fig.savefig(img / "il_snr.png", dpi=110)
    plt.close(fig)
    return ["![PSNR and MS-SSIM vs SNR](img/il_snr.png)", ""]


def _at(curve: list[dict], key: str, x: float) -> float | None:
    """Validation PSNR at ``x`` (samples or CPU seconds) by linear interpolation."""
    xs = [c[key] for c in curve]
    if not xs or x > xs[-1] or x < xs[0]:
        return None
    return float(np.interp(x, xs, [c["val_psnr_db"] for c in curve]))


def _training(tr: dict, img: Path) -> list[str]:
    models = [m for m in LABEL if m in tr]
    L = [
        "### Training budget and curves",
        "",
        "Validation: 160 training-scene images held out, 10 dB, CSI fed back at 6 bits, mean PSNR over "
        "2x2 / 4x4 / 8x8. Each pair (LCFSC vs no masking) had the same CPU time; the masking costs "
        "compute (the mask generator and the proxy pass), so the no-masking twin saw more samples. "
        "The last column compares each pair at the same number of samples (the smaller final count).",
        "",
        "| model | CPU minutes | wall minutes | samples seen | steps | training images | best val PSNR | "
        "val PSNR at equal samples |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in models:
        r = tr[m]
        twin = m.replace("lcfsc", "nomask") if m.startswith("lcfsc") else m.replace("nomask", "lcfsc")
        eq = "-"
        if twin in tr and r["curve"] and tr[twin]["curve"]:
            x = min(r["curve"][-1]["samples"], tr[twin]["curve"][-1]["samples"])
            v = _at(r["curve"], "samples", x)
            eq = f"{v:.2f} dB at {x:,}" if v is not None else "-"
        L.append(
            f"| {LABEL.get(m, m)} | {r['cpu_minutes']} | {r['wall_minutes']} | {r['samples_seen']:,} | "
            f"{r['steps']:,} | {r['train_images']:,} | {_fmt(r.get('best_val_psnr_db'))} | {eq} |"
        )
    L.append("")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for m in models:
        c = tr[m]["curve"]
        if not c:
            continue
        style = "--" if m.startswith("nomask") else "-"
        ax[0].plot([p["samples"] for p in c], [p["val_psnr_db"] for p in c], style, label=LABEL[m])
        ax[1].plot([p["cpu_s"] / 60 for p in c], [p["val_psnr_db"] for p in c], style, label=LABEL[m])
    ax[0].set_xlabel("samples seen")
    ax[1].set_xlabel("CPU minutes (one thread)")
    for a in ax:
        a.set_ylabel("val PSNR (dB)")
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    img.mkdir(parents=True, exist_ok=True)
    fig.savefig(img / "il_training.png", dpi=110)
    plt.close(fig)
    return [*L, "![validation PSNR vs samples and CPU time](img/il_training.png)", ""]


def _precoding_block(doc: dict) -> list[str]:
    """The precoded pair against the unprecoded one: per size, per CSI quality, through the link."""
    L: list[str] = []
    pre = doc.get("precoding")
    if pre:
        rows = pre["rows"]
        models = [*REF, *PRECODED]

        def ps(m: str, n: int, s: float, csi: str = "perfect", bits: int = 0) -> float | None:
            return (_get(rows, model=m, n=n, snr_db=s, csi=csi, bits=bits) or {}).get("psnr_db")

        snrs = sorted({r["snr_db"] for r in rows})
        L += [
            f"### SVD precoding with the transmitter's CSI (perfect CSI, {pre['n_images']} test images, "
            "same draws for every model)",
            "",
            "PSNR (dB); the precoded models send Nt DMRS ahead of each image's data and the UE "
            "equalises with its fit of H W. Gains: precoded minus unprecoded, same masking choice.",
            "",
            "| size | SNR | " + " | ".join(LABEL[m] for m in models) + " | SVD gain, LCFSC | SVD gain, "
            "no masking | masking gain with SVD |",
            "|---|---|" + "---|" * (len(models) + 3),
        ]

        def diff(a: float | None, b: float | None) -> str:
            return "-" if a is None or b is None else f"{a - b:+.2f}"

        for n in sorted({r["n"] for r in rows}):
            for s in [*snrs, None]:
                if s is None:  # the mean over the SNRs
                    v = {m: [ps(m, n, t) for t in snrs] for m in models}
                    val = {
                        m: float(np.mean(x)) if all(y is not None for y in x) else None for m, x in v.items()
                    }
                    lab = "mean"
                else:
                    val = {m: ps(m, n, s) for m in models}
                    lab = f"{s:g} dB"
                L.append(
                    f"| {n}x{n} | {lab} | " + " | ".join(_fmt(val[m]) for m in models) + " | "
                    f"{diff(val['lcfsc-svd-mse'], val[REF[0]])} | "
                    f"{diff(val['nomask-svd-mse'], val[REF[1]])} | "
                    f"{diff(val['lcfsc-svd-mse'], val['nomask-svd-mse'])} |"
                )
        bud = pre.get("budget", {})
        if bud:
            L += [
                "",
                "Budget (CPU minutes of one torch thread / samples seen): "
                + "; ".join(
                    f"{LABEL.get(m, m)} {b.get('minutes')} / {b.get('samples_seen') or 0:,}"
                    for m, b in bud.items()
                )
                + ".",
            ]
        L += [
            "",
            "The CSI the transmitter uses, precoded and not (PSNR dB; \"another H\" = another image's "
            "channel fed back at 6 bits):",
            "",
            "| model | size | SNR | perfect | 8 b/real | 6 b/real | 4 b/real | 2 b/real | another H | "
            "perfect - 2 b | perfect - another H |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for m in (*PRECODED, REF[0]):
            for n in sorted({r["n"] for r in rows if r.get("csi") == "other"}):
                for s in snrs:
                    p0, p2, po = ps(m, n, s), ps(m, n, s, "feedback", 2), ps(m, n, s, "other", 6)
                    L.append(
                        f"| {LABEL[m]} | {n}x{n} | {s:g} dB | {_fmt(p0)} | "
                        + " | ".join(_fmt(ps(m, n, s, "feedback", b)) for b in (8, 6, 4, 2))
                        + f" | {_fmt(po)} | {diff(p0, p2)} | {diff(p0, po)} |"
                    )
        L.append("")
    lk = doc.get("link_precoding")
    if lk:
        rows = lk["rows"]
        from shared.mimo import csi_bits

        L += [
            f"### Through the link: precoded vs not, CSI perfect or fed back over the digital uplink "
            f"({lk['n_images']} test images, {lk.get('dataset', '')})",
            "",
            "PSNR (dB). Feedback: the UE's NPN estimate quantized and sent as a CSI report over the "
            "emulator's digital uplink (AWGN 10 dB, QPSK, CRC-11), dequantized at the BS.",
            "",
            "| model | size | SNR | perfect | fed back, 6 b/real | fed back, 2 b/real | payload at 6 / 2 b |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in [*REF, *PRECODED]:
            for n in sorted({r["n"] for r in rows}):
                for s in sorted({r["snr_db"] for r in rows}):

                    def g(csi: str, bits: Any = None, m: str = m, n: int = n, s: float = s) -> str:
                        kw = {"feedback_bits": bits} if bits else {}
                        return _fmt((_get(rows, model=m, n=n, snr_db=s, csi=csi, **kw) or {}).get("psnr_db"))

                    if _get(rows, model=m, n=n) is None:
                        continue
                    L.append(
                        f"| {LABEL.get(m, m)} | {n}x{n} | {s:g} dB | {g('perfect')} | {g('feedback', 6)} | "
                        f"{g('feedback', 2)} | {csi_bits(n, n, 6)} / {csi_bits(n, n, 2)} bits |"
                    )
        L.append("")
    return L


def results_block(doc: dict, img: Path) -> str:
    L = [START, "## Results (`benchmarks/bench_image_link.py`)", ""]
    link = doc.get("link")
    if link:
        L += [
            f"### Through the link: 2x2, CSI fed back at 6 bits per real ({link['n_images']} test images, "
            f"{link.get('dataset', '')})",
            "",
            "PSNR (dB):",
            "",
        ]
        L += _snr_table(link["rows"], 2, ["lcfsc-mse", "nomask-mse", "lcfsc-msssim", "nomask-msssim"])
        L += ["", "MS-SSIM:", ""]
        L += _snr_table(
            link["rows"], 2, ["lcfsc-mse", "nomask-mse", "lcfsc-msssim", "nomask-msssim"], "msssim", 4
        )
        if "in_process_max_abs_diff_db" in link:
            L += [
                "",
                f"Largest difference to the in-process run of the same draws: "
                f"{link['in_process_max_abs_diff_db']:.3f} dB PSNR.",
            ]
        L.append("")
    snr = doc.get("snr")
    if snr:
        L += [
            f"### PSNR vs SNR per MIMO size, in-process ({snr['n_images']} test images, same draws for every "
            "model)",
            "",
        ]
        for n in sorted({r["n"] for r in snr["rows"]}):
            L += [f"{n}x{n}, PSNR (dB):", ""]
            L += _snr_table(
                snr["rows"], n, ["lcfsc-mse", "nomask-mse", "lcfsc-msssim", "nomask-msssim", "jpeg+capacity"]
            )
            L += ["", f"{n}x{n}, MS-SSIM:", ""]
            L += _snr_table(
                snr["rows"],
                n,
                ["lcfsc-msssim", "nomask-msssim", "lcfsc-mse", "nomask-mse", "jpeg+capacity"],
                "msssim",
                4,
            )
            outs = [
                (r["snr_db"], r.get("outage"))
                for r in snr["rows"]
                if r["model"] == "jpeg+capacity" and r["n"] == n
            ]
            if outs:
                L += [
                    "",
                    "JPEG outage (no quality fits the capacity): "
                    + ", ".join(f"{s:g} dB: {o:.0%}" for s, o in sorted(outs)),
                    "",
                ]
        L += _plot_snr(doc, img)
    sscc = doc.get("sscc")
    if sscc:
        rows = sscc["rows"]
        snrs = sorted({r["snr_db"] for r in rows})
        L += [
            f"### Separate coding with a real code, 2x2 ({sscc['n_images']} test images, same draws)",
            "",
            "JPEG scan + 5G NR LDPC + QAM in the same 768 channel uses, the UE's NPN estimate, fixed "
            "MCS (no adaptation). PSNR in dB (outage: codewords lost):",
            "",
            "| MCS | info bits | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
            "|---|---|" + "---|" * len(snrs),
        ]
        for m in dict.fromkeys(r["model"] for r in rows):
            cells = []
            for s_ in snrs:
                r = _get(rows, model=m, snr_db=s_)
                cells.append("-" if r is None else f"{r['psnr_db']:.2f} ({r['outage']:.0%})")
            info = (_get(rows, model=m) or {}).get("info_bits", "-")
            L.append(f"| {m.removeprefix('JPEG + LDPC ')} | {info} | " + " | ".join(cells) + " |")
        L.append("")
    sizes = doc.get("sizes")
    if sizes:
        rows = sizes["rows"]
        L += [
            "### Masking gain per MIMO size, perfect CSI (mean over SNR 0, 10 and 20 dB)",
            "",
            "| size | LCFSC (MSE) | no masking (MSE) | gain | LCFSC @ m=0.009 | LCFSC (MS-SSIM) MS-SSIM | "
            "no masking (MS-SSIM) MS-SSIM | mean m* | paper gain |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        paper = {2: "+0.71", 4: "+0.74", 8: "+0.78"}
        for n in sorted({r["n"] for r in rows}):

            def mean(model: str, key: str = "psnr_db", n: int = n) -> float | None:
                v = [r[key] for r in rows if r["model"] == model and r["n"] == n and r.get(key) is not None]
                return float(np.mean(v)) if v else None

            a, b = mean("lcfsc-mse"), mean("nomask-mse")
            gain = None if a is None or b is None else a - b
            L.append(
                f"| {n}x{n} | {_fmt(a)} | {_fmt(b)} | {'-' if gain is None else f'{gain:+.2f}'} | "
                f"{_fmt(mean('lcfsc-mse @ m=0.009'))} | {_fmt(mean('lcfsc-msssim', 'msssim'), 4)} | "
                f"{_fmt(mean('nomask-msssim', 'msssim'), 4)} | {_fmt(mean('lcfsc-mse', 'mask_ratio'), 4)} | "
                f"{paper.get(n, '-')} dB |"
            )
        seeds = doc.get("seeds", {}).get("rows", [])
        if seeds:
            L += [
                "",
                "Run-to-run spread: the MSE pair trained again with seed 1 (same budget, the full "
                "training set from the start), same images and draws:",
                "",
                "| size | gain, seed 0 (shipped) | LCFSC seed 1 | no masking seed 1 | gain, seed 1 |",
                "|---|---|---|---|---|",
            ]
            for n in sorted({r["n"] for r in rows}):
                a0, b0 = mean("lcfsc-mse", n=n), mean("nomask-mse", n=n)
                pts = [r for r in seeds if r.get("n") == n]
                a1 = np.mean([r["psnr_db"] for r in pts if r["model"] == "lcfsc-mse-seed1"] or [np.nan])
                b1 = np.mean([r["psnr_db"] for r in pts if r["model"] == "nomask-mse-seed1"] or [np.nan])
                g0 = "-" if a0 is None or b0 is None else f"{a0 - b0:+.2f}"
                L.append(f"| {n}x{n} | {g0} | {a1:.2f} | {b1:.2f} | {a1 - b1:+.2f} |")
        var = doc.get("variant")
        if var:
            vr = var["rows"]
            tr = var.get("training", {}).get("summary", {})
            L += [
                "",
                "csilink's variant `lcfsc-tok` (LCFSC + each bottleneck token given the SINR of the "
                "stream it will ride, computed from the fed-back H; not in the paper), trained like "
                f"LCFSC-MSE ({tr.get('minutes', '-')} CPU-min, {tr.get('samples_seen', '-'):,} samples, "
                "the full training set from the start; not shipped), same images and draws, perfect "
                "CSI, mean over 0/10/20 dB:",
                "",
                "| size | LCFSC | no masking | LCFSC + SINR tokens | gain over no masking | "
                "symbols moved by another image's H |",
                "|---|---|---|---|---|---|",
            ]
            moved = var.get("another_h_rel_change", {})
            for n in sorted({r["n"] for r in rows}):
                a0, b0 = mean("lcfsc-mse", n=n), mean("nomask-mse", n=n)
                t0 = np.mean([r["psnr_db"] for r in vr if r["n"] == n and r["csi"] == "perfect"] or [np.nan])
                g = "-" if b0 is None else f"{t0 - b0:+.2f}"
                L.append(f"| {n}x{n} | {_fmt(a0)} | {_fmt(b0)} | {t0:.2f} | {g} | "
                         f"{moved.get(f'{n}x{n}', float('nan')):.1%} |")
            snrs_v = sorted({r["snr_db"] for r in vr if r["n"] == 2})
            L += ["", "The same variant on 2x2 with the CSI it is given (PSNR dB):", "",
                  "| CSI | " + " | ".join(f"{x:g} dB" for x in snrs_v) + " |", "|---|" + "---|" * len(snrs_v)]
            kinds = (("perfect", 0, "perfect"), ("feedback", 6, "fed back, 6 b/real"),
                     ("feedback", 2, "fed back, 2 b/real"), ("other", 6, "another image's H"))
            for csi, bits, label in kinds:
                cells = [_fmt((_get(vr, n=2, snr_db=x, csi=csi, bits=bits) or {}).get("psnr_db"))
                         for x in snrs_v]
                L.append(f"| {label} | " + " | ".join(cells) + " |")
        L += ["", "Mean learned mask ratio m* (LCFSC, MSE) vs SNR:", ""]
        snrs = sorted({r["snr_db"] for r in rows})
        L += ["| size | " + " | ".join(f"{s:g} dB" for s in snrs) + " |", "|---|" + "---|" * len(snrs)]
        for n in sorted({r["n"] for r in rows}):
            L.append(
                f"| {n}x{n} | "
                + " | ".join(
                    _fmt((_get(rows, model="lcfsc-mse", n=n, snr_db=s) or {}).get("mask_ratio"), 4)
                    for s in snrs
                )
                + " |"
            )
        L.append("")
    csi = doc.get("csi")
    if csi:
        rows = csi["rows"]
        L += [
            "### The CSI the transmitter uses (LCFSC, MSE): perfect vs fed back through csilink",
            "",
            "| size | SNR | perfect | 8 b/real | 6 b/real | 4 b/real | 2 b/real | another image's H (6 b) | "
            "6 b/real, LS-only UE | no masking | no masking, LS-only UE | feedback bits at 6 b |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        from shared.mimo import csi_bits

        for n in sorted({r["n"] for r in rows}):
            for s in sorted({r["snr_db"] for r in rows}):

                def v(n: int = n, s: float = s, **kw: Any) -> str:
                    return _fmt((_get(rows, n=n, snr_db=s, **kw) or {}).get("psnr_db"))

                L.append(
                    f"| {n}x{n} | {s:g} dB | {v(model='lcfsc-mse', csi='perfect')} | "
                    + " | ".join(
                        v(model="lcfsc-mse", csi="feedback", bits=b, estimator="npn") for b in (8, 6, 4, 2)
                    )
                    + f" | {v(model='lcfsc-mse', csi='other', bits=6)} | "
                    f"{v(model='lcfsc-mse', csi='feedback', bits=6, estimator='ls')} | "
                    f"{v(model='nomask-mse', csi='none', estimator='npn')} | "
                    f"{v(model='nomask-mse', csi='none', estimator='ls')} | {csi_bits(n, n, 6)} |"
                )
        L.append("")
    sens = {k: v for k, v in doc.get("sensitivity", {}).items() if isinstance(v, dict) and "another_h" in v}
    if sens:
        L += [
            "### How much the transmitter depends on H and on the mask ratio (LCFSC, MSE, 10 dB)",
            "",
            "Relative change of the transmitted symbols, `||x - x'|| / ||x||`, over the test images:",
            "",
            "| size | learned m* | another image's H | m = 0 (no mask) | m = 0.1 | another image (scale) |",
            "|---|---|---|---|---|---|",
        ]
        for n, r in sens.items():
            L.append(
                f"| {n} | {r['learned_ratio']:.4f} | {r['another_h']:.4%} | {r['ratio_0']:.4%} | "
                f"{r['ratio_0.1']:.3%} | {r['another_image']:.1%} |"
            )
        L.append("")
    L += _precoding_block(doc)
    tr = doc.get("training")
    if tr:
        L += _training(tr, img)
    cx = doc.get("complexity")
    if cx:
        L += [
            "### Complexity (2 CPU cores, batch 64)",
            "",
            "| model | BS encoder params | R-CVAE params | UE decoder params | NPN params | "
            "encoder MMACs/image | decoder MMACs/image | BS encode images/s | "
            "UE decode images/s (int8 ONNX) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for m, r in cx.items():
            if not isinstance(r, dict) or "encoder_params" not in r:
                continue
            L.append(
                f"| {LABEL.get(m, m)} | {r['encoder_params']:,} | {r['rcvae_params']:,} | "
                f"{r['decoder_params']:,} | "
                f"{r['npn_params']:,} | {r['encoder_macs'] / 1e6:.0f} | {r['decoder_macs'] / 1e6:.0f} | "
                f"{r['encoder_images_per_s']} | {r['decoder_images_per_s']} |"
            )
        L += [
            "",
            "MACs are one encoder pass; LCFSC's transmitter runs two per image (the R-CVAE's proxy pass "
            "at the stable ratio, then the masked pass) plus the mask generator's sort, hence its lower "
            "images/s. The paper's model: 58.4M parameters, 15.2 GFLOPs per 128x128 image.",
            "",
        ]
    L.append(END)
    return "\n".join(L)


def write_doc(doc: dict, path: Path, img: Path) -> None:
    text = path.read_text() if path.is_file() else f"# Semantic image link\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    a, b = text.index(START), text.index(END) + len(END)
    path.write_text(text[:a] + results_block(doc, img) + text[b:])
