"""Transports: pyserial URL handlers of our own, pacing and fault-injection wrappers."""

from __future__ import annotations

from .faults import FaultCounts, FaultModel, parse_fault_spec

__all__ = ["FaultCounts", "FaultModel", "parse_fault_spec"]
