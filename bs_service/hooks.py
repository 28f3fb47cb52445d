"""Extension points of the BS decode path, registered by name: :class:`Fusion` and :class:`Refiner`.

The decode path of one batch is::

    latents [B, L] --Fusion.fuse(latents, side, snr_db)--> latents [B, L]
            --decoder.decode_batch(latents, side, snr_db)--> h_ad [B, Nt, T] complex64
            --Refiner.refine(h_ad, latents, side, snr_db)--> h_ad [B, Nt, T] complex64

Both are no-ops by default (``"none"``). A method family fills them later, e.g. a residual
diffusion refiner (RD-JSCC: a few DDIM steps from the autoencoder output) or a sensor fusion
stage (camera image, uplink CSI ``y_ad``). Side information comes from the BS's own view of
the world (the dataset's ``bs_view()``, read by world key); a hook names the fields it needs
in ``needs`` and the BS reads them for it.

Registering (in a torch-free module the family imports, e.g. ``models/<pkg>/bs_hooks.py``)::

    @register_refiner("rd-ddim")
    class ResidualDiffusion(Refiner):
        def __init__(self, bundle, decoder, steps: int = 2, **options): ...
        def refine(self, h_ad, latents, side, snr_db): ...

Which hook a model uses: the BS settings (``hooks: {model_id: {refiner: {name, ...options}}}``)
or else the bundle manifest (``bs.refinement`` / ``bs.fusion``: ``{"name": ..., ...options}``).
An unknown name is looked up by importing ``models.<family>.bs_hooks`` first, then refused
with NOT_FOUND listing the registered names.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from shared.errors import NotFound


class Fusion:
    """Fuses side information into the latents before decoding. Default: identity.

    :input latents: ``[B, L]`` float32 (wire-decoded)
    :input side: by field name, e.g. ``{"y_ad": complex64 [B, Nt, T]}``
    :input snr_db: ``[B]`` float32 or None
    :output: ``[B, L]`` float32
    """

    name = "none"
    #: Dataset fields (bs_view) this hook reads.
    needs: list[str] = []

    def __init__(self, bundle: Any = None, decoder: Any = None, **options: Any) -> None:
        self.bundle, self.decoder, self.options = bundle, decoder, options

    def fuse(self, latents: np.ndarray, side: dict[str, np.ndarray], snr_db: np.ndarray | None) -> np.ndarray:
        return latents


class Refiner:
    """Refines the decoder's output (e.g. diffusion steps). Default: identity.

    :input h_ad: ``[B, Nt, T]`` complex64, unnormalized decoder output
    :input latents: ``[B, L]`` float32 (after fusion)
    :input side: side information by field name
    :input snr_db: ``[B]`` float32 or None
    :output: ``[B, Nt, T]`` complex64
    """

    name = "none"
    needs: list[str] = []

    def __init__(self, bundle: Any = None, decoder: Any = None, steps: int = 0, **options: Any) -> None:
        self.bundle, self.decoder, self.steps, self.options = bundle, decoder, int(steps), options

    def refine(
        self, h_ad: np.ndarray, latents: np.ndarray, side: dict[str, np.ndarray], snr_db: np.ndarray | None
    ) -> np.ndarray:
        return h_ad


_FUSIONS: dict[str, type[Fusion]] = {"none": Fusion}
_REFINERS: dict[str, type[Refiner]] = {"none": Refiner}

T = TypeVar("T", bound=type)


def _register(table: dict[str, Any], base: type, kind: str, name: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"@register_{kind}({name!r}) must decorate a {base.__name__} subclass")
        old = table.get(name)
        if old is not None and old is not cls:
            raise ValueError(f"{kind} {name!r} is registered twice ({old.__qualname__}, {cls.__qualname__})")
        cls.name = name
        table[name] = cls
        return cls

    return deco


def register_fusion(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`Fusion` subclass under ``name``."""
    return _register(_FUSIONS, Fusion, "fusion", name)


def register_refiner(name: str) -> Callable[[T], T]:
    """Class decorator: register a :class:`Refiner` subclass under ``name``."""
    return _register(_REFINERS, Refiner, "refiner", name)


def _lookup(table: dict[str, Any], kind: str, name: str, family: str | None) -> Any:
    if name not in table and family:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module("models." + family.replace("-", "_") + ".bs_hooks")
    if name not in table:
        raise NotFound(f"unknown {kind} {name!r}; registered: {sorted(table)}")
    return table[name]


def make_fusion(spec: dict[str, Any] | None, bundle: Any = None, decoder: Any = None) -> Fusion:
    """A fusion hook from ``{"name": ..., **options}`` (None or no name: the no-op)."""
    spec = dict(spec or {})
    name = spec.pop("name", "none") or "none"
    cls = _lookup(_FUSIONS, "fusion", name, getattr(bundle, "family", None))
    return cls(bundle, decoder, **spec)


def make_refiner(spec: dict[str, Any] | None, bundle: Any = None, decoder: Any = None) -> Refiner:
    """A refiner from ``{"name": ..., "steps": n, **options}`` (None or no name: the no-op)."""
    spec = dict(spec or {})
    name = spec.pop("name", "none") or "none"
    cls = _lookup(_REFINERS, "refiner", name, getattr(bundle, "family", None))
    return cls(bundle, decoder, **spec)


def fusions() -> list[str]:
    return sorted(_FUSIONS)


def refiners() -> list[str]:
    return sorted(_REFINERS)
