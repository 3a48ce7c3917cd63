"""!running, !stacks, !dl, !dlb and !lookaside end to end on the simulated target, with
the tests' own WDK drivers: systhread (stopped in its Waiter thread, with DriverEntry
waiting for its threads and two Stepper threads delaying) and lookaside (stopped as it
deletes its nonpaged lookaside list, whose counts its own DbgPrint line gives).

What the output must say is checked against what the console's own commands read
(``? @$prcb``, ``dt``, ``k``, ``dq``, ``!process``) and against the drivers' sources;
the golden transcripts keep the rest.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.simtarget.wdkbuild import build

from .test_golden_kernel_extensions import evaluated, output_of
from .transcripts import batch, check_golden, run_kdcon, without_kernel_pdb

LOOKASIDE_CASES = "0x9C422400"     # lookaside.c: CTL_CODE(40002, 0x900, ...) runs its cases


@pytest.fixture(scope="module")
def drivers(tmp_path_factory):
    out = tmp_path_factory.mktemp("drivers")
    return {name: build(name, out) for name in ("systhread", "lookaside")}, str(out)


def run_with(drivers, name: str, *commands: str, extra: list[str] | None = None) -> str:
    images, out = drivers
    text, status = batch(*commands, extra=["--driver", str(images[name]), *(extra or [])])
    assert status == 0, text[-1500:]
    return text.replace(out, "<drivers>")


@pytest.fixture(scope="module")
def in_waiter(drivers) -> str:
    return run_with(drivers, "systhread", "!running", "!running -i", "bp systhread!Waiter",
                    "g", "g", "? @$prcb", "? @$thread", "dt nt!_KPRCB @$prcb IdleThread", "k",
                    "!running -t", "!process 0 4", "!stacks", "!stacks 1", "!stacks 2 Stepper",
                    "!stacks 0 NoSuchRoutine")


def test_running_shows_the_processor_s_current_thread_and_says_when_all_are_idle(in_waiter):
    text = in_waiter
    # At the initial break the simulated kernel's one thread is also its idle thread.
    assert "All processors idle." in output_of(text, "!running")
    assert "Prcbs" not in output_of(text, "!running")
    prcb, thread = evaluated(text, "@$prcb"), evaluated(text, "@$thread")
    idle = int(re.search(r"IdleThread\s+: 0x([0-9a-f`]+)",
                         output_of(text, "dt nt!_KPRCB @$prcb IdleThread")).group(1)
               .replace("`", ""), 16)
    shown = output_of(text, "!running -t")
    assert "System Processors:  (0000000000000001)\n" in shown
    assert "  Idle Processors:  (0000000000000000)\n" in shown
    # systhread's threads run at priority 8 (PsCreateSystemThread's, thread.c).
    assert re.search(rf"^  0    {prcb:016x}  {thread:016x} \( 8\) +{idle:016x}$", shown, re.M)
    assert output_of(text, "k") in shown
    check_golden("threads_running_stacks", text)


def test_stacks_walks_each_waiting_thread_from_its_saved_kernel_stack(in_waiter):
    text = in_waiter
    listed = re.findall(r"THREAD ([0-9a-f]{16})  Cid 0004\.([0-9a-f]{4})",
                        output_of(text, "!process 0 4"))
    summary = output_of(text, "!stacks")
    assert "\nProc.Thread  .Thread  Ticks   ThreadState Blocker\n" in summary
    for address, tid in listed:
        assert re.search(rf"^   4\.00{tid}  {address} [0-9a-f]{{8}} ", summary, re.M), address
    assert summary.endswith(f"\nThreads Processed: {len(listed)}")
    thread = evaluated(text, "@$thread")
    assert re.search(rf"{thread:016x} [0-9a-f]{{8}} RUNNING    systhread!Waiter$", summary, re.M)
    # The Steppers delay (KeDelayExecutionThread) and DriverEntry waits for the threads:
    # Blocker names the driver's routine below the kernel's wait and switch routines.
    assert len(re.findall(r" READY      systhread!Stepper\+0x[0-9a-f]+$", summary, re.M)) == 2
    assert re.search(r" READY      systhread!DriverEntry\+0x[0-9a-f]+$", summary, re.M)
    # Quitter has not run yet: its saved frame returns from no switch, so its
    # StartAddress stands in for the stack, as kd does for a stack it cannot walk.
    assert re.search(r" READY      systhread!Quitter$", summary, re.M)
    full = output_of(text, "!stacks 1")
    stepper = full.split(" systhread!Stepper+", 1)[0].rsplit("\n   4.", 1)[1]
    assert "nt!KeDelayExecutionThread+" in stepper
    assert re.search(r"^ +nt!IopStartDriver\+0x[0-9a-f]+$", full, re.M)


def test_stacks_keeps_only_the_threads_whose_frames_name_the_filter(in_waiter):
    text = in_waiter
    chosen = output_of(text, "!stacks 2 Stepper")
    assert len(re.findall(r"^   4\.", chosen, re.M)) == 2
    assert "Child-SP          RetAddr               : Args to Child" in chosen
    assert chosen.endswith("\nThreads Processed: 2")
    none = output_of(text, "!stacks 0 NoSuchRoutine")
    assert "[" not in none and none.rstrip().endswith("\nThreads Processed: 0")


def test_lookaside_and_dl_read_the_driver_s_list(drivers):
    text = run_with(drivers, "lookaside", "bp nt!ExDeleteNPagedLookasideList", "g", "g",
                    "? @rcx", "!lookaside @rcx", "dq nt!ExpLookasideLists L2",
                    "!dl nt!ExpLookasideLists", "!dlb nt!ExpLookasideLists 5 4",
                    "!dl nt!PsActiveProcessHead 2 1",
                    extra=["--ioctl", rf"\\.\LookasideKsim,{LOOKASIDE_CASES},"])
    printed = re.search(r"lookaside: npaged depth=(\d+) held=(\d+) allocs=(\d+) misses=(\d+) "
                        r"frees=(\d+) free_misses=(\d+) .* size=(\d+)", text)
    depth, held, allocs, misses, frees, free_misses, size = map(int, printed.groups())
    # After its print the driver gives back the three blocks it took (lookaside.c).
    frees += 3
    shown = output_of(text, "!lookaside @rcx")
    address = evaluated(text, "@rcx")
    assert f'@ 0x{address:x}  Tag(hex): 0x704e6b4c "LkNp"\n' in shown
    assert "    Type           =       0200  NonPagedPoolNx\n" in shown
    assert f"    Current Depth  = {held:>10}  Max Depth  = {depth:>10}\n" in shown
    assert f"    Size           = {size:>10}  Max Alloc  = {size * depth:>10}\n" in shown
    assert f"    AllocateMisses = {misses:>10}  FreeMisses = {free_misses:>10}\n" in shown
    assert f"    TotalAllocates = {allocs:>10}  TotalFrees = {frees:>10}\n" in shown
    assert (f"    Hit Rate       = {(allocs - misses) * 100 // allocs:>10}% Hit Rate   = "
            f"{(frees - free_misses) * 100 // frees:>10}%") in shown
    head = output_of(text, "dq nt!ExpLookasideLists L2")
    forward = output_of(text, "!dl nt!ExpLookasideLists").splitlines()
    assert forward[0] == head
    # The one list on the kernel's lookaside list is this one, by its ListEntry (+0x40).
    entry = address + 0x40
    assert forward[1].startswith(f"{entry >> 32:08x}`{entry & 0xFFFFFFFF:08x}  ")
    assert len(forward) == 2
    backward = output_of(text, "!dlb nt!ExpLookasideLists 5 4").splitlines()
    assert [line.split()[0] for line in backward] == [line.split()[0] for line in forward]
    assert len(backward[0].split()) == 5
    assert len(output_of(text, "!dl nt!PsActiveProcessHead 2 1").splitlines()) == 2
    check_golden("threads_lookaside_dl", text)


def test_bad_arguments_are_one_line_each():
    for command, message in (("!dl", "Usage: !dl Address [MaxCount [Size]]"),
                             ("!dl nt!PsActiveProcessHead 1 0", "!dl: Size is 1 to 0x100 pointers"),
                             ("!lookaside 0", "!lookaside 0 (the system's well-known lists) is "
                                              "not supported: give a list's address"),
                             ("!stacks 7", "Usage: !stacks [Detail [FilterString]] "
                                           "(Detail 0, 1 or 2)"),
                             ("!running -x", "Usage: !running [-i] [-t]")):
        text, status = batch(command)
        assert status == 1, command
        assert output_of(text + "\n0: kd> ", command).strip() == message


def test_json_rows_of_stacks_and_running(drivers):
    images, _ = drivers
    text, status = run_kdcon(["--loopback", "--batch", "--json", "--timeout", "60",
                              "--driver", str(images["systhread"]), "-c", "bp systhread!Waiter",
                              "-c", "g", "-c", "g", "-c", "!stacks", "-c", "!running"])
    assert status == 0, text[-1500:]
    results = {o["command"]: o for o in map(json.loads, text.splitlines())
               if o["type"] == "result"}
    rows = results["!stacks"]["rows"]
    assert sorted(r["state"] for r in rows) == ["READY"] * 4 + ["RUNNING"]
    waiter = next(r for r in rows if r["state"] == "RUNNING")
    assert waiter["blocker"] == "systhread!Waiter" and waiter["image"] == "System"
    (processor,) = results["!running"]["rows"]
    assert processor["current"] == waiter["thread"] and not processor["is_idle"]


def test_without_the_kernel_pdb_stacks_and_running_read_the_built_in_layout(drivers, in_waiter):
    # Only the drivers' PDBs on the symbol path: nt has exports, no types.
    images, out = drivers
    with without_kernel_pdb(out, [images["systhread"]]) as (app, stream):
        layout = app.console.target.builtin_layout
        for command in ("bp systhread!Waiter", "g", "g", "!stacks", "!running"):
            assert app.console.execute(command), stream.getvalue()[-800:]
    text = stream.getvalue()
    assert layout == "Windows 7 SP1 x64"
    threads_now = [line for line in text.splitlines() if line.startswith("   4.")]
    threads_with_pdb = [line for line in output_of(in_waiter, "!stacks").splitlines()
                        if line.startswith("   4.")]
    # The same threads in the same states; without nt's PDB no routine is named
    # *SwapContext, so no saved frame is walked and each waiting thread shows its
    # StartAddress, while the one the target stopped in is walked from its registers.
    assert [line.split()[:4] for line in threads_now] == \
        [line.split()[:4] for line in threads_with_pdb]
    assert sum(line.endswith(" READY      systhread!Stepper") for line in threads_now) == 2
    assert threads_now[3].endswith(" RUNNING    systhread!Waiter")
    row_now = [line for line in text.splitlines() if line.startswith("  0    ")]
    row_with_pdb = [line for line in output_of(in_waiter, "!running -t").splitlines()
                    if line.startswith("  0    ")]
    assert len(row_now) == 1 and row_now == row_with_pdb
