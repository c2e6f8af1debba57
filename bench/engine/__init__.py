"""The evaluation engine: loading, runner, profiling and results (the device policy is bench.core.device)."""
