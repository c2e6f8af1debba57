"""DAEFR (ICLR 2024, LIAGM/DAEFR): dual-branch encoders with codebook association, one pass."""
