"""KDDEBUGGER_DATA64 and its DBGKD_DEBUG_DATA_HEADER64, as construct definitions.

What it does: declares the debugger data block (the 'KDBG' block that GetVersion's
DebuggerDataList leads to) up to the Windows 10 RS5 end at 0x380, and reads a block of
any size honouring ``Header.Size``: fields at or beyond Size are reported as absent
(None), never guessed. What it does not do: follow pointers or decode the encoded form
some Windows versions keep in memory (kd-protocol.md §7.2 has no public source for it).
Spec: wdbgexts.h KDDEBUGGER_DATA64 via kd-protocol.md §7.2.
"""

from __future__ import annotations

from typing import Any

from construct import Container, Int8ul, Int16ul, Int32ul, Int64ul, Struct

from .constants import KDBG_OWNER_TAG

__all__ = [
    "LIST_ENTRY64",
    "DBGKD_DEBUG_DATA_HEADER64",
    "KDDEBUGGER_DATA64",
    "KDDEBUGGER_DATA64_SIZE",
    "FIELD_OFFSETS",
    "parse_debugger_data",
]

LIST_ENTRY64 = Struct("Flink" / Int64ul, "Blink" / Int64ul)

DBGKD_DEBUG_DATA_HEADER64 = Struct(
    "List" / LIST_ENTRY64,
    "OwnerTag" / Int32ul,
    "Size" / Int32ul,
)

KDDEBUGGER_DATA64 = Struct(
    "Header" / DBGKD_DEBUG_DATA_HEADER64,
    "KernBase" / Int64ul,
    "BreakpointWithStatus" / Int64ul,
    "SavedContext" / Int64ul,
    "ThCallbackStack" / Int16ul,
    "NextCallback" / Int16ul,
    "FramePointer" / Int16ul,
    "PaeEnabled" / Int16ul,
    "KiCallUserMode" / Int64ul,
    "KeUserCallbackDispatcher" / Int64ul,
    "PsLoadedModuleList" / Int64ul,
    "PsActiveProcessHead" / Int64ul,
    "PspCidTable" / Int64ul,
    "ExpSystemResourcesList" / Int64ul,
    "ExpPagedPoolDescriptor" / Int64ul,
    "ExpNumberOfPagedPools" / Int64ul,
    "KeTimeIncrement" / Int64ul,
    "KeBugCheckCallbackListHead" / Int64ul,
    "KiBugcheckData" / Int64ul,
    "IopErrorLogListHead" / Int64ul,
    "ObpRootDirectoryObject" / Int64ul,
    "ObpTypeObjectType" / Int64ul,
    "MmSystemCacheStart" / Int64ul,
    "MmSystemCacheEnd" / Int64ul,
    "MmSystemCacheWs" / Int64ul,
    "MmPfnDatabase" / Int64ul,
    "MmSystemPtesStart" / Int64ul,
    "MmSystemPtesEnd" / Int64ul,
    "MmSubsectionBase" / Int64ul,
    "MmNumberOfPagingFiles" / Int64ul,
    "MmLowestPhysicalPage" / Int64ul,
    "MmHighestPhysicalPage" / Int64ul,
    "MmNumberOfPhysicalPages" / Int64ul,
    "MmMaximumNonPagedPoolInBytes" / Int64ul,
    "MmNonPagedSystemStart" / Int64ul,
    "MmNonPagedPoolStart" / Int64ul,
    "MmNonPagedPoolEnd" / Int64ul,
    "MmPagedPoolStart" / Int64ul,
    "MmPagedPoolEnd" / Int64ul,
    "MmPagedPoolInformation" / Int64ul,
    "MmPageSize" / Int64ul,
    "MmSizeOfPagedPoolInBytes" / Int64ul,
    "MmTotalCommitLimit" / Int64ul,
    "MmTotalCommittedPages" / Int64ul,
    "MmSharedCommit" / Int64ul,
    "MmDriverCommit" / Int64ul,
    "MmProcessCommit" / Int64ul,
    "MmPagedPoolCommit" / Int64ul,
    "MmExtendedCommit" / Int64ul,
    "MmZeroedPageListHead" / Int64ul,
    "MmFreePageListHead" / Int64ul,
    "MmStandbyPageListHead" / Int64ul,
    "MmModifiedPageListHead" / Int64ul,
    "MmModifiedNoWritePageListHead" / Int64ul,
    "MmAvailablePages" / Int64ul,
    "MmResidentAvailablePages" / Int64ul,
    "PoolTrackTable" / Int64ul,
    "NonPagedPoolDescriptor" / Int64ul,
    "MmHighestUserAddress" / Int64ul,
    "MmSystemRangeStart" / Int64ul,
    "MmUserProbeAddress" / Int64ul,
    "KdPrintCircularBuffer" / Int64ul,
    "KdPrintCircularBufferEnd" / Int64ul,
    "KdPrintWritePointer" / Int64ul,
    "KdPrintRolloverCount" / Int64ul,
    "MmLoadedUserImageList" / Int64ul,
    "NtBuildLab" / Int64ul,
    "KiNormalSystemCall" / Int64ul,
    "KiProcessorBlock" / Int64ul,
    "MmUnloadedDrivers" / Int64ul,
    "MmLastUnloadedDriver" / Int64ul,
    "MmTriageActionTaken" / Int64ul,
    "MmSpecialPoolTag" / Int64ul,
    "KernelVerifier" / Int64ul,
    "MmVerifierData" / Int64ul,
    "MmAllocatedNonPagedPool" / Int64ul,
    "MmPeakCommitment" / Int64ul,
    "MmTotalCommitLimitMaximum" / Int64ul,
    "CmNtCSDVersion" / Int64ul,
    "MmPhysicalMemoryBlock" / Int64ul,
    "MmSessionBase" / Int64ul,
    "MmSessionSize" / Int64ul,
    "MmSystemParentTablePage" / Int64ul,
    "MmVirtualTranslationBase" / Int64ul,
    "OffsetKThreadNextProcessor" / Int16ul,
    "OffsetKThreadTeb" / Int16ul,
    "OffsetKThreadKernelStack" / Int16ul,
    "OffsetKThreadInitialStack" / Int16ul,
    "OffsetKThreadApcProcess" / Int16ul,
    "OffsetKThreadState" / Int16ul,
    "OffsetKThreadBStore" / Int16ul,
    "OffsetKThreadBStoreLimit" / Int16ul,
    "SizeEProcess" / Int16ul,
    "OffsetEprocessPeb" / Int16ul,
    "OffsetEprocessParentCID" / Int16ul,
    "OffsetEprocessDirectoryTableBase" / Int16ul,
    "SizePrcb" / Int16ul,
    "OffsetPrcbDpcRoutine" / Int16ul,
    "OffsetPrcbCurrentThread" / Int16ul,
    "OffsetPrcbMhz" / Int16ul,
    "OffsetPrcbCpuType" / Int16ul,
    "OffsetPrcbVendorString" / Int16ul,
    "OffsetPrcbProcStateContext" / Int16ul,
    "OffsetPrcbNumber" / Int16ul,
    "SizeEThread" / Int16ul,
    "L1tfHighPhysicalBitIndex" / Int8ul,
    "L1tfSwizzleBitIndex" / Int8ul,
    "Padding0" / Int32ul,
    "KdPrintCircularBufferPtr" / Int64ul,
    "KdPrintBufferSize" / Int64ul,
    "KeLoaderBlock" / Int64ul,
    "SizePcr" / Int16ul,
    "OffsetPcrSelfPcr" / Int16ul,
    "OffsetPcrCurrentPrcb" / Int16ul,
    "OffsetPcrContainedPrcb" / Int16ul,
    "OffsetPcrInitialBStore" / Int16ul,
    "OffsetPcrBStoreLimit" / Int16ul,
    "OffsetPcrInitialStack" / Int16ul,
    "OffsetPcrStackLimit" / Int16ul,
    "OffsetPrcbPcrPage" / Int16ul,
    "OffsetPrcbProcStateSpecialReg" / Int16ul,
    "GdtR0Code" / Int16ul,
    "GdtR0Data" / Int16ul,
    "GdtR0Pcr" / Int16ul,
    "GdtR3Code" / Int16ul,
    "GdtR3Data" / Int16ul,
    "GdtR3Teb" / Int16ul,
    "GdtLdt" / Int16ul,
    "GdtTss" / Int16ul,
    "Gdt64R3CmCode" / Int16ul,
    "Gdt64R3CmTeb" / Int16ul,
    "IopNumTriageDumpDataBlocks" / Int64ul,
    "IopTriageDumpDataBlocks" / Int64ul,
    "VfCrashDataBlock" / Int64ul,
    "MmBadPagesDetected" / Int64ul,
    "MmZeroedPageSingleBitErrorsDetected" / Int64ul,
    "EtwpDebuggerData" / Int64ul,
    "OffsetPrcbContext" / Int16ul,
    "OffsetPrcbMaxBreakpoints" / Int16ul,
    "OffsetPrcbMaxWatchpoints" / Int16ul,
    "Padding1" / Int16ul,
    "OffsetKThreadStackLimit" / Int32ul,
    "OffsetKThreadStackBase" / Int32ul,
    "OffsetKThreadQueueListEntry" / Int32ul,
    "OffsetEThreadIrpList" / Int32ul,
    "OffsetPrcbIdleThread" / Int16ul,
    "OffsetPrcbNormalDpcState" / Int16ul,
    "OffsetPrcbDpcStack" / Int16ul,
    "OffsetPrcbIsrStack" / Int16ul,
    "SizeKDPC_STACK_FRAME" / Int16ul,
    "OffsetKPriQueueThreadListHead" / Int16ul,
    "OffsetKThreadWaitReason" / Int16ul,
    "Padding2" / Int16ul,
    "PteBase" / Int64ul,
    "RetpolineStubFunctionTable" / Int64ul,
    "RetpolineStubFunctionTableSize" / Int32ul,
    "RetpolineStubOffset" / Int32ul,
    "RetpolineStubSize" / Int32ul,
    "OffsetEProcessMmHotPatchContext" / Int16ul,
    "Padding3" / Int16ul,
)
KDDEBUGGER_DATA64_SIZE = 0x380


def _offsets() -> dict[str, int]:
    offsets: dict[str, int] = {}
    position = 0
    for sub in KDDEBUGGER_DATA64.subcons:
        offsets[sub.name] = position
        position += sub.sizeof()
    return offsets


FIELD_OFFSETS = _offsets()


def parse_debugger_data(data: bytes) -> Container[Any] | None:
    """Parse a KDDEBUGGER_DATA64 read from the target, or None if it is not one.

    ``data`` may be shorter or longer than 0x380. Fields the block does not cover
    (offset + size beyond ``Header.Size`` or beyond ``data``) are None. A block whose
    OwnerTag is not 'KDBG' or that is shorter than its header gives None.
    """
    header_size = DBGKD_DEBUG_DATA_HEADER64.sizeof()
    if len(data) < header_size:
        return None
    header = DBGKD_DEBUG_DATA_HEADER64.parse(data)
    if header.OwnerTag != KDBG_OWNER_TAG:
        return None
    valid = min(header.Size, len(data))
    padded = bytes(data[:KDDEBUGGER_DATA64_SIZE]).ljust(KDDEBUGGER_DATA64_SIZE, b"\0")
    block = KDDEBUGGER_DATA64.parse(padded)
    for sub in KDDEBUGGER_DATA64.subcons:
        if FIELD_OFFSETS[sub.name] + sub.sizeof() > valid:
            block[sub.name] = None
    return block
