"""The UE node: int8 ONNX encoders (onnxruntime + numpy) behind ``csilink.v1.UeService``.

Never imports torch (a test checks ``import ue_service`` leaves it out of ``sys.modules``).
Run it with ``python -m ue_service`` or ``csilink serve ue``.
"""
