"""Model families (one subpackage each) behind ``models.registry``. Torch-free at import."""
