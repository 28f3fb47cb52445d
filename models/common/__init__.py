"""Helpers shared by the learned families (torch code; import lazily from family packages)."""
