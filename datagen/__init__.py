"""Dataset generation for csilink on Sionna's TR 38.901 models (extra ``datagen``).

Modules: ``profiles`` (configs), ``realization`` (FDD realizations: DL now, UL and DL at the
target instant), ``ofdm`` (paths -> SF / cropped AD), ``writer`` (HDF5, atomic, resumable),
``generate`` (the loop), ``cost2100`` (importer of the public CsiNet .mat files).
Heavy imports (torch, sionna) happen inside functions so ``import datagen`` is cheap.
"""
