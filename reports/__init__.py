"""HTML report rendering for bfrbench run folders."""
