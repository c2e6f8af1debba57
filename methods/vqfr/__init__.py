"""VQFR (ECCV 2022): codebook prior with a parallel texture/fidelity decoder."""
