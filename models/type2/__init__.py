"""``type2``: the 5G NR Rel-16 enhanced Type II codebook (TS 38.214 5.2.2.2.5), rank 1, as the
non-learned reference. numpy only: the UE imports this package (see ``ue.py``), and the BS
decoder (``bs.py``) needs no torch either. Details and measured figures: docs/type2.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.registry import Family, register_family

if TYPE_CHECKING:  # pragma: no cover
    from models.type2.bs import Type2BsDecoder
    from shared.bundle import Bundle


@register_family("type2")
class Type2Family(Family):
    """No training and no export: bundles are written by ``scripts/make_type2_bundles.py``."""

    trainable = False

    def load_bs_decoder(self, bundle: Bundle, device: str = "auto") -> Type2BsDecoder:
        from models.type2.bs import load_bs_decoder

        return load_bs_decoder(bundle)
