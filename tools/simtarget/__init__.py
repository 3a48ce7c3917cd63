"""The simulated target: a small NT-like x64 kernel run in unicorn, speaking KD as the target."""
