"""Test drivers built with clang-cl-14 and lld-link, and llvm-pdbutil's view of them.

``built_drivers()`` compiles ``DRIVER_C`` for x64, x86 and x86 ``/Gz`` with the
reproducible flags of simulated-target.md 3.3 into one temporary directory per
test session (cached; removed at exit) and returns the PDB paths.
``pdbutil_dump()`` runs ``llvm-pdbutil dump`` on a PDB and parses the parts of
its text the tests compare against: section headers, publics, globals,
procedures and type layouts.
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.oracles import require_tool

DRIVER_C = r"""
typedef unsigned short USHORT;
typedef unsigned long ULONG;
typedef unsigned char UCHAR;
typedef unsigned short WCHAR;
typedef long NTSTATUS;

typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    WCHAR *Buffer;
} UNICODE_STRING, *PUNICODE_STRING;

typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY;

typedef enum _DEMO_STATE { DemoIdle = 0, DemoBusy = 3, DemoGone = -1 } DEMO_STATE;

typedef union _DEMO_UNION {
    ULONG Whole;
    struct { USHORT Low; USHORT High; } Parts;
    UCHAR Bytes[4];
} DEMO_UNION;

typedef NTSTATUS (*DEMO_CALLBACK)(void *Context, ULONG Code);

typedef struct _DEMO_OBJECT {
    ULONG Flags;
    ULONG Busy : 1;
    ULONG Kind : 4;
    ULONG Spare : 27;
    const volatile char *Tag;
    struct _DEMO_OBJECT *Self;
    LIST_ENTRY Links;
    int Table[16];
    UCHAR Matrix[2][3];
    DEMO_STATE State;
    DEMO_UNION Value;
    UNICODE_STRING Name;
    struct { ULONG Inner; void *Owner; } Nested;
    DEMO_CALLBACK Callback;
} DEMO_OBJECT, *PDEMO_OBJECT;

DEMO_OBJECT DemoGlobal;
ULONG DemoCounter = 7;
static ULONG DemoStaticCounter;
LIST_ENTRY DemoListHead;
DEMO_UNION DemoUnions[3];
PDEMO_OBJECT DemoObjectPointer;

static __declspec(noinline) NTSTATUS DemoCallback(void *Context, ULONG Code)
{
    DemoStaticCounter += Code;
    return Context ? 0 : -1;
}

__declspec(noinline) NTSTATUS DemoInsert(PDEMO_OBJECT Object, LIST_ENTRY *Head)
{
    Object->Links.Flink = Head->Flink;
    Object->Links.Blink = Head;
    Head->Flink->Blink = &Object->Links;
    Head->Flink = &Object->Links;
    return 0;
}

__declspec(dllexport) __declspec(noinline) ULONG DemoExported(ULONG Value)
{
    DemoCounter += Value;
    return DemoCounter + DemoUnions[Value % 3].Whole;
}

NTSTATUS DriverEntry(void *DriverObject, PUNICODE_STRING RegistryPath)
{
    DemoListHead.Flink = DemoListHead.Blink = &DemoListHead;
    DemoGlobal.Callback = DemoCallback;
    DemoGlobal.Self = &DemoGlobal;
    DemoGlobal.Name = *RegistryPath;
    DemoObjectPointer = &DemoGlobal;
    DemoInsert(&DemoGlobal, &DemoListHead);
    DemoGlobal.Busy = 1;
    return DemoGlobal.Callback(DriverObject, DemoExported(2));
}
"""

TARGETS = {
    "x64": ("x86_64-pc-windows-msvc", [], "X64"),
    "x86": ("i686-pc-windows-msvc", ["/Oy-"], "X86"),
    "x86gz": ("i686-pc-windows-msvc", ["/Oy-", "/Gz"], "X86"),
}


@functools.lru_cache(maxsize=None)
def _build_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="kdcon-pdb-drivers-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.lru_cache(maxsize=None)
def _build(flavour: str, clang: str, lld: str) -> Path:
    triple, extra, machine = TARGETS[flavour]
    out = _build_dir() / flavour
    out.mkdir()
    (out / "drv.c").write_text(DRIVER_C)
    subprocess.run([clang, f"--target={triple}", "/c", "/Zi", "/GS-", "/O1", *extra, "/Brepro",
                    "-ffile-compilation-dir=.", "/Fodrv.obj", "drv.c"],
                   cwd=out, check=True, capture_output=True)
    subprocess.run([lld, "/Brepro", "/DRIVER:WDM", "/SUBSYSTEM:NATIVE", "/NODEFAULTLIB",
                    "/ENTRY:DriverEntry", f"/MACHINE:{machine}", "/DEBUG", "/PDB:drv.pdb",
                    "/PDBALTPATH:%_PDB%", "/PDBSOURCEPATH:C:\\src", "/OUT:drv.sys", "drv.obj"],
                   cwd=out, check=True, capture_output=True)
    return out / "drv.pdb"


def built_driver(flavour: str) -> Path:
    """PDB of the test driver for ``flavour`` (x64, x86, x86gz); skips/fails without oracles."""
    clang = require_tool("clang-cl-14", "clang-cl")
    lld = require_tool("lld-link")
    return _build(flavour, clang, lld)


@dataclass
class PdbutilType:
    index: int
    leaf: str
    name: str = ""
    size: int = 0
    forward: bool = False
    forward_to: int = 0
    field_list: int = 0
    members: list[tuple[str, int, int]] = field(default_factory=list)   # name, type index, offset
    enumerators: list[tuple[str, int]] = field(default_factory=list)
    bit_type: int = 0
    bit_offset: int = 0
    bit_count: int = 0


@dataclass
class PdbutilDump:
    sections: list[tuple[str, int, int]]                       # name, rva, virtual size
    publics: list[tuple[str, int, int]]                        # name, segment, offset
    globals: list[tuple[str, int, int, int, str]]              # name, type index, seg, off, kind
    procedures: list[tuple[str, int, int, int, str]]           # name, seg, off, length, kind
    types: dict[int, PdbutilType]
    guid: str = ""
    age: int = 0
    signature: int = 0


_ADDR = r"(\w{4}):(\w{4,8})"


def pdbutil_dump(pdb: Path) -> PdbutilDump:
    """Run llvm-pdbutil on ``pdb`` and parse what the tests compare."""
    tool = require_tool("llvm-pdbutil")
    text = subprocess.run([tool, "dump", "-summary", "-publics", "-globals", "-symbols", "-types",
                           "-section-headers", str(pdb)],
                          check=True, capture_output=True, text=True).stdout
    return parse_pdbutil(text)


def parse_pdbutil(text: str) -> PdbutilDump:
    dump = PdbutilDump([], [], [], [], {})
    if m := re.search(r"GUID: \{([0-9A-F-]+)\}", text):
        dump.guid = m.group(1)
    if m := re.search(r"^\s*Age: (\d+)", text, re.M):
        dump.age = int(m.group(1))
    if m := re.search(r"^\s*Signature: (\d+)", text, re.M):
        dump.signature = int(m.group(1))
    for m in re.finditer(r"SECTION HEADER #\d+\s*\n\s*(\S*) name\s*\n\s*([0-9A-F]+) virtual size"
                         r"\s*\n\s*([0-9A-F]+) virtual address", text):
        dump.sections.append((m.group(1), int(m.group(3), 16), int(m.group(2), 16)))
    section = ""
    current: PdbutilType | None = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in ("Public Symbols", "Global Symbols", "Symbols", "Types (TPI Stream)",
                            "Section Headers", "Summary"):
            section = line.strip()
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if section == "Public Symbols":
            m = re.search(r"S_PUB32 \[size = \d+\] `(.*)`", line)
            if m:
                a = re.search(r"addr = " + _ADDR, nxt)
                dump.publics.append((m.group(1), int(a.group(1)), int(a.group(2))))
        elif section == "Global Symbols":
            m = re.search(r"(S_GDATA32|S_LDATA32) \[size = \d+\] `(.*)`", line)
            if m:
                a = re.search(r"type = (0x[0-9A-F]+) \(.*\), addr = " + _ADDR, nxt)
                dump.globals.append((m.group(2), int(a.group(1), 16), int(a.group(2)),
                                     int(a.group(3)), m.group(1)))
        elif section == "Symbols":
            m = re.search(r"(S_GPROC32|S_LPROC32|S_GPROC32_ID|S_LPROC32_ID) \[size = \d+\] `(.*)`",
                          line)
            if m:
                block = "\n".join(lines[i + 1:i + 4])
                a = re.search(r"addr = " + _ADDR + r", code size = (\d+)", block)
                dump.procedures.append((m.group(2), int(a.group(1)), int(a.group(2)),
                                        int(a.group(3)), m.group(1)))
        elif section == "Types (TPI Stream)":
            m = re.match(r"^\s*(0x[0-9A-F]+) \| (LF_\w+) \[size = \d+\](.*)$", line)
            if m:
                current = PdbutilType(int(m.group(1), 16), m.group(2))
                dump.types[current.index] = current
                rest = m.group(3)
                if n := re.match(r"\s*`(.*)`", rest):
                    current.name = n.group(1)
                continue
            if current is None:
                continue
            if m := re.search(r"- LF_MEMBER \[name = `(.*)`, Type = (0x[0-9A-F]+).*, offset = (\d+)",
                              line):
                current.members.append((m.group(1), int(m.group(2), 16), int(m.group(3))))
            elif m := re.search(r"- LF_ENUMERATE \[(.*) = (-?\d+)\]", line):
                current.enumerators.append((m.group(1), int(m.group(2))))
            elif m := re.search(r"field list: (0x[0-9A-F]+|<no type>)", line):
                current.field_list = int(m.group(1), 16) if m.group(1).startswith("0x") else 0
            if m := re.search(r"sizeof (\d+)", line):
                current.size = int(m.group(1))
            if "forward ref" in line:
                current.forward = True
            if m := re.search(r"forward ref \(-> (0x[0-9A-F]+)\)", line):
                current.forward_to = int(m.group(1), 16)
            if m := re.search(r"type = (0x[0-9A-F]+) .*bit offset = (\d+), # bits = (\d+)", line):
                current.bit_type, current.bit_offset, current.bit_count = (
                    int(m.group(1), 16), int(m.group(2)), int(m.group(3)))
    return dump


def pdbutil_lines(pdb: Path) -> list[tuple[str, int, int, int]]:
    """(file, segment, offset, line) of every entry ``llvm-pdbutil dump -l`` prints."""
    tool = require_tool("llvm-pdbutil")
    text = subprocess.run([tool, "dump", "-l", str(pdb)], check=True, capture_output=True,
                          text=True).stdout
    result = []
    file = ""
    segment = 0
    for line in text.splitlines():
        if m := re.match(r"^(\S.*?) \((?:MD5|SHA1|SHA256|no checksum).*\)$", line):
            file = m.group(1)
        elif m := re.match(r"^\s+(\w{4}):\w{8}-\w{8}, line/addr entries", line):
            segment = int(m.group(1), 16)
        else:
            for n, addr in re.findall(r"(\d+) ([0-9A-F]{8})", line):
                result.append((file, segment, int(addr, 16), int(n)))
    return result


def section_rva(dump: PdbutilDump, segment: int, offset: int) -> int:
    """RVA of an llvm-pdbutil segment:offset, by its own section headers."""
    return dump.sections[segment - 1][1] + offset


def resolve_forward(dump: PdbutilDump, ti: int) -> int:
    """The definition a forward reference points to, as llvm-pdbutil resolved it."""
    record = dump.types.get(ti)
    return record.forward_to if record is not None and record.forward else ti


@pytest.fixture(params=list(TARGETS))
def driver(request):
    """(PDB path, llvm-pdbutil dump) of the test driver, once per flavour."""
    path = built_driver(request.param)
    return path, pdbutil_dump(path)


def sample_spec(profile: str = "pdb7", **overrides):
    """A writer spec with a bit of everything: sections, publics, globals, a
    procedure, a label, typedefs, lines (7.0) and types in the profile's form."""
    from kdcon.symbols.model import SectionHeader
    from kdcon.symbols.pdb.writer import PROFILES, PdbSpec
    from kdcon.symbols.pdb.writer_records import TypeWriter

    form = PROFILES[profile][3]
    psize = 8 if profile == "pdb7" else 4
    tw = TypeWriter(form)
    forward = tw.structure("_LIST_ENTRY", 0, 0, 0, forward=True)
    pointer = tw.pointer(forward, psize)
    links = tw.complete("_LIST_ENTRY", [("Flink", pointer, 0), ("Blink", pointer, psize)],
                        2 * psize)
    bits = tw.bitfield(0x22, 3, 2)
    name = tw.array(0x20, 16)
    state = tw.enum("_STATE", 0x74, [("StateIdle", 0), ("StateBusy", 5), ("StateBig", 70000)])
    members = [("Flags", 0x22, 0), ("Bits", bits, 4), ("Name", name, 8),
               ("Links", links, 24), ("State", state, 24 + 2 * psize)]
    obj_forward, obj = tw.aggregate("_OBJ", members, 32 + 2 * psize)
    self_ptr = tw.pointer(obj_forward, psize)
    union = tw.complete("_U", [("Whole", 0x22, 0), ("Self", self_ptr, 0)], psize, kind="union")
    spec = PdbSpec(
        profile=profile, machine=0x8664 if profile == "pdb7" else 0x14C,
        sections=[SectionHeader(".text", 0x1000, 0x200, 0x60000020),
                  SectionHeader(".data", 0x2000, 0x100, 0xC0000040)],
        publics=[("_DriverEntry@8", 1, 0x10, 2), ("_Global", 2, 0x20, 0),
                 ("?Helper@@YAXXZ", 1, 0x80, 2), ("Caf\u00e9", 2, 0x60, 0)],
        globals=[("Global", 2, 0x20, obj, False), ("Counter", 2, 0x50, 0x22, True),
                 ("Either", 2, 0x60, union, False)],
        procedures=[("DriverEntry", 1, 0x10, 0x40, 0, False), ("Helper", 1, 0x80, 0x20, 0, True)],
        labels=[("Retry", 1, 0x30)],
        typedefs=[("OBJ", obj), ("POBJ", self_ptr)],
        lines=[("c:\\src\\drv.c", 1, 0x10, [(0, 10), (8, 11), (0x20, 14)]),
               ("c:\\src\\helper.c", 1, 0x80, [(0, 3), (0x10, 4)])] if profile == "pdb7" else [],
        types=tw)
    for key, value in overrides.items():
        setattr(spec, key, value)
    return spec
