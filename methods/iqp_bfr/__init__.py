"""The IQP method: Image Quality Prior for blind face restoration (see docs/ and shared notes)."""
