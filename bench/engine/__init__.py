"""The evaluation engine: loading, device/precision policy, runner, profiling and results."""
