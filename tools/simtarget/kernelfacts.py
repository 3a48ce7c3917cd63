"""Where the simulated kernel keeps what a KD stub reports: its exports, its modules,
the KPRCB and KPCR of the CPU, the current thread. A mixin of ``Machine``, which gives
``_require``, ``_kernel``, ``ports`` and ``read_virtual``.

What it does not do: change anything; every value is read from the kernel's memory
or its image, as a debugger would find it.
"""

from __future__ import annotations

import struct

from . import layout

__all__ = ["KernelFacts"]


class KernelFacts:
    """The kernel's own addresses and the CPU's current KPRCB, KPCR and thread."""

    def kernel_symbol(self, name: str) -> int:
        """Address of a kernel export (KeBugCheckEx, KiSimRequest, PsLoadedModuleList, ...)."""
        return self._require() and self._kernel.export(name)

    @property
    def modules(self):
        """Loaded modules in load order (loader.Module: name, nt_path, base, size, ldr_entry)."""
        return list(self._kernel.modules)

    @property
    def halted(self) -> bool:
        return self.ports.halted

    @property
    def kern_base(self) -> int:
        return self._kernel.modules[0].base

    @property
    def ps_loaded_module_list(self) -> int:
        return self.kernel_symbol("PsLoadedModuleList")

    @property
    def kd_debugger_data_block(self) -> int:
        return self.kernel_symbol("KdDebuggerDataBlock")

    @property
    def kd_version_block(self) -> int:
        return self.kernel_symbol("KdVersionBlock")

    @property
    def ki_bugcheck_data(self) -> int:
        return self.kernel_symbol("KiBugCheckData")

    @property
    def kprcb(self) -> int:
        data = self.read_virtual(self.kernel_symbol("KiProcessorBlock"), 8)
        return struct.unpack("<Q", data)[0] if len(data) == 8 else 0

    @property
    def kpcr(self) -> int:
        prcb = self.kprcb
        return prcb - layout.KPCR_PRCB if prcb else 0

    @property
    def current_thread(self) -> int:
        prcb = self.kprcb
        if not prcb:
            return 0
        return struct.unpack("<Q", self.read_virtual(prcb + layout.KPRCB_CURRENT_THREAD, 8))[0]
