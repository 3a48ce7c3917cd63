"""Tools built on the public APIs: the simulated target, kdtrace, linetest, the symbols CLI, benchmarks."""
