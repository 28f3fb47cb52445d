"""Model families behind one small interface. Torch-free at import.

A family is a plugin: one folder ``models/<pkg>/`` whose ``__init__.py`` registers a
:class:`Family` subclass with ``@register_family("name")``. The ``__init__`` must stay
torch-free (import torch inside methods), so the registry can be listed and a numpy-only BS
decoder (e.g. ``type2``) loaded on a node without torch.

Family interface (every method optional except ``load_bs_decoder``; the defaults raise
:class:`InvalidInput` naming the family, e.g. for non-learned families that cannot train):

* ``build_model(config: dict) -> torch.nn.Module``: the full autoencoder used in training.
* ``loss(model, x: Tensor[B, 2, 32, 32], generator) -> (loss: Tensor[], x_hat: Tensor[B, 2, 32, 32])``:
  one forward pass with the wire step's torch twin inside; the loss is what training minimizes.
* ``export(run_dir, out_dir, **opts) -> Bundle``: ONNX encoder (fp32 + int8), safetensors
  decoder, manifest.
* ``load_bs_decoder(bundle, device) -> BsDecoder``: the BS half of a shipped bundle.

A :class:`BsDecoder` decodes a batch of wire-decoded latents to UNNORMALIZED angular-delay
CSI (it divides by the bundle's normalization scale itself).

The UE half of a learned family is generic (``shared.ue_encoder``: ONNX Runtime + wire);
a family without an ONNX encoder (``manifest.ue.encoder`` is null) provides
``models/<pkg>/ue.py`` with ``ue_encoder_from_bundle(bundle)`` (numpy only).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from shared.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # pragma: no cover
    from shared.bundle import Bundle

log = logging.getLogger(__name__)

# Subpackages of models/ that are helpers, not families.
_NOT_FAMILIES = {"common"}


@runtime_checkable
class BsDecoder(Protocol):
    """The BS half of a bundle.

    ``latent_size``: reals per report at the encoder output (= ``manifest.latent_size``).
    ``needs``: dataset fields the decoder takes in ``side`` (e.g. ``["y_ad"]``); may be empty.
    """

    latent_size: int
    needs: list[str]

    def decode_batch(
        self, latents: np.ndarray, side: dict[str, np.ndarray], snr_db: np.ndarray | None
    ) -> np.ndarray:
        """Decode a batch.

        :input latents: ``[B, latent_size]`` float32, as returned by the wire codec's ``decode``
        :input side: side information by field name, e.g. ``{"y_ad": complex64 [B, 32, 32]}``
        :input snr_db: ``[B]`` float32 effective SNR of analog reports (None: unknown/digital)
        :output: ``[B, 32, 32]`` complex64 angular-delay CSI, unnormalized
        """
        ...


class Family:
    """Base of every family; subclasses override what they support."""

    name: str = ""
    #: True when the family trains with ``training/`` (has build_model/loss/export).
    trainable: bool = False

    def _unsupported(self, what: str) -> InvalidInput:
        return InvalidInput(f"family {self.name!r} does not support {what}")

    def default_config(self) -> dict[str, Any]:
        """Model config defaults (merged under a run's ``model`` section)."""
        return {}

    def build_model(self, config: dict[str, Any]) -> Any:
        raise self._unsupported("training (build_model)")

    def loss(self, model: Any, x: Any, generator: Any = None) -> tuple[Any, Any]:
        raise self._unsupported("training (loss)")

    def export(self, run_dir: str | Path, out_dir: str | Path, **opts: Any) -> Bundle:
        raise self._unsupported("export")

    def load_bs_decoder(self, bundle: Bundle, device: str = "auto") -> BsDecoder:
        raise self._unsupported("BS decoding")


_FAMILIES: dict[str, Family] = {}
_IMPORT_ERRORS: dict[str, str] = {}
_discovered = False

F = TypeVar("F", bound=type[Family])


def register_family(name: str) -> Callable[[F], F]:
    """Class decorator: register a :class:`Family` subclass under ``name`` (one instance)."""

    def deco(cls: F) -> F:
        if not (isinstance(cls, type) and issubclass(cls, Family)):
            raise TypeError(f"@register_family({name!r}) must decorate a Family subclass")
        if name in _FAMILIES and type(_FAMILIES[name]) is not cls:
            raise ValueError(
                f"family {name!r} registered twice ({type(_FAMILIES[name]).__name__}, {cls.__name__})"
            )
        cls.name = name
        _FAMILIES[name] = cls()
        return cls

    return deco


def _discover() -> None:
    """Import every family package under models/ once (their ``__init__`` registers them)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    pkg_dir = Path(__file__).parent
    for info in pkgutil.iter_modules([str(pkg_dir)]):
        if not info.ispkg or info.name in _NOT_FAMILIES or info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"models.{info.name}")
        except Exception as exc:  # one broken family must not hide the others
            _IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"
            log.warning("family package models.%s failed to import: %s", info.name, exc)


def families() -> list[str]:
    """Names of the registered families, sorted."""
    _discover()
    return sorted(_FAMILIES)


def get_family(name: str) -> Family:
    """The registered family ``name``; :class:`NotFound` lists the known ones."""
    _discover()
    try:
        return _FAMILIES[name]
    except KeyError:
        pkg = name.replace("-", "_")
        why = f" (models.{pkg} failed to import: {_IMPORT_ERRORS[pkg]})" if pkg in _IMPORT_ERRORS else ""
        raise NotFound(
            f"unknown model family {name!r}{why}; known: {', '.join(sorted(_FAMILIES)) or 'none'}"
        ) from None


def family_package(name: str) -> str:
    """Python package of a family name: ``"csinet-jscc"`` -> ``"models.csinet_jscc"``."""
    return "models." + name.replace("-", "_")


def load_bs_decoder(bundle: Bundle, device: str = "auto") -> BsDecoder:
    """The BS half of ``bundle`` (dispatch on ``bundle.family``); what the BS service calls.

    ``device``: ``"auto"`` (CUDA when torch sees one, else CPU), ``"cpu"``, ``"cuda"``...;
    numpy-only families ignore it.
    """
    return get_family(bundle.family).load_bs_decoder(bundle, device)


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available else ``"cpu"`` (imports torch)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
