"""The simulated target's kd: what kd64 and kdcom do in a real kernel, in Python.

``stub`` answers manipulate requests against the machine; ``layouts`` builds CONTEXT,
special registers and state changes; ``session`` runs the machine and carries its
stops, prints and prompts over one link (``pump``) with the TARGET role of
``kdcon.protocol``. Spec: kd-protocol.md §3-§6 and §12.
"""

from __future__ import annotations

from .session import KdTargetSession, StopReport
from .stub import KdStub, Resume, VersionInfo

__all__ = ["KdStub", "KdTargetSession", "Resume", "StopReport", "VersionInfo"]
