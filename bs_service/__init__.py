"""The BS node: PyTorch decoders behind ``csilink.v1.BsService``, with dynamic batching and
refinement / fusion hooks. Run it with ``python -m bs_service`` or ``csilink serve bs``.

Importing this package does not import torch; loading a learned bundle does.
"""
