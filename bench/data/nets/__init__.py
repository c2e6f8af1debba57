"""Networks of the official whole-photo pipeline besides the restorer: face parsing and background SR.

``parsenet`` and ``bisenet`` are facexlib's face-parsing networks (19 classes) and ``rrdbnet`` is
BasicSR's RRDBNet as Real-ESRGAN runs it; the parameter names and shapes are the released
checkpoints' (strict loading), the code is bfrbench's own.
"""
