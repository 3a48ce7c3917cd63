"""trackdemo.sys for x64 with clang-cl-14 and lld-link, both flavours, no WDK.

Every source compiles warning-free (/W4 -Werror) with the flags the simulated target's
build uses; the image links against an import library of exactly the exports the
simulated kernel is specified to provide; its import table is the list below; and its
PDB carries the globals and the fixed layouts the debugger extensions read.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pefile
import pytest

from kdcon.symbols.pdb import open_pdb
from tests.oracles import require_tool
from tests.simtarget.track_host import SOURCE_ROOT, c_sources

SPEC_DEF = Path(__file__).resolve().parent / "track_host" / "ntoskrnl_spec.def"

# What trackdemo.sys imports from ntoskrnl.exe. The free build drops RtlAssert (asserts
# off); -fno-builtin (as the simulated target's build uses) keeps memset/memcpy calls.
FREE_IMPORTS = {
    "DbgBreakPoint", "DbgPrint", "KdDebuggerEnabled", "memset", "memcpy",
    "KeAcquireSpinLockRaiseToDpc", "KeGetCurrentIrql", "KeReleaseSpinLock",
    "ExAllocatePool", "ExAllocatePoolWithQuota", "ExAllocatePoolWithQuotaTag",
    "ExAllocatePoolWithTag", "ExFreePool",
    "MmAllocateContiguousMemory", "MmAllocateNonCachedMemory", "MmFreeContiguousMemory",
    "MmFreeNonCachedMemory", "MmMapIoSpace", "MmUnmapIoSpace", "MmMapLockedPages",
    "MmUnmapLockedPages",
    "IoAllocateMdl", "IoBuildPartialMdl", "IoFreeMdl", "IoCreateDevice", "IoDeleteDevice",
    "IoCreateNotificationEvent", "IoCreateSynchronizationEvent", "IofCompleteRequest",
    "RtlAnsiStringToUnicodeString", "RtlFreeAnsiString", "RtlFreeUnicodeString",
    "RtlInitAnsiString", "RtlInitUnicodeString", "RtlUnicodeStringToAnsiString",
    "ZwClose", "ZwCreateDirectoryObject", "ZwCreateFile", "ZwOpenKey", "ZwOpenSection",
}
CHECKED_IMPORTS = FREE_IMPORTS | {"RtlAssert"}

FLAVOURS = {"checked": ["/Od", "-DDBG=1"], "free": ["/O1", "-DDBG=0"]}

DEBUGGER_GLOBALS = [
    "TrackRecordList", "TrackMemoryStats", "TrackResourceStats", "TrackHandleStats",
    "TrackGuardSize", "TrackGuardFill", "TrackInitialized", "TrackDemoTickCount",
]


@dataclass(frozen=True)
class Built:
    image: Path
    pdb: Path
    pdbutil: str


def run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    clang_cl = require_tool("clang-cl-14")
    lld_link = require_tool("lld-link")
    dlltool = require_tool("llvm-dlltool")
    pdbutil = require_tool("llvm-pdbutil")
    work = tmp_path_factory.mktemp("trackdemo_x64")
    run([dlltool, "-m", "i386:x86-64", "-d", str(SPEC_DEF), "-l", "ntoskrnl.lib"], work)
    built = {}
    for flavour, flags in FLAVOURS.items():
        objects = []
        for source in c_sources():
            obj = work / f"{flavour}_{source.stem}.obj"
            run([clang_cl, "--target=x86_64-pc-windows-msvc", "/c", "/Zi", "/GS-", *flags,
                 "/Brepro", "-ffile-compilation-dir=.", "/clang:-fno-builtin", "/W4", "-Werror",
                 "-I", str(SOURCE_ROOT / "track"), "-I", str(SOURCE_ROOT / "trackdemo"),
                 f"/Fo{obj}", "--", str(source)], work)
            objects.append(obj.name)
        run([lld_link, "/Brepro", "/DRIVER:WDM", "/SUBSYSTEM:NATIVE", "/NODEFAULTLIB",
             "/ENTRY:DriverEntry", "/MACHINE:X64", "/DEBUG", f"/PDB:{flavour}.pdb",
             "/PDBALTPATH:%_PDB%", "/PDBSOURCEPATH:C:\\src", f"/OUT:{flavour}.sys",
             *objects, "ntoskrnl.lib"], work)
        built[flavour] = Built(work / f"{flavour}.sys", work / f"{flavour}.pdb", pdbutil)
    return built


def imports(image: Path) -> dict[str, set[str]]:
    pe = pefile.PE(str(image))
    try:
        return {
            entry.dll.decode(): {symbol.name.decode() for symbol in entry.imports}
            for entry in pe.DIRECTORY_ENTRY_IMPORT
        }
    finally:
        pe.close()


def pdb_dump(built: Built, *what: str) -> str:
    result = subprocess.run([built.pdbutil, "dump", *what, str(built.pdb)],
                            capture_output=True, text=True, check=True)
    return result.stdout


def struct_layout(types_dump: str, name: str) -> tuple[int, dict[str, int]]:
    """sizeof and member offsets of the complete LF_STRUCTURE ``name``."""
    blocks = re.split(r"\n(?=\s+0x[0-9A-F]+ \| )", types_dump)
    by_index = {}
    for block in blocks:
        m = re.match(r"\s+(0x[0-9A-F]+) \| ", block)
        if m:
            by_index[int(m.group(1), 16)] = block
    for block in by_index.values():
        if "LF_STRUCTURE" in block and f"`{name}`" in block and "forward ref" not in block:
            fields = int(re.search(r"field list: (0x[0-9A-F]+)", block).group(1), 16)
            size = int(re.search(r"sizeof (\d+)", block).group(1))
            members = re.findall(r"LF_MEMBER \[name = `(\w+)`.*?offset = (\d+)", by_index[fields])
            return size, {member: int(offset) for member, offset in members}
    raise AssertionError(f"{name} is not in the PDB's types")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_driver_imports_only_what_the_kernel_exports(images: dict[str, Built], flavour: str) -> None:
    expected = CHECKED_IMPORTS if flavour == "checked" else FREE_IMPORTS
    assert imports(images[flavour].image) == {"ntoskrnl.exe": expected}


def test_every_import_is_in_the_kernel_specification() -> None:
    specified = {
        line.split()[0] for line in SPEC_DEF.read_text().splitlines()[1:]
        if line.startswith("    ")
    }
    assert CHECKED_IMPORTS <= specified


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_image_is_a_wdm_driver_entered_at_driver_entry(images: dict[str, Built], flavour: str) -> None:
    pe = pefile.PE(str(images[flavour].image))
    try:
        assert pe.FILE_HEADER.Machine == 0x8664
        assert pe.OPTIONAL_HEADER.Subsystem == 1
        assert pe.OPTIONAL_HEADER.DllCharacteristics & 0x2000
        entry = pe.OPTIONAL_HEADER.AddressOfEntryPoint
    finally:
        pe.close()
    publics = pdb_dump(images[flavour], "-publics")
    m = re.search(r"S_PUB32 .*`DriverEntry`\s+flags = \w+, addr = (\d+):(\d+)", publics)
    assert m is not None
    text_rva = 0x1000  # .text is the first section
    assert entry == text_rva + int(m.group(2))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_pdb_has_the_globals_the_debugger_reads(images: dict[str, Built], flavour: str) -> None:
    globals_dump = pdb_dump(images[flavour], "-globals")
    for name in DEBUGGER_GLOBALS:
        assert re.search(rf"S_GDATA32 \[size = \d+\] `{name}`", globals_dump), name


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_pdb_layouts_match_the_documented_ones(images: dict[str, Built], flavour: str) -> None:
    types = pdb_dump(images[flavour], "-types")
    assert struct_layout(types, "_TRACK_RECORD") == (0x58, {
        "ListEntry": 0x00, "Value": 0x10, "Size": 0x18, "Allocator": 0x20, "Line": 0x24,
        "Flags": 0x28, "Source": 0x2C,
    })
    assert struct_layout(types, "_TRACK_STATS") == (8, {"TotalCalls": 0, "CurrentCount": 4})
    assert struct_layout(types, "_TRACK_MEMORY_STATS") == (0x18, {
        "TotalCalls": 0, "CurrentCount": 4, "BytesAllocated": 8, "PeakBytes": 0x10,
    })
    assert struct_layout(types, "_LIST_ENTRY") == (0x10, {"Flink": 0, "Blink": 8})
    # The allocator enumerators, whose names the debugger prints.
    enumerators = dict(re.findall(r"LF_ENUMERATE \[TrackFn(\w+) = (\d+)\]", types))
    assert enumerators["ExAllocatePoolWithTag"] == "1"
    assert enumerators["ZwOpenSection"] == "28"
    assert len(enumerators) == 30  # 29 functions and TrackFnCount


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_project_pdb_reader_sees_what_the_extensions_need(
    images: dict[str, Built], flavour: str
) -> None:
    with open_pdb(images[flavour].pdb) as pdb:
        types = {r.name: r.type_name for r in pdb.globals()}
        record = pdb.types.find("_TRACK_RECORD")
        function = pdb.types.find("_TRACK_FUNCTION")
    assert {name: types.get(name) for name in DEBUGGER_GLOBALS} == {
        "TrackRecordList": "_LIST_ENTRY",
        "TrackMemoryStats": "_TRACK_MEMORY_STATS",
        "TrackResourceStats": "_TRACK_STATS",
        "TrackHandleStats": "_TRACK_STATS",
        "TrackGuardSize": "Uint4B",
        "TrackGuardFill": "UChar",
        "TrackInitialized": "UChar",
        "TrackDemoTickCount": "Uint4B",
    }
    assert record is not None and function is not None
    assert [(f.name, f.offset, f.type_name) for f in record.fields] == [
        ("ListEntry", 0x00, "_LIST_ENTRY"), ("Value", 0x10, "Uint8B"), ("Size", 0x18, "Uint8B"),
        ("Allocator", 0x20, "_TRACK_FUNCTION"), ("Line", 0x24, "Uint4B"),
        ("Flags", 0x28, "Uint4B"), ("Source", 0x2C, "[41] Char"),
    ]
    assert function.enumerators[0] == ("TrackFnExAllocatePool", 0)
    assert function.enumerators[28] == ("TrackFnZwOpenSection", 28)
