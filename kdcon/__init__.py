"""kdcon: a kernel-debugger command console for the Windows KD serial protocol."""

__version__ = "0.1.0"
