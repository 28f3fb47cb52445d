"""Model bundles (format ``csilink-bundle/1``): a folder with ``manifest.json`` and its files.

The manifest pairs the UE half (ONNX encoder + wire step) with the BS half (weights in
safetensors, never a pickle) and records everything needed to use and to trust them:
tensor specs, rates, normalization, target, side inputs the BS needs, sha256 of every file,
training data and budget. ``Bundle.load`` verifies the hashes and refuses a tampered,
incomplete or inconsistent bundle with a ``BundleError`` that names the problem.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import BundleError, NotFound

FORMAT = "csilink-bundle/1"
MANIFEST = "manifest.json"


class TensorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    shape: list[int]  # -1 for the batch axis
    dtype: str = "float32"


class Rate(BaseModel):
    """One operating point: a bit budget (digital) or a symbol count (analog)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    bits: int | None = None
    symbols: int | None = None
    wire: dict[str, Any] | None = None  # overrides the UE wire spec at this rate


class UeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    encoder: str | None = None  # ONNX file (int8); None for non-learned families
    encoder_fp32: str | None = None
    input: TensorSpec | None = None
    output: TensorSpec | None = None
    wire: dict[str, Any]
    config: dict[str, Any] = Field(default_factory=dict)


class BsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: list[str] = Field(default_factory=list)  # safetensors files
    config: dict[str, Any] = Field(default_factory=dict)
    needs: list[str] = Field(default_factory=list)  # dataset fields beyond the report, e.g. y_ad
    refinement: dict[str, Any] | None = None
    fusion: dict[str, Any] | None = None


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: Literal["x", "z"] = "x"
    domain: Literal["ad", "sf"] = "ad"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["csilink-bundle/1"] = FORMAT
    model_id: str
    version: str
    family: str
    description: str = ""
    rates: list[Rate]
    ue: UeSpec
    bs: BsSpec
    normalization: dict[str, Any]
    target: Target = Field(default_factory=Target)
    input_shape: list[int] = Field(default_factory=lambda: [32, 32])  # [Nt, taps] of the AD CSI
    latent_size: int  # reals at the ONNX output (before the wire step)
    files: dict[str, str] = Field(default_factory=dict)  # relative path -> sha256
    training: dict[str, Any] = Field(default_factory=dict)

    @field_validator("model_id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\ ") or v.startswith("."):
            raise ValueError(f"model_id {v!r} must be a plain name (no slashes or spaces)")
        return v

    @field_validator("rates")
    @classmethod
    def _rates_ok(cls, v: list[Rate]) -> list[Rate]:
        if not v:
            raise ValueError("a bundle needs at least one rate")
        for r in v:
            if (r.bits is None) == (r.symbols is None):
                raise ValueError(f"rate {r.name!r} must give exactly one of bits or symbols")
        return v

    def rate(self, name: str | None) -> Rate:
        if name is None or name == "":
            return self.rates[0]
        for r in self.rates:
            if r.name == name:
                return r
        raise NotFound(f"model {self.model_id} has no rate {name!r}; it has {[r.name for r in self.rates]}")

    def referenced_files(self) -> list[str]:
        names = [self.ue.encoder, self.ue.encoder_fp32, *self.bs.weights]
        wire_files = [spec.get(key) for spec in [self.ue.wire, *(r.wire or {} for r in self.rates)]
                      for key in ("codebook", "boundaries")]
        # weight files of the BS hooks (e.g. a refiner's denoiser), by the "weights" convention
        hook_files = []
        for hook in (self.bs.refinement, self.bs.fusion):
            w = (hook or {}).get("weights")
            hook_files.extend([w] if isinstance(w, str) else list(w or []))
        return sorted({n for n in [*names, *wire_files, *hook_files] if n})


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Bundle:
    """A verified bundle on disk."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def family(self) -> str:
        return self.manifest.family

    def file(self, name: str) -> Path:
        if name not in self.manifest.files:
            raise BundleError(f"bundle {self.model_id}: file {name!r} is not listed in its manifest")
        return self.path / name

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> Bundle:
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise BundleError(f"{path}: not a bundle (no {MANIFEST})")
        try:
            raw = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(f"{mpath}: manifest is not valid JSON ({exc})") from None
        if isinstance(raw, dict) and raw.get("format") not in (None, FORMAT):
            found = raw.get("format")
            raise BundleError(f"{mpath}: unsupported bundle format {found!r}, expected {FORMAT!r}")
        try:
            manifest = Manifest.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BundleError(f"{mpath}: invalid manifest at {where or 'top'}: {first['msg']}") from None
        bundle = cls(path, manifest)
        if verify:
            problems = bundle.problems()
            if problems:
                raise BundleError(f"bundle {manifest.model_id} at {path} refused: " + "; ".join(problems))
        return bundle

    def problems(self) -> list[str]:
        """Everything wrong with the bundle's files (empty when it verifies)."""
        out: list[str] = []
        m = self.manifest
        for name in m.referenced_files():
            if name not in m.files:
                out.append(f"{name} is used but has no sha256 in the manifest")
        for name, digest in sorted(m.files.items()):
            p = self.path / name
            if not p.is_file():
                out.append(f"{name} is missing")
            elif sha256_file(p) != digest:
                out.append(f"{name} fails its sha256 check (tampered or corrupt)")
        return out

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "model_id": m.model_id,
            "version": m.version,
            "family": m.family,
            "rates": [r.name for r in m.rates],
            "target": f"{m.target.field}/{m.target.domain}",
            "bs_needs": m.bs.needs,
            "path": str(self.path),
        }


def write_bundle(path: str | Path, manifest: dict[str, Any] | Manifest) -> Bundle:
    """Hash every referenced file present in ``path``, write ``manifest.json``, verify, return.

    Files already listed in ``manifest["files"]`` are re-hashed too, so the manifest always
    matches what is on disk at write time.
    """
    path = Path(path)
    m = manifest if isinstance(manifest, Manifest) else Manifest.model_validate(manifest)
    names = set(m.referenced_files()) | set(m.files)
    missing = [n for n in sorted(names) if not (path / n).is_file()]
    if missing:
        raise BundleError(f"cannot write bundle {m.model_id}: missing files {missing}")
    m.files = {n: sha256_file(path / n) for n in sorted(names)}
    (path / MANIFEST).write_text(json.dumps(m.model_dump(mode="json"), indent=2) + "\n")
    return Bundle.load(path)


def find_bundles(root: str | Path = "bundles") -> list[Path]:
    """Bundle folders under ``root`` (any depth), sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(MANIFEST))


def resolve(ref: str | Path, roots: tuple[str | Path, ...] = ("bundles",)) -> Path:
    """A bundle path, or a model id looked up under ``roots``."""
    p = Path(ref)
    if (p / MANIFEST).is_file():
        return p
    for root in roots:
        for cand in find_bundles(root):
            if cand.name == str(ref):
                return cand
            try:
                if json.loads((cand / MANIFEST).read_text()).get("model_id") == str(ref):
                    return cand
            except (OSError, json.JSONDecodeError):
                continue
    raise NotFound(f"no bundle {str(ref)!r} (looked in {', '.join(map(str, roots))})")
