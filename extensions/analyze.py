"""!analyze: why the target stopped, in WinDbg's !analyze sections, with a reasoned guess.

    !analyze            the short form: the code, its parameters, what probably caused it
    !analyze -v         every section: the code's meaning, each parameter, the faulting
                        instruction, the stack, the module and image to follow up

For a bug check the code and its four parameters come from ``nt!KiBugCheckData`` (the
debugger data block's copy when the symbol is missing). The faulting instruction is
the parameter that holds it for codes that have one (0xA, 0xD1, 0xC5: parameter 4;
0x1E, 0x7E, 0x8E, 0x3B: 2; 0x50: 3), otherwise the first stack frame that is not the
bug check or trap machinery; the module to follow up is that frame's, or the first
driver below it on the stack when that frame is in the kernel. The stack is the
console's ``kb``. The ANALYSIS section is kdcon's own: a short reasoned guess (an
IRQL too high for a pageable access with the driver named and whether the address is
mapped at all; the pool block a pool bug check names, as ``!pool`` shows it; a crash
made on purpose for 0xE2). The meanings of the codes are Microsoft's bug check
reference, in our words (``_bugcodes.py``).

Without a bug check it says so and analyses the stop instead, as WinDbg does: the
exception code and where it happened, a break-in, a hard-coded breakpoint and who
called it, a breakpoint of the debugger's own.
"""

from __future__ import annotations

import struct
import textwrap
import weakref
from typing import Any

from kdcon.api import ExtensionFailed, Target, bang, hook, require

from ._bugcodes import BUG_CODES, EXCEPTION_NAMES, BugCode, access_kind, describe, subtype
from ._ntobjects import current_process, irql_name, processor_irql, read_process
from ._triage import (Frame, Place, bare, bugcheck_cause, is_machinery, locate, module_of,
                      stop_cause)

require("1.0")

_BANNER_EDGE = "*" * 79
_BANNER_BLANK = "*" + " " * 77 + "*"
_KDBG_BUGCHECK_DATA = 0x88         # KDDEBUGGER_DATA64.KiBugcheckData (wdbgexts.h)
_KDBG_TAG = 0x4742444B             # 'KDBG'
_NOBODYS_FAULT = (0xE2,)            # MANUALLY_INITIATED_CRASH: no code to blame
# The last stop each console saw (its Target), for analysing a stop that is no bug check.
_LAST_STOP: weakref.WeakKeyDictionary[Target, dict[str, Any]] = weakref.WeakKeyDictionary()


@hook("stop")
def remember_stop(target: Target, event: Any) -> None:
    _LAST_STOP[target] = dict(event.fields)


# -- reading the target ------------------------------------------------------------------------


def _bugcheck_data(target: Target) -> tuple[int, tuple[int, int, int, int]]:
    address = target.symbol("nt!KiBugCheckData")
    if address is None:
        block = target.symbol("nt!KdDebuggerDataBlock")
        header = target.read(block, 0x18) if block is not None else b""
        if len(header) < 0x18 or struct.unpack_from("<I", header, 0x10)[0] != _KDBG_TAG:
            raise ExtensionFailed("nt!KiBugCheckData is not known: are the kernel's symbols "
                                  "loaded (.reload /f nt)?")
        address = target.pointer(block + _KDBG_BUGCHECK_DATA)
    size = target.pointer_size
    data = target.read(address, 5 * size)
    if len(data) < 5 * size:
        raise ExtensionFailed(f"Cannot read the bug check data at "
                              f"{target.format_address(address)}")
    values = struct.unpack("<5Q" if size == 8 else "<5I", data)
    return values[0] & 0xFFFFFFFF, (values[1], values[2], values[3], values[4])


def _frames(target: Target) -> tuple[list[Frame], list[str]]:
    """The current stack (frames and ``kb``'s lines without its header)."""
    out = target.run("kb 40")
    frames = [Frame(index=row.get("number", i), ip=row["ip"],
                    name=row.get("call_site") or f"{row['ip']:x}")
              for i, row in enumerate(out.rows) if "ip" in row]
    lines = out.rstrip("\n").splitlines()
    return frames, lines[1:] if lines and lines[0].startswith("Child-SP") else lines


def _disassembly(target: Target, address: int) -> str:
    out = target.run(f"u 0x{address:x} L1")
    lines = [line for line in out.splitlines() if line and not line.endswith(":")]
    if out.ok and lines:
        return lines[0]
    return f"{target.format_address(address)} ??              ???"


def _process_name(target: Target) -> str | None:
    try:
        return read_process(target, current_process(target)).image or None
    except ExtensionFailed:
        return None


def _irql(target: Target) -> int | None:
    try:
        return processor_irql(target)[0]
    except ExtensionFailed:
        return None


# -- output --------------------------------------------------------------------------------------


def _banner(title: str) -> list[str]:
    middle = "*" + " " * 24 + title
    return [_BANNER_EDGE, _BANNER_BLANK, middle.ljust(78) + "*", _BANNER_BLANK, _BANNER_EDGE,
            ""]


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, 79) or [""]


def _argument_lines(target: Target, code: BugCode, params: tuple[int, ...]) -> list[str]:
    width = 16 if target.pointer_size == 8 else 8
    meanings = list(code.params)
    detail = subtype(code, params[0])
    if detail is not None:
        meanings[1:] = detail[:3]
    lines = ["Arguments:"]
    for number, (value, meaning) in enumerate(zip(params, meanings), 1):
        lines.append(f"Arg{number}: {value:0{width}x}" + (f", {meaning}" if meaning else ""))
    if detail is not None:
        lines.append(f"(type {params[0]:x}: {detail[3]})")
    return lines


def _followup_lines(place: Place, code_number: int, target: Target) -> list[str]:
    lines = []
    module = place.module
    if module is not None:
        arch = "X64" if target.pointer_size == 8 else "X86"
        lines += [f"MODULE_NAME: {module.name}", "",
                  f"IMAGE_NAME:  {getattr(module, 'image_name', module.name)}", ""]
        stamp = getattr(module, "timestamp", 0)
        if stamp:
            lines += [f"DEBUG_FLR_IMAGE_TIMESTAMP:  {stamp:x}", ""]
        bucket = f"{arch}_0x{code_number:X}_{place.symbol}"
        lines += [f"FAILURE_BUCKET_ID:  {bucket}", "", f"BUCKET_ID:  {bucket}", ""]
    return lines


def _instruction_lines(target: Target, title: str, place: Place) -> list[str]:
    at = place.frame.ip if place.frame is not None else place.ip
    if at is None:
        return []
    return [f"{title}: ", place.symbol if title == "FOLLOWUP_IP" else
            bare(target.name_for(at) or f"{at:x}"), _disassembly(target, at), ""]


def _bugcheck_report(target: Target, code_number: int, params: tuple[int, int, int, int],
                     verbose: bool) -> tuple[list[str], dict[str, Any]]:
    code = describe(code_number)
    frames, stack_text = _frames(target)
    place = locate(target, code, params, frames)
    cause = bugcheck_cause(target, code_number, code, params, place, frames)
    image = getattr(place.module, "image_name", None) if place.module is not None else None
    row = {"bugcheck": code_number, "name": code.name, "parameters": list(params),
           "faulting_ip": place.ip, "symbol": place.symbol,
           "module": place.module.name if place.module is not None else None,
           "image": image, "analysis": " ".join(cause)}
    lines = _banner("Bugcheck Analysis")
    if not verbose:
        lines += ["Use !analyze -v to get detailed debugging information.", "",
                  f"BugCheck {code_number:X}, {{{', '.join(f'{p:x}' for p in params)}}}", ""]
        if image and code_number not in _NOBODYS_FAULT:
            lines += [f"Probably caused by : {image} ( {place.symbol} )", ""]
        lines += _paragraph(cause) + ["Followup: MachineOwner", "---------"]
        return lines, row
    known = code_number in BUG_CODES
    lines += [f"{code.name} ({code_number:x})" if known else code.name, *code.about]
    lines += _argument_lines(target, code, params)
    lines += ["", "Debugging Details:", "------------------", "", "ANALYSIS:"]
    lines += _paragraph(cause)
    if code.memory:
        lines += [f"{access_kind(code, params)}_ADDRESS:  {params[code.memory - 1]:x} ", ""]
    irql = params[code.irql - 1] if code.irql else _irql(target)
    if irql is not None:
        lines += [f"CURRENT_IRQL:  {irql:x}", ""]
    if code.exception:
        exception = params[code.exception - 1] & 0xFFFFFFFF
        lines += [f"EXCEPTION_CODE: (NTSTATUS) 0x{exception:x} - "
                  f"{EXCEPTION_NAMES.get(exception, 'unknown exception')}", ""]
    lines += _instruction_lines(target, "FAULTING_IP", Place(place.ip, None, None, ""))
    lines += [f"BUGCHECK_STR:  0x{code_number:X}", ""]
    process = _process_name(target)
    if process:
        lines += [f"PROCESS_NAME:  {process}", ""]
    lines += ["STACK_TEXT:  ", *stack_text, "", "STACK_COMMAND:  kb", ""]
    if place.frame is not None:
        lines += _instruction_lines(target, "FOLLOWUP_IP", place)
        lines += [f"SYMBOL_STACK_INDEX:  {place.frame.index:x}", ""]
    lines += [f"SYMBOL_NAME:  {place.symbol}", "", "FOLLOWUP_NAME:  MachineOwner", ""]
    lines += _followup_lines(place, code_number, target)
    lines += ["Followup: MachineOwner", "---------"]
    return lines, row


def _paragraph(sentences: list[str]) -> list[str]:
    """Sentences wrapped at 79 columns; one that starts indented (another command's
    line, quoted) stays as it is."""
    lines: list[str] = []
    for sentence in sentences:
        lines += [sentence] if sentence.startswith("  ") else _wrap(sentence)
    return lines + [""]


def _exception_report(target: Target, stop: dict[str, Any] | None,
                      verbose: bool) -> tuple[list[str], dict[str, Any]]:
    frames, stack_text = _frames(target)
    pc = stop.get("pc") if stop else None
    if pc is None:
        pc = target.register("rip")
    cause, code, blame = stop_cause(target, stop, pc, frames)
    culprit = next((f for f in frames if not is_machinery(f.name)), None)
    module = module_of(target, culprit.ip) if culprit is not None else None
    symbol = bare(culprit.name) if culprit is not None else f"{pc:x}"
    place = Place(ip=pc, frame=culprit, module=module, symbol=symbol)
    row = {"bugcheck": None, "exception": code, "pc": pc, "symbol": symbol,
           "module": module.name if module is not None else None,
           "analysis": " ".join(cause)}
    lines = _banner("Exception Analysis")
    lines += ["This is not a bug check stop: nt!KiBugCheckData holds no code.", ""]
    if not verbose:
        lines += _paragraph(cause)
        if module is not None and blame:
            lines += [f"Probably caused by : {getattr(module, 'image_name', module.name)} "
                      f"( {symbol} )", ""]
        lines += ["Followup: MachineOwner", "---------"]
        return lines, row
    lines += ["ANALYSIS:", *_paragraph(cause)]
    lines += _instruction_lines(target, "FAULTING_IP", Place(pc, None, None, ""))
    if code is not None:
        chance = "" if stop is None else (" (first chance)" if stop.get("first_chance", True)
                                          else " (second chance)")
        lines += [f"EXCEPTION_CODE: (NTSTATUS) 0x{code:x} - "
                  f"{EXCEPTION_NAMES.get(code, 'unknown exception')}{chance}", ""]
    irql = _irql(target)
    if irql is not None:
        lines += [f"CURRENT_IRQL:  {irql:x} ({irql_name(irql)})", ""]
    process = _process_name(target)
    if process:
        lines += [f"PROCESS_NAME:  {process}", ""]
    lines += ["STACK_TEXT:  ", *stack_text, "", "STACK_COMMAND:  kb", ""]
    if culprit is not None:
        lines += _instruction_lines(target, "FOLLOWUP_IP", place)
        lines += [f"SYMBOL_STACK_INDEX:  {culprit.index:x}", "",
                  f"SYMBOL_NAME:  {symbol}", ""]
    if module is not None:
        lines += [f"MODULE_NAME: {module.name}", "",
                  f"IMAGE_NAME:  {getattr(module, 'image_name', module.name)}", ""]
    lines += ["Followup: MachineOwner", "---------"]
    return lines, row


@bang("analyze", usage="!analyze [-v]")
def analyze(target: Target, args: str) -> None:
    """Say why the target stopped: the bug check, its parameters, the culprit and a likely cause."""
    words = args.split()
    verbose = any(w.lower() in ("-v", "/v") for w in words)
    unknown = [w for w in words if w.lower() not in ("-v", "/v")]
    if unknown:
        raise ExtensionFailed(f"!analyze: unknown option {unknown[0]} (use !analyze or "
                              f"!analyze -v)")
    code_number, params = _bugcheck_data(target)
    if code_number:
        lines, row = _bugcheck_report(target, code_number, params, verbose)
    else:
        lines, row = _exception_report(target, _LAST_STOP.get(target), verbose)
    target.row(**row)
    target.write("\n".join(lines) + "\n")
