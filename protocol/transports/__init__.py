"""Transports: pyserial URL handlers of our own, pacing and fault-injection wrappers."""
