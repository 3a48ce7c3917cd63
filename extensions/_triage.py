"""Triage for !analyze: which frame faulted, which module to follow up, and a short
reasoned guess at the cause.

What it does: ``locate`` finds the faulting instruction (the bug check parameter that
holds it, or the first stack frame below the bug check and trap machinery) and the
module to follow up (that frame's, or the first driver below it when the kernel
faulted on a driver's behalf). ``bugcheck_cause`` and ``stop_cause`` say in a few
sentences what most likely happened, from the parameters, the stack and what the
target's memory shows now: for 0xA/0xD1/0xC5 whether the referenced address is mapped
at all; for pool bug checks the block, as ``!pool`` shows it; for 0xE2 that the crash
was made on purpose; for a stop that is no bug check, a break-in, a hard-coded
breakpoint and its caller, a debugger breakpoint or an exception.
What it does not do: print, or read the bug check data (analyze.py does both).

Not an extension itself (the leading underscore keeps the loader away).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdcon.api import Target

from ._bugcodes import EXCEPTION_NAMES, BugCode, access_kind, subtype
from ._ntobjects import irql_name

__all__ = ["Frame", "Place", "locate", "module_of", "bare", "is_machinery",
           "bugcheck_cause", "stop_cause", "SYSTEM_IMAGES"]

SYSTEM_IMAGES = ("nt", "hal", "kdcom")
# Kernel routines that raise, dispatch or report a bug check or a trap: the faulting
# code is below them on the stack.
_MACHINERY = ("DbgBreakPoint", "DbgBreakPointWithStatus", "RtlpBreakWithStatusInstruction",
              "KeBugCheck", "KeBugCheckEx", "KeBugCheck2", "KiBugCheckDispatch",
              "KiPageFault", "KiGeneralProtectionFault", "KiDivideErrorFault",
              "KiInvalidOpcodeFault", "KiUnexpectedInterrupt", "KiDoubleFaultAbort",
              "KiDispatchException", "KiDispatchFault", "KiExceptionDispatch",
              "KiRaiseException", "RtlRaiseException", "RtlRaiseStatus", "ExRaiseStatus",
              "KiBreakpointTrap", "RtlAssert")
_BREAKIN_ROUTINES = ("nt!DbgBreakPointWithStatus", "nt!RtlpBreakWithStatusInstruction")
_HARDCODED_BREAKS = ("nt!DbgBreakPoint",)
_VERBS = {"READ": "read", "WRITE": "wrote", "EXECUTE": "executed"}
_BREAKPOINT = 0x80000003
_SINGLE_STEP = 0x80000004
_ACCESS_VIOLATION = 0xC0000005
_KMODE_EXCEPTION_NOT_HANDLED = 0x1E
# Which parameter of a pool bug check names the block (1-4), per subtype; a header
# address is 16 bytes before its block, and !pool finds the block from either.
_POOL_BLOCK_PARAM = {
    0xC2: {0x01: 2, 0x02: 2, 0x04: 2, 0x06: 3, 0x07: 4, 0x09: 4, 0x0A: 2, 0x0B: 2, 0x0C: 2,
           0x0D: 2, 0x40: 2, 0x41: 2, 0x42: 2, 0x43: 2, 0x44: 2, 0x46: 2, 0x47: 2, 0x48: 2,
           0x50: 2, 0x60: 2, 0x99: 2},
    0x19: {0x2: 2, 0x3: 2, 0x5: 2, 0x6: 4, 0x7: 4, 0x8: 4, 0x9: 4, 0xA: 2, 0x20: 2,
           0x21: 2, 0x22: 2},
}
_TRAPS = {0x0: "a divide error", 0x4: "an overflow trap", 0x5: "a bound-range fault",
          0x6: "an invalid opcode", 0x8: "a double fault", 0xA: "an invalid TSS",
          0xB: "a segment-not-present fault", 0xC: "a stack-segment fault",
          0xD: "a general protection fault"}


@dataclass
class Frame:
    index: int
    ip: int
    name: str          # module!function+0xoff, or the address


@dataclass
class Place:
    """Where the fault was, and what to follow up."""

    ip: int | None
    frame: Frame | None
    module: Any            # the module to follow up (name, image_name, timestamp)
    symbol: str            # module!function+off in !analyze's form (no 0x)


def module_of(target: Target, address: int) -> Any:
    for module in target.modules():
        base, size = getattr(module, "base", 0), getattr(module, "size", 0)
        if base <= address < base + size:
            return module
    return None


def bare(name: str) -> str:
    """``mod!func+0x1c`` as !analyze writes it: ``mod!func+1c``."""
    return name.replace("+0x", "+")


def _routine(name: str) -> str:
    return name.split("+", 1)[0]


def is_machinery(name: str) -> bool:
    module, _, routine = _routine(name).partition("!")
    return module == "nt" and routine in _MACHINERY


def locate(target: Target, code: BugCode, params: tuple[int, ...],
           frames: list[Frame]) -> Place:
    """The faulting instruction, its frame and the module to follow up."""
    ip = params[code.ip - 1] if code.ip and params[code.ip - 1] else None
    if ip is not None:
        start = next((i for i, f in enumerate(frames) if f.ip == ip), None)
    else:
        start = next((i for i, f in enumerate(frames) if not is_machinery(f.name)), None)
        if start is None:
            # Nothing below the machinery (a crash the debugger asked for): the bug
            # check call itself.
            start = next((i for i, f in enumerate(frames)
                          if _routine(f.name).startswith("nt!KeBugCheck")), None)
        ip = frames[start].ip if start is not None else None
    frame = frames[start] if start is not None else None
    module = module_of(target, ip) if ip is not None else None
    if module is not None and module.name in SYSTEM_IMAGES and start is not None:
        # The kernel faulted on someone's behalf: follow the first driver below.
        for below in frames[start + 1:]:
            candidate = module_of(target, below.ip)
            if candidate is not None and candidate.name not in SYSTEM_IMAGES:
                module, frame = candidate, below
                break
    at = frame.ip if frame is not None else ip
    name = target.name_for(at) if at is not None else None
    return Place(ip=ip, frame=frame, module=module,
                 symbol=bare(name) if name else (f"{at:x}" if at is not None else "unknown"))


# -- causes ---------------------------------------------------------------------------------------


def _where(target: Target, address: int | None) -> str:
    if address is None:
        return "code the stack does not show"
    return target.name_for(address) or target.format_address(address)


def _mapped(target: Target, address: int) -> bool:
    return len(target.read(address, 1)) == 1


def _driver(place: Place) -> str:
    if place.module is None:
        return "an unknown module"
    return getattr(place.module, "image_name", place.module.name)


def _irql_access_cause(target: Target, code_number: int, code: BugCode,
                       params: tuple[int, ...], place: Place) -> list[str]:
    address, irql, _, ip = params
    verb = _VERBS[access_kind(code, params)]
    who = _where(target, ip)
    sentences = [f"{who} {verb} {target.format_address(address)} at IRQL {irql:x} "
                 f"({irql_name(irql)}), where the memory manager cannot serve a page "
                 f"fault: any access to pageable or invalid memory there stops the system."]
    if irql < 2:
        sentences.append("The IRQL was below DISPATCH_LEVEL, so the address itself is "
                         "the problem: it is not valid kernel memory.")
    elif _mapped(target, address):
        sentences.append("The address is mapped now, so the memory was most likely "
                         "pageable and paged out when it was touched: touch it only below "
                         "DISPATCH_LEVEL, or allocate it from nonpaged pool.")
    else:
        sentences.append("No page maps the address even now, so this is a bad pointer "
                         "(freed, never initialised, or computed wrongly) rather than "
                         "pageable memory touched at too high an IRQL.")
    if code_number == 0xC5:
        sentences.append("The kernel faulted while walking the pool: a driver has "
                         "corrupted it, most often by writing past the end of a block.")
    elif place.module is not None and place.module.name not in SYSTEM_IMAGES:
        sentences.append(f"The faulting code is in {_driver(place)}: start there.")
    elif place.module is not None:
        sentences.append("The faulting code is in the kernel, which usually means a driver "
                         "passed it a bad pointer or called it at the wrong IRQL.")
    return sentences


def _pool_cause(target: Target, code_number: int, code: BugCode, params: tuple[int, ...],
                place: Place) -> list[str]:
    detail = subtype(code, params[0])
    what = detail[3] if detail else f"type {params[0]:x}, which kdcon does not describe"
    sentences = [f"Pool corruption or misuse: {what}."]
    which = _POOL_BLOCK_PARAM.get(code_number, {}).get(params[0])
    block = params[which - 1] if which else 0
    if block:
        shown = target.run(f"!pool 0x{block:x}")
        marked = next((line.rstrip() for line in shown.splitlines()
                       if line.startswith("*")), None) if shown.ok else None
        if marked:
            sentences += ["The block, as !pool shows it (marked *):", f"  {marked}"]
        else:
            sentences.append(f"The block is at {target.format_address(block)} "
                             f"(!pool does not show it).")
    if place.module is not None and place.module.name not in SYSTEM_IMAGES:
        sentences.append(f"The pool call came from {place.symbol} in {_driver(place)}.")
    if code_number == 0x19:
        sentences.append("A damaged header is usually the work of the block before it "
                         "being overrun, not of the caller: enable Special Pool or Driver "
                         "Verifier for the suspect driver.")
    return sentences


def _exception_cause(target: Target, code_number: int, code: BugCode,
                     params: tuple[int, ...], place: Place) -> list[str]:
    exception = params[code.exception - 1] & 0xFFFFFFFF
    name = EXCEPTION_NAMES.get(exception, f"exception {exception:08x}")
    sentences = [f"{name} ({exception:08x}) in {_where(target, place.ip)}, and no "
                 f"exception handler took it."]
    # KMODE_EXCEPTION_NOT_HANDLED carries the exception's own two parameters: for an
    # access violation, the kind of access and the address.
    if exception == _ACCESS_VIOLATION and code_number == _KMODE_EXCEPTION_NOT_HANDLED:
        verb = "write to" if params[2] == 1 else "execute" if params[2] == 8 else "read"
        sentences.append(f"The code tried to {verb} {target.format_address(params[3])}.")
    if place.module is not None and place.module.name not in SYSTEM_IMAGES:
        sentences.append(f"The faulting code is in {_driver(place)}.")
    return sentences


def bugcheck_cause(target: Target, code_number: int, code: BugCode, params: tuple[int, ...],
                   place: Place, frames: list[Frame]) -> list[str]:
    """A few sentences on what most likely caused the bug check."""
    if code_number in (0x0A, 0xD1, 0xC5):
        return _irql_access_cause(target, code_number, code, params, place)
    if code_number in _POOL_BLOCK_PARAM:
        return _pool_cause(target, code_number, code, params, place)
    if code_number == 0xE2:
        return ["The machine was crashed on purpose (the kernel debugger's .crash, or a "
                "keyboard or NMI crash request): no code is at fault.",
                "What the system was doing shows in the stack and in !process 0 7."]
    if code.exception:
        return _exception_cause(target, code_number, code, params, place)
    if code_number == 0x50:
        verb = _VERBS[access_kind(code, params)]
        return [f"{_where(target, place.ip)} {verb} {target.format_address(params[0])}, "
                f"which no page maps: a bad pointer or memory used after it was freed.",
                f"The faulting code is in {_driver(place)}."]
    if code_number == 0x7F:
        trap = _TRAPS.get(params[0], f"trap {params[0]:x}")
        extra = (" A double fault is most often a kernel stack overflow: compare the stack "
                 "pointer with the thread's stack limit (!thread)." if params[0] == 8 else "")
        return [f"The processor raised {trap} in kernel mode that the kernel could not "
                f"handle.{extra}"]
    if code_number == 0x35:
        return [f"{place.symbol} passed the IRP at {target.format_address(params[0])} on "
                f"with no stack location left: it was allocated with too small a StackSize, "
                f"or passed on once too often."]
    if code_number == 0x0F:
        return [f"The thread acquired the spin lock at {target.format_address(params[0])} "
                f"again while it already held it (in {place.symbol})."]
    name = code.name
    if place.module is not None:
        return [f"{name}: the first frame below the bug check machinery is {place.symbol} "
                f"in {_driver(place)}."]
    return [f"{name}: the stack shows no code below the bug check machinery."]


def stop_cause(target: Target, stop: dict[str, Any] | None, pc: int,
               frames: list[Frame]) -> tuple[list[str], int | None, bool]:
    """(sentences, exception code, whether code on the stack is to blame) for a stop
    that is not a bug check."""
    if stop is None:
        return (["The stop this is about came before !analyze was loaded, so its exception "
                 "record is not known: the instruction and stack below are where the target "
                 "is now."], None, False)
    code = stop.get("code")
    where = _routine(stop.get("symbol") or target.name_for(pc) or "")
    if stop.get("reason") == "breakpoint":
        return ([f"Breakpoint {stop.get('breakpoint')} (one of the debugger's) was hit at "
                 f"{_where(target, pc)}. Nothing is wrong; g resumes."], code, False)
    if code == _BREAKPOINT and where in _BREAKIN_ROUTINES:
        return (["The debugger broke in (a break-in request: Ctrl+C, or the initial break "
                 "when the debugger attached). Nothing is wrong; g resumes."], code, False)
    if code == _BREAKPOINT and where in _HARDCODED_BREAKS:
        caller = next((f for f in frames if not is_machinery(f.name)), None)
        who = caller.name if caller is not None else "code the stack does not show"
        if any(_routine(f.name) == "nt!RtlAssert" for f in frames):
            return ([f"An assertion failed in {who} and its prompt was answered b "
                     f"(break): the expression and the source line are in the target's "
                     f"output above. g goes on as if it had been ignored."], code, True)
        return ([f"A hard-coded breakpoint: {who} called {where}, which stops in the "
                 f"debugger whenever one is attached. g resumes after it."], code, True)
    if code == _BREAKPOINT:
        return ([f"A break instruction (int 3) in {_where(target, pc)} that is not one of "
                 f"the debugger's breakpoints. g resumes after it."], code, True)
    if code == _SINGLE_STEP:
        return ([f"A single step (or a processor breakpoint) stopped at "
                 f"{_where(target, pc)}."], code, False)
    if stop.get("reason") in ("load", "unload"):
        return ([f"The target stopped for a module {stop.get('reason')} event "
                 f"({stop.get('module')}), as sxe ld/ud asked."], None, False)
    if code is None:
        return ([f"The target stopped at {_where(target, pc)} for no exception."], None,
                False)
    name = EXCEPTION_NAMES.get(code, f"exception {code:08x}")
    chance = "first" if stop.get("first_chance", True) else "second"
    tail = (" The kernel offers the debugger the first chance before any handler runs: g "
            "lets the handlers try (gn: as unhandled)." if chance == "first" else
            " No handler took it: it will become a bug check when the target resumes.")
    return ([f"{name} ({code:08x}, {chance} chance) at {_where(target, pc)}.{tail}"], code,
            True)
