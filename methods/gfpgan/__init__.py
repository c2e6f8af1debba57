"""GFPGAN (TencentARC): GFPGANv1Clean architecture (``arch``) and the ``gfpgan`` method (``method``)."""
