"""csilink common core: numpy-only code shared by every node (UE, emulator, BS, runner).

Nothing in this package imports torch, so the UE image stays small.
"""
