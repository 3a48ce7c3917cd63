"""The extension API's parts: versions, declarations, tables, the event bus, per-console
registries, typed views of PDB structures and Target.run, the last two on live data."""

from __future__ import annotations

import struct

import pytest

from kdcon import api
from kdcon.hooks import EventBus
from kdcon.registry import Category, Command, Registry
from kdcon.typed import TypeNotFound

from .extension_session import Live


@pytest.mark.parametrize("wanted", ["1.0", "1", " 1.0 "])
def test_require_accepts_the_provided_version(wanted):
    api.require(wanted)


@pytest.mark.parametrize("wanted, message", [
    ("1.1", "needs the kdcon extension API 1.1; this kdcon provides 1.0"),
    ("2.0", "needs the kdcon extension API 2.0; this kdcon provides 1.0"),
    ("0.9", "needs the kdcon extension API 0.9; this kdcon provides 1.0"),
    ("one", "a version is 'major.minor'"),
    ("1.0.0", "a version is 'major.minor'"),
])
def test_require_refuses_other_versions_in_one_clear_line(wanted, message):
    with pytest.raises(api.ApiVersionError, match=message.replace(".", r"\.")):
        api.require(wanted)
    assert issubclass(api.ApiVersionError, ImportError)


def test_bang_records_name_summary_and_details():
    @api.bang("first", usage="!first [x]")
    def handler(target, args):
        """Do the first thing.

        More words.
        """

    @api.bang
    def second(target, args):
        pass

    spec = handler.__kdcon_bang__
    assert (spec.name, spec.usage, spec.summary, spec.details) == (
        "first", "!first [x]", "Do the first thing.", "More words.")
    assert second.__kdcon_bang__.name == "second"
    assert second.__kdcon_bang__.summary == "The second extension command."
    with pytest.raises(ValueError, match="letters, digits and _"):
        api.bang("two words")(handler)
    with pytest.raises(ValueError, match="one of stop"):
        api.hook("nothing")


def _address(value: int) -> str:
    return f"{value >> 32:08x}`{value & 0xFFFFFFFF:08x}"


def test_table_aligns_numbers_right_text_left_and_formats_addresses():
    table = api.Table(api.Column("tag", "Tag"), api.Column("base", "Base", format="address"),
                      api.Column("count", "Count"), api.Column("size", "Size", format="x"))
    table.add(tag="Demo", base=0xFFFFF80001000000, count=3, size=0x100)
    table.add(tag="Tr\x1bck", base=None, count=12345, size=0x20)
    assert table.lines(_address) == [
        "Tag       Base               Count  Size",
        "Demo      fffff800`01000000      3   100",
        "Tr\\x1bck                     12345    20",
    ]
    assert api.Table.from_rows([{"a": "x", "b": 2}]).lines(_address) == ["a  b", "x  2"]


def test_event_bus_calls_in_order_reports_a_failure_and_forgets_an_owner():
    lines: list[str] = []
    bus = EventBus(lines.append)
    calls: list[str] = []
    bus.subscribe("stop", lambda event: calls.append(f"a:{event.pc}"), owner="one")
    bus.subscribe("stop", lambda event: 1 / 0, owner="two")
    every = bus.subscribe("*", lambda event: calls.append(f"all:{event.kind}"))
    bus.emit("stop", {"pc": 5})
    bus.emit("dbgprint", {"text": "x"})
    assert calls == ["a:5", "all:stop", "all:dbgprint"]
    assert lines == ["The stop hook of extension two failed: ZeroDivisionError: division by zero"]
    assert bus.remove_owner("one") == 1
    every.remove()
    calls.clear()
    bus.emit("stop", {"pc": 6})
    assert calls == []
    with pytest.raises(ValueError):
        bus.subscribe("nothing", print)


def test_a_copied_registry_gains_and_loses_commands_alone():
    base = Registry()
    base.add(Command(name="g", handler=print, category=Category.EXECUTION, usage="g",
                     summary="Go."))
    mine = base.copy()
    mine.add(Command(name="!x", handler=print, category=Category.EXTENSIONS, usage="!x",
                     summary="X.", aliases=("!ext.x",)))
    assert mine.resolve("!ext.x 1")[1] == " 1" and base.get("!x") is None
    assert mine.remove("!x") is not None
    assert mine.get("!ext.x") is None and mine.get("g") is not None
    assert mine.remove("!x") is None


@pytest.fixture(scope="module")
def live():
    session = Live()
    session.ok("bp trackdemo!TrackDemoDispatch")
    session.ok("g")
    session.ok("g")               # the first TICK: Track is initialized
    yield session
    session.close()


def test_typed_view_reads_fields_at_the_pdb_offsets(live):
    target = live.console.target
    address = target.symbol("trackdemo!TrackMemoryStats")
    stats = target.typed(address, "trackdemo!_TRACK_MEMORY_STATS")
    raw = target.read_exact(address, stats.size)
    offset = target.field_offset("trackdemo!_TRACK_MEMORY_STATS", "BytesAllocated")
    assert stats.BytesAllocated == struct.unpack_from("<Q", raw, offset)[0] > 0
    assert stats.TotalCalls == struct.unpack_from("<I", raw, 0)[0]
    assert stats.fields == ["TotalCalls", "CurrentCount", "BytesAllocated", "PeakBytes"]
    assert stats["PeakBytes"] >= stats.BytesAllocated
    with pytest.raises(AttributeError, match="has no field Nope"):
        stats.Nope
    with pytest.raises(TypeNotFound, match="Type trackdemo!_NO_SUCH not found"):
        target.typed(address, "trackdemo!_NO_SUCH")


def test_list_walk_and_containing_record_agree_with_the_raw_links(live):
    target = live.console.target
    head = target.symbol("trackdemo!TrackRecordList")
    records = list(target.walk_list(head, "trackdemo!_TRACK_RECORD", "ListEntry"))
    assert [r.address for r in records] == list(target.list_entries(head))
    first = records[0]
    assert first.ListEntry.Flink == (records[1].address if len(records) > 1 else head)
    assert first.offset_of("ListEntry.Blink") == 8
    assert target.containing_record(first.address_of("Flags"), "trackdemo!_TRACK_RECORD",
                                    "Flags").address == first.address
    assert first.Source.string() == "trackdemo\\trackdemo.c"
    assert len(first.Source) == 41 and first.Source[0] == ord("t")
    names = {r.Allocator.name for r in records}
    assert "TrackFnIoCreateDevice" in names


def test_run_gives_text_status_and_rows_of_a_nested_command(live):
    target = live.console.target
    out = target.run("lm m trackdemo")
    assert out.ok and out.startswith("start ") and out.rows[0]["name"] == "trackdemo"
    bad = target.run("lm q")
    assert not bad.ok and bad.rows == []


def test_bitfields_and_counted_strings_decode_from_the_kernels_types(live):
    target = live.console.target
    head = target.symbol("trackdemo!TrackRecordList")
    record = next(target.walk_list(head, "trackdemo!_TRACK_RECORD", "ListEntry"))
    header = target.typed(record.address - 16, "nt!_POOL_HEADER")
    word = target.u32(record.address - 16)
    assert header.BlockSize == (word >> 16) & 0xFF and header.BlockSize * 16 >= 16 + 0x58
    assert header.PoolType == word >> 24 and header.PreviousSize == word & 0xFF
    assert target.read(record.address - 12, 4) == b"Trck" == struct.pack("<I", header.PoolTag)
    modules = target.walk_list(target.symbol("nt!PsLoadedModuleList"),
                               "nt!_KLDR_DATA_TABLE_ENTRY", "InLoadOrderLinks")
    names = [(entry.BaseDllName.string(), entry.FullDllName.string()) for entry in modules]
    assert names[0] == ("ntoskrnl.exe", "\\SystemRoot\\system32\\ntoskrnl.exe")
    assert ("trackdemo.sys", "\\SystemRoot\\system32\\drivers\\trackdemo.sys") in names
    with pytest.raises(AttributeError, match="not a counted string"):
        record.ListEntry.string()


def test_the_track_commands_never_fetch_a_byte_twice_at_one_stop():
    session = Live()
    try:
        for line in ("bp trackdemo!TrackDemoDispatch", "g", "g", "ed nt!KiSimRequest 1", "g", "g"):
            session.ok(line)
        host = session.app.session.host
        fetched: list[tuple[int, int]] = []
        real = host.read_virtual

        def counting(address: int, size: int, *args, **kwargs) -> bytes:
            data = real(address, size, *args, **kwargs)
            fetched.append((address, len(data)))
            return data

        host.read_virtual = counting
        for command in ("!trackdump", "!trackstats", "!trackleaks", "!trackvalidate",
                        "!trackdump"):
            session.run(command)
        covered = [byte for address, size in fetched for byte in range(address, address + size)]
        assert len(covered) == len(set(covered))
        records = len(list(session.console.target.walk_list(
            session.console.target.symbol("trackdemo!TrackRecordList"),
            "trackdemo!_TRACK_RECORD", "ListEntry")))
        assert records == 5 and 0 < len(fetched) <= 2 + records + 2 + 2 * records
    finally:
        session.close()
