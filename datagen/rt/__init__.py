"""Ray-traced multi-modal worlds (Sionna RT): DL and UL CSI and a BS camera image per sample."""
