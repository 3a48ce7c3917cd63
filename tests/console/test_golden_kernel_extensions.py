"""The kernel extensions end to end on the simulated target: !analyze after the IRQL bug
check from driver code (KiSimRequest 8) and after .crash, !process, !thread, and !irql,
!pcr, !prcb, !idt at the initial break; and without the kernel's PDB, through the
console's built-in Windows 7 SP1 layout.

What the output must say is checked against what the console's own commands read
(``? @$pcr``, ``dt``, ``k``, ``.bugcheck``) and against the simulated kernel's header,
where the vectors and the bad address are defined; the golden transcripts keep the rest.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from kdcon.tools.simtarget.kernel import IMAGES_DIR

from .transcripts import batch, check_golden, run_kdcon, without_kernel_pdb

KI_H = Path(__file__).resolve().parents[2] / "tools/simtarget/src/include/ki.h"


def ki_constant(name: str) -> int:
    """A ``#define`` of the simulated kernel's ki.h."""
    found = re.search(rf"^#define\s+{name}\s+(0x[0-9A-Fa-f]+|\d+)", KI_H.read_text(), re.M)
    assert found, f"ki.h defines no {name}"
    return int(found.group(1), 0)


def output_of(text: str, command: str) -> str:
    """What ``command`` printed in a transcript (up to the next prompt)."""
    return text.split(f"kd> {command}\n", 1)[1].split("\n0: kd> ", 1)[0]


def evaluated(text: str, expression: str) -> int:
    line = output_of(text, f"? {expression}")
    return int(line.rsplit("= ", 1)[1].replace("`", ""), 16)


@pytest.fixture(scope="module")
def initial_break() -> str:
    text, status = batch("!irql", "!pcr", "!prcb", "!idt", "!process 0 0", "!process 0 7",
                         "!thread", "!analyze -v", "? @$pcr", "? @$prcb", "? @$thread",
                         "? poi(nt!PsInitialSystemProcess)", "dt nt!_KPCR @$pcr IdtBase Irql",
                         "k")
    assert status == 0, text[-1500:]
    return text


def test_processor_extensions_at_the_initial_break(initial_break):
    text = initial_break
    pcr, prcb, thread = evaluated(text, "@$pcr"), evaluated(text, "@$prcb"), \
        evaluated(text, "@$thread")
    fields = output_of(text, "dt nt!_KPCR @$pcr IdtBase Irql")
    idt_base = int(re.search(r"IdtBase\s+: 0x([0-9a-f`]+)", fields).group(1).replace("`", ""), 16)
    irql = int(re.search(r"Irql\s+: 0x([0-9a-f]+)", fields).group(1), 16)
    assert output_of(text, "!irql") == \
        f"Debugger saved IRQL for processor 0x0 -- {irql:x} (HIGH_LEVEL)"
    shown = output_of(text, "!pcr")
    assert shown.startswith(f"KPCR for Processor 0 at {pcr:x}:\n")
    assert f"Prcb: {prcb:016x}" in shown and f"IDT: {idt_base:016x}" in shown
    assert f"CurrentThread: {thread:016x}" in shown
    assert output_of(text, "!prcb").startswith(
        f"PRCB for Processor 0 at {prcb:x}:\nCurrent IRQL -- {irql}\n"
        f"Threads--  Current {thread:016x} ")
    vectors = output_of(text, "!idt")
    assert f"Dumping IDT: {idt_base:x}\n" in vectors
    page_fault = ki_constant("KSIM_VECTOR_PAGE_FAULT")
    clock = ki_constant("KSIM_VECTOR_CLOCK")
    assert re.search(rf"^{page_fault:02x}:\t[0-9a-f]{{16}} nt!KiPageFault$", vectors, re.M)
    assert re.search(rf"^{clock:02x}:\t[0-9a-f]{{16}} nt!KiClockInterrupt$", vectors, re.M)
    assert "go to nt!KiUnexpectedInterrupt: !idt -a lists them)" in vectors
    check_golden("kernel_extensions_initial", text)


def test_process_and_thread_read_the_kernel_lists(initial_break):
    text = initial_break
    system = evaluated(text, "poi(nt!PsInitialSystemProcess)")
    thread = evaluated(text, "@$thread")
    listing = output_of(text, "!process 0 0")
    assert "**** NT ACTIVE PROCESS DUMP ****\n" in listing
    assert f"PROCESS {system:x}\n    SessionId: none  Cid: 0004    Peb: 00000000  " \
           f"ParentCid: 0000\n" in listing
    assert "    Image: System\n" in listing
    assert len(re.findall(r"^PROCESS ", listing, re.M)) == 1
    full = output_of(text, "!process 0 7")
    assert f"        THREAD {thread:x}  Cid " in full and "RUNNING on processor 0" in full
    shown = output_of(text, "!thread")
    assert shown.splitlines()[1].startswith(f"THREAD {thread:x}  Cid ")
    assert f"Owning Process            {system:x}       Image:         System" in shown
    assert "Start Address nt!KiSystemLoop (0x" in shown
    # The stack is the console's own unwind of the current thread.
    assert output_of(text, "k") in shown


def test_analyze_at_a_break_in_says_it_is_no_bug_check(initial_break):
    shown = output_of(initial_break, "!analyze -v")
    assert "*                        Exception Analysis" in shown
    assert "This is not a bug check stop" in shown
    assert "The debugger broke in" in shown
    assert "EXCEPTION_CODE: (NTSTATUS) 0x80000003 - Break instruction exception" in shown


def test_analyze_names_the_driver_after_the_irql_bug_check_from_its_code():
    text, status = batch("ed nt!KiSimRequest 8", "g", "g", ".bugcheck", "!analyze -v",
                         "!analyze", "k", extra=["--prompt-answer", "i"])
    assert status == 0, text[-1500:]
    arguments = output_of(text, ".bugcheck").splitlines()[1].split()[1:]
    address, irql, access, ip = (int(a.replace("`", ""), 16) for a in arguments)
    bad = ki_constant("KSIM_BAD_ADDRESS")
    assert address & ~0xFFF == bad & ~0xFFF and irql == 2 and access == 0
    verbose = output_of(text, "!analyze -v")
    assert "*                        Bugcheck Analysis" in verbose
    assert "\nDRIVER_IRQL_NOT_LESS_OR_EQUAL (d1)\n" in verbose
    assert f"\nArg1: {address:016x}, memory referenced\n" in verbose
    assert f"\nArg2: {irql:016x}, IRQL at the time\n" in verbose
    assert f"\nArg4: {ip:016x}, address of the instruction that referenced memory\n" in verbose
    assert f"READ_ADDRESS:  {address:x} " in verbose
    faulting = verbose.split("FAULTING_IP: \n", 1)[1].splitlines()
    assert faulting[0].startswith("trackdemo!TrackDemoDispatch+")
    assert faulting[1].startswith(f"{ip >> 32:08x}`{ip & 0xFFFFFFFF:08x} ")
    assert "\nMODULE_NAME: trackdemo\n" in verbose and "\nIMAGE_NAME:  trackdemo.sys\n" in verbose
    # The guess: a bad pointer (nothing maps the address), at DISPATCH_LEVEL, in the driver.
    analysis = " ".join(verbose.split("ANALYSIS:\n", 1)[1].split("\n\n", 1)[0].split())
    assert "at IRQL 2 (DISPATCH_LEVEL)" in analysis and "bad pointer" in analysis
    assert "trackdemo.sys" in analysis
    # STACK_TEXT is the console's kb; the driver frame is the one to follow up.
    assert "nt!KeBugCheckEx" in verbose.split("STACK_TEXT:", 1)[1]
    short = output_of(text, "!analyze")
    assert f"BugCheck D1, {{{address:x}, 2, 0, {ip:x}}}" in short
    assert "Probably caused by : trackdemo.sys ( trackdemo!TrackDemoDispatch+" in short
    check_golden("analyze_irql_bugcheck", text)


def test_analyze_after_crash_says_it_was_made_on_purpose():
    text, status = batch(".crash", "!analyze -v", "!analyze")
    assert status == 0, text[-1500:]
    verbose = output_of(text, "!analyze -v")
    assert "\nMANUALLY_INITIATED_CRASH (e2)\n" in verbose
    assert "\nArg1: 0000000000000000\n" in verbose
    assert "crashed on purpose" in verbose and "no code is at fault" in verbose
    short = output_of(text, "!analyze")
    assert "BugCheck E2, {0, 0, 0, 0}" in short and "Probably caused by" not in short
    check_golden("analyze_crash", text)


def test_analyze_names_the_pool_block_of_a_bad_pool_caller_bug_check():
    # Stop in the first ExFreePoolWithTag from trackdemo and mark the block free
    # already: POOL_HEADER.PoolType (ki.h: bits 24-31 of its first ULONG, 0 = free) is
    # byte 3 of the 16-byte header in front of the block, so the free is a double free.
    text, status = batch("bp nt!ExFreePoolWithTag", "g", "g", "bc *", "? @rcx",
                         "eb @rcx-10+3 0", "g", ".bugcheck", "!analyze -v",
                         extra=["--prompt-answer", "i"])
    assert status == 0, text[-1500:]
    block = evaluated(text, "@rcx")
    arguments = output_of(text, ".bugcheck").splitlines()
    assert arguments[0] == "Bugcheck code 000000C2"
    verbose = output_of(text, "!analyze -v")
    assert "\nBAD_POOL_CALLER (c2)\n" in verbose
    assert f"\nArg4: {block:016x}, address of the block being freed\n" in verbose
    assert "(type 7: a block that was already free was freed again)" in verbose
    analysis = verbose.split("ANALYSIS:\n", 1)[1].split("\n\n", 1)[0]
    assert f"\n  *{block - 0x10:x} size:" in analysis and "(Free)" in analysis
    assert "The pool call came from trackdemo!" in analysis
    assert "\nMODULE_NAME: trackdemo\n" in verbose
    check_golden("analyze_pool_double_free", text)


def test_without_the_kernel_pdb_the_extensions_read_the_console_s_built_in_layout(tmp_path):
    # Only the driver's PDB on the symbol path: nt has exports, no types.
    shutil.copy(IMAGES_DIR / "checked" / "trackdemo.pdb", tmp_path)
    with without_kernel_pdb(str(tmp_path)) as (app, stream):
        layout = app.console.target.builtin_layout
        for command in ("? poi(nt!PsInitialSystemProcess)", "!process 0 0", "!idt", "!irql"):
            assert app.console.execute(command), stream.getvalue()[-800:]
    text = stream.getvalue()
    assert layout == "Windows 7 SP1 x64"
    system = int(text.split("Evaluate expression: ", 1)[1].split("= ", 1)[1].split()[0]
                 .replace("`", ""), 16)
    assert f"WARNING: nt!_EPROCESS is not in the kernel's symbols: using the {layout} " \
           f"(7601) layout\n" in text
    assert f"PROCESS {system:x}\n    SessionId: none  Cid: 0004 " in text
    # No symbol names the routine for unclaimed vectors; it is still the one left out.
    page_fault = ki_constant("KSIM_VECTOR_PAGE_FAULT")
    assert re.search(rf"^{page_fault:02x}:\t[0-9a-f]{{16}} nt!", text, re.M)
    assert re.search(r"^\(251 vectors go to nt!\S+: !idt -a lists them\)$", text, re.M)
    assert "Debugger saved IRQL for processor 0x0 -- f (HIGH_LEVEL)" in text


def test_json_rows_of_process_and_analyze():
    text, status = run_kdcon(["--loopback", "--batch", "--json", "--timeout", "60",
                              "-c", "!process 0 0", "-c", "!analyze", "-c", "!process 0 0 nothere"])
    assert status == 1
    results = {o["command"]: o for o in map(json.loads, text.splitlines())
               if o["type"] == "result"}
    listing, analysis = results["!process 0 0"], results["!analyze"]
    missing = results["!process 0 0 nothere"]
    assert listing["ok"] and [(r["pid"], r["image"]) for r in listing["rows"]] == [(4, "System")]
    assert analysis["ok"] and analysis["rows"][0]["bugcheck"] is None
    assert analysis["rows"][0]["exception"] == 0x80000003
    assert not missing["ok"] and missing["error"] == "No active process has the image name nothere"
