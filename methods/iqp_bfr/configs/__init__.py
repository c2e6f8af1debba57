"""Training configurations of the IQP method (YAML; ``bfrbench train CONFIG.yaml``)."""
