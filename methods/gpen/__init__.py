"""GPEN (CVPR 2021): GAN-prior embedded network."""
