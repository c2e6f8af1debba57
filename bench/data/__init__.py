"""Data: benchmark datasets, validation, degradation synthesis, face alignment, the demo set."""
