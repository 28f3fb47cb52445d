"""Write an ``lcfsc`` bundle: BS transmitter weights (safetensors: encoder + R-CVAE), UE decoder
(ONNX fp32 and int8 with dynamic int8 MatMuls, kept only when its PSNR is within
``INT8_TOLERANCE_DB`` of fp32 on the check images) and the UE's NPN estimator (ONNX)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.lcfsc.nets import LcfscConfig
from models.lcfsc.system import LcfscSystem
from shared.bundle import Bundle, write_bundle

INT8_TOLERANCE_DB = 0.2
OPSET = 17


class _DecoderGraph(torch.nn.Module):
    def __init__(self, sysm: LcfscSystem) -> None:
        super().__init__()
        self.dec = sysm.decoder

    def forward(self, z: torch.Tensor, token_sinr: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        return self.dec(z, token_sinr, snr_db)


class _NpnGraph(torch.nn.Module):
    def __init__(self, sysm: LcfscSystem) -> None:
        super().__init__()
        self.npn = sysm.npn

    def forward(self, hp: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        return self.npn.forward_padded(hp, snr_db)


def _onnx(module: torch.nn.Module, args: tuple, names: list[str], out: Path) -> None:
    torch.onnx.export(
        module.eval(),
        args,
        str(out),
        input_names=names,
        output_names=["out"],
        opset_version=OPSET,
        dynamic_axes={n: {0: "batch"} for n in [*names, "out"]},
        dynamo=False,
    )


def _psnr_of(path: Path, feeds: dict[str, np.ndarray], ref: np.ndarray) -> float:
    import onnxruntime as ort

    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    mse = np.mean((np.clip(out, 0, 1) - ref) ** 2, axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def write_from_model(
    model: LcfscSystem,
    out_dir: str | Path,
    model_id: str,
    description: str,
    training: dict[str, Any],
    check_images: np.ndarray | None = None,
) -> Bundle:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.torch import save_file

    from models.lcfsc import mimo_torch as mt

    cfg = model.cfg
    out = Path(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_id}-", dir=out.parent if out.parent.exists() else None))
    model = model.eval()
    sd = {f"encoder.{k}": v.contiguous() for k, v in model.encoder.state_dict().items()}
    if model.rcvae is not None:
        sd.update({f"rcvae.{k}": v.contiguous() for k, v in model.rcvae.state_dict().items()})
    save_file(sd, str(tmp / "tx.safetensors"))
    b, s = 4, cfg.image_size
    z = torch.randn(b, 2 * cfg.n_symbols)
    tok, snr = torch.rand(b, cfg.n_tokens) * 20, torch.rand(b) * 20
    _onnx(_DecoderGraph(model), (z, tok, snr), ["z", "token_sinr", "snr_db"], tmp / "rx.fp32.onnx")
    _onnx(
        _NpnGraph(model),
        (mt.pad_h(torch.randn(b, 2, 2, dtype=torch.complex64)), snr),
        ["hp", "snr_db"],
        tmp / "npn.onnx",
    )
    quantize_dynamic(
        str(tmp / "rx.fp32.onnx"),
        str(tmp / "rx.int8.onnx"),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
    # int8 check: decode real transmissions of the check images (2x2, 10 dB, perfect CSI)
    check: dict[str, Any] = {}
    if check_images is not None:
        torch.manual_seed(0)
        img = torch.from_numpy(check_images).permute(0, 3, 1, 2).float().div(255.0)
        h = torch.randn(len(img), 2, 2, dtype=torch.complex64)
        snr_c = torch.full((len(img),), 10.0)
        with torch.no_grad():
            ctx: dict[str, Any] = {"nt": 2}
            x, _ = model.transmit(img, snr_c, h, ctx=ctx)
            w = ctx["precoder"]
            y = mt.propagate(h, x if w is None else w @ x, snr_c)
            x_hat, sinr = mt.mmse(h if w is None else h @ w, y, snr_c)
        feeds = {
            "z": mt.to_real(x_hat.reshape(len(img), -1)).numpy(),
            "token_sinr": sinr[:, torch.arange(cfg.n_tokens) // (cfg.n_tokens // 2)].numpy(),
            "snr_db": snr_c.numpy(),
        }
        ref = img.numpy()
        p32, p8 = _psnr_of(tmp / "rx.fp32.onnx", feeds, ref), _psnr_of(tmp / "rx.int8.onnx", feeds, ref)
        check = {
            "images": len(img),
            "psnr_fp32_db": round(p32, 3),
            "psnr_int8_db": round(p8, 3),
            "tolerance_db": INT8_TOLERANCE_DB,
        }
    use_int8 = not check or check["psnr_fp32_db"] - check["psnr_int8_db"] <= INT8_TOLERANCE_DB
    ue_cfg = {
        "image_size": cfg.image_size,
        "n_symbols": cfg.n_symbols,
        "n_tokens": cfg.n_tokens,
        "sizes": list(cfg.sizes),
        "npn": "npn.onnx",
        "precoding": cfg.precoding,
        "pilots": "identity, Nt channel uses"
        + ("; then Nt precoded pilots (DMRS) ahead of each image's data" if cfg.precoding != "none" else ""),
        "equalizer": "linear MMSE with the UE's own estimate"
        + (" of H W (Procrustes fit of its H estimate to the DMRS)" if cfg.precoding != "none" else ""),
        "int8_check": check,
        "quantization": "onnxruntime dynamic int8 MatMul/Gemm"
        if use_int8
        else "fp32 (int8 missed tolerance)",
        "opset": OPSET,
    }
    manifest = {
        "model_id": model_id,
        "version": "1",
        "family": "lcfsc",
        "description": description,
        "rates": [{"name": f"k{cfg.n_symbols}", "symbols": cfg.n_symbols}],
        "ue": {
            "encoder": "rx.int8.onnx" if use_int8 else "rx.fp32.onnx",
            "encoder_fp32": "rx.fp32.onnx",
            "input": {"name": "z", "shape": [-1, 2 * cfg.n_symbols]},
            "output": {"name": "out", "shape": [-1, 3, s, s]},
            "wire": {"kind": "analog", "symbols": cfg.n_symbols},
            "config": ue_cfg,
        },
        "bs": {
            "weights": ["tx.safetensors"],
            "config": {"model": cfg.to_dict(), "role": "image transmitter"},
        },
        "normalization": {"image": "uint8 sRGB / 255", "symbols": "unit average power per image"},
        "input_shape": [s, s],
        "latent_size": 2 * cfg.n_symbols,
        "files": {"npn.onnx": ""},
        "training": training,
    }
    bundle = write_bundle(tmp, manifest)
    tmp.chmod(0o755)  # mkdtemp and safetensors write owner-only; the service images run as a user
    for f in tmp.iterdir():
        f.chmod(0o644)
    if out.exists():
        shutil.rmtree(out)
    shutil.move(str(tmp), str(out))
    return Bundle.load(out) if bundle else bundle


def export_bundle(
    run_dir: str | Path,
    out_dir: str | Path,
    model_id: str | None = None,
    description: str = "",
    check_images: np.ndarray | None = None,
) -> Bundle:
    """Bundle of the best checkpoint of a ``training.lcfsc jscc`` run."""
    run = Path(run_dir)
    ck = torch.load(run / "best.pt", weights_only=False)
    cfg = LcfscConfig.from_dict(ck["config"]["model"])
    model = LcfscSystem(cfg)
    model.load_state_dict(ck["model"])
    summary = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    npn_run = Path(ck["config"]["npn"]).parent / "run.json"
    curve = (
        [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines() if ln.strip()]
        if (run / "log.jsonl").is_file()
        else []
    )
    training = {
        "curve": curve,  # validation PSNR (10 dB, 6-bit feedback) vs CPU seconds and samples seen
        "run": str(run),
        "config": ck["config"],
        "summary": summary,
        "best_state": ck["state"],
        "npn": json.loads(npn_run.read_text()) if npn_run.is_file() else {},
    }
    return write_from_model(model, out_dir, model_id or run.name, description, training, check_images)


VARIANT_TEXT = {
    "lcfsc": "LCFSC (CSI fusion masking, learnable ratio)",
    "lcfsc-tok": "LCFSC + stream-SINR tokens (CSI fusion masking, learnable ratio, per-token SINR embedding)",
    "nomask": "no-masking twin (CSI unused at the transmitter)",
}
PRECODING_TEXT = {"none": "", "svd": ", SVD-precoded with the fed-back CSI (+ DMRS)"}


def make_tiny_bundle(
    path: Path,
    model_id: str = "lcfsc-tiny",
    image_size: int = 32,
    csi_masking: bool = True,
    csi_tokens: bool = False,
    precoding: str = "none",
) -> Path:
    """An untrained small bundle (for tests): two stages, 8 x 8 bottleneck, 768 symbols."""
    torch.manual_seed(0)
    cfg = LcfscConfig(
        image_size=image_size,
        dims=(8, 16),
        depths=(2, 2),
        heads=(1, 2),
        csi_masking=csi_masking,
        learnable_ratio=csi_masking,
        csi_tokens=csi_tokens,
        precoding=precoding,
    )
    write_from_model(LcfscSystem(cfg), path, model_id, "untrained test bundle", {"untrained": True})
    return Path(path)


def main(argv: list[str] | None = None) -> None:
    """``python -m models.lcfsc.export RUN_DIR OUT_DIR [--images CORPUS]``: the int8 check uses
    the run's validation images (training scenes), never the test scene."""
    import argparse

    from training.lcfsc import load_images

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--images", default=None, help="image corpus (default: the run's)")
    ap.add_argument("--description", default="")
    a = ap.parse_args(argv)
    cfg = json.loads((a.run / "config.json").read_text())
    _, val = load_images(a.images or cfg["images"])
    desc = a.description or (
        f"{VARIANT_TEXT.get(cfg['variant'], cfg['variant'])} "
        f"image link{PRECODING_TEXT[cfg.get('precoding', 'none')]}, {cfg['loss']} loss, 64x64, "
        "768 symbols (CBR 1/16), MIMO 2x2/4x4/8x8"
    )
    b = export_bundle(a.run, a.out, a.out.name, desc, check_images=val[:64])
    print(json.dumps(b.summary(), indent=1))


if __name__ == "__main__":
    main()
