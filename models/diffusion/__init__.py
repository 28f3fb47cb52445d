"""Shared diffusion core (torch): noise schedules, the conditional U-Net, DDIM-style samplers and
the training losses of residual and Gaussian diffusion. Method families (RD-JSCC, the
side-information codec) build on these rather than on copies.
"""
