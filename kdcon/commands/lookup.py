"""Symbols: lm, x, ln, .reload, .sympath, .symfix, !sym, !lmi.

Loading is lazy as in WinDbg: ``.reload`` rebuilds the module list and forgets
loaded symbols, ``.reload /f`` loads them now, ``.reload module=address,size`` adds
a module the list does not name. Text is rendered by ``kdcon.render.symbols``; with
``.lines`` on, ``ln`` starts with the address's ``[file @ line]``.
"""

from __future__ import annotations

import fnmatch
import os

from kdcon.symbols.http import HttpOptions
from kdcon.symbols.module import SymbolState
from kdcon.symbols.path import SymbolPath

from ..argtypes import Args
from ..console import CommandContext
from ..errors import CommandError
from ..output import printable
from ..progress import Progress
from ..registry import Category, command
from ..render.clock import stamp_date
from ..render.symbols import render_lm_row, render_ln, render_x
from .source import source_suffix

_S = Category.SYMBOLS

# A private mirror of Microsoft's symbol server (an air-gapped site's) for .symfix.
SYMBOL_SERVER_VARIABLE = "KDCON_SYMBOL_SERVER"
# The debug directory entry a /Brepro link writes: TimeDateStamp is then a hash.
IMAGE_DEBUG_TYPE_REPRO = 16


def parse_path(ctx: CommandContext, text: str) -> SymbolPath:
    """A symbol path whose downloads Ctrl+C (the target's cancel event) can stop."""
    cancel = ctx.console.target.cancel_event if ctx.console.target is not None else None
    options = HttpOptions(cancelled=cancel.is_set if cancel is not None else None)
    return SymbolPath.parse(text, http=options)


def _reader(ctx: CommandContext):
    def read(address: int, size: int) -> bytes | None:
        return ctx.session.read_virtual(address, size) or None
    return read


@command("lm", category=_S, usage="lm [v] [o] [l] [m pattern]", needs_halt=False,
         suffixes="voldm1")
def lm(ctx: CommandContext, args: Args) -> None:
    """List the loaded modules with their symbol state."""
    flags, pattern = "", None
    words = args.rest().split()
    glued = args.text[:1].isalpha()
    if glued and words:
        first = words.pop(0)
        flags += first.rstrip("mM")
        if first[-1:] in "mM":
            words.insert(0, "m")
    while words:
        word = words.pop(0)
        if word.lower() == "m" and words:
            pattern = words.pop(0)
        elif set(word.lower()) <= set("vold1"):
            flags += word.lower()
        else:
            raise CommandError(f"Syntax error at '{word}'")
    symbols = ctx.session.symbols
    rows = symbols.lm_rows()
    ctx.out.line("start             end                 module name")
    for row in rows:
        if pattern and not fnmatch.fnmatch(row.name.lower(), pattern.lower()):
            continue
        if "l" in flags and row.state == "deferred":
            continue
        ctx.out.line(printable(render_lm_row(row, ctx.session.pointer_size), newlines=False))
        ctx.out.row(name=row.name, base=row.base, end=row.end, state=row.state,
                    symbol_file=row.symbol_file)
        if "v" in flags:
            module = symbols.module(row.name)
            if module is not None:
                info = next((m for m in ctx.session.modules if m.base == module.base), None)
                path = info.path if info is not None else ""
                ctx.out.lines([printable(line, newlines=False)
                               for line in _verbose_lines(module, path)])


def _verbose_lines(module, path: str = "") -> list[str]:
    """``lmv``'s lines under a module's row, in WinDbg's order; a fact the console does
    not know (the image's full path for a module the list named, a version resource,
    a checksum nothing reported) is left out. WinDbg's ``Browse all global symbols``
    line is a link and has no place in a console."""
    image = module.image
    lines = []
    if image is not None and module.state is not SymbolState.DEFERRED:
        lines.append(f"    Loaded symbol image file: {module.image_name}")
        mapped = _mapped_image_file(module)
        if mapped:
            lines.append(f"    Mapped memory image file: {mapped}")
    if path:
        lines.append(f"    Image path: {path}")
    lines.append(f"    Image name: {module.image_name}")
    stamp = image.identity.timestamp if image is not None else module.timestamp
    repro = image is not None and any(
        entry.type == IMAGE_DEBUG_TYPE_REPRO for entry in image.debug_entries)
    if repro:
        lines.append("    Image was built with /Brepro flag.")
    if stamp and repro:
        lines.append(f"    Timestamp:        {stamp:08X} (This is a reproducible build "
                     "file hash, not a timestamp)")
    elif stamp:
        lines.append(f"    Timestamp:        {stamp_date(stamp)}")
    checksum = image.identity.checksum if image is not None else module.checksum
    if image is not None or checksum:
        lines.append(f"    CheckSum:         {checksum:08X}")
    lines.append(f"    ImageSize:        {module.size:08X}")
    return lines


def _mapped_image_file(module) -> str | None:
    """The image file on the symbol path whose headers the module uses, if one was."""
    for name, found in reversed(module.searches):
        if (name == module.image_name and found.found and found.match is not None
                and found.match.letter in ("", "C")):
            return found.path
    return None


@command("x", category=_S, usage="x [/v] [/t] [module!]pattern")
def x(ctx: CommandContext, args: Args) -> None:
    """Show the symbols that match a pattern (wildcards * and ?)."""
    options = args.options("v", "t", "0", "1", "2", "D", "a", "n", "z")
    pattern = args.rest()
    if not pattern:
        raise CommandError("Syntax error: x takes module!pattern")
    matches = ctx.session.symbols.match(pattern)
    ctx.out.write(render_x(matches, ctx.session.pointer_size, _reader(ctx),
                           verbose="v" in options, types="t" in options))
    for match in matches:
        ctx.out.row(address=match.address, name=match.qualified)


@command("ln", category=_S, usage="ln address")
def ln(ctx: CommandContext, args: Args) -> None:
    """List the symbols nearest an address."""
    address = args.expression() if not args.empty() else ctx.session.registers.get("rip")
    args.expect_end()
    near = ctx.session.symbols.near(address)
    text = render_ln(near, ctx.session.pointer_size, _reader(ctx))
    # With line support on, kd puts the address's [file @ line] before the first pair.
    suffix = source_suffix(ctx.console, address) if text else ""
    ctx.out.write(f"{suffix[1:]} {text}" if suffix else text)


@command(".reload", category=_S, usage=".reload [/f] [/i] [/u] [/unl] [module[=address,size]]")
def reload(ctx: CommandContext, args: Args) -> None:
    """Rebuild the module list; /f loads symbols now, /u unloads, module=addr,size adds one."""
    options = args.options("f", "i", "u", "unl", "n", "s", "v", "w", "l", "user", "d", "o")
    session = ctx.session
    target = args.rest()
    if "u" in options:
        if target:
            module = session.symbols.module(target)
            if module is None:
                raise CommandError(f"Unable to find module '{target}'")
            module.unload()
        else:
            session.symbols.reload()
        return
    if target and "=" in target:
        name, _, where = target.partition("=")
        parts = [p for p in where.split(",") if p]
        base = ctx.evaluate(parts[0])
        size = ctx.evaluate(parts[1]) if len(parts) > 1 else 0x1000
        session.symbols.add_module(name, base, size)
        if "f" in options or "i" in options:
            session.symbols.module(name.rsplit(".", 1)[0]).load(force="i" in options)
        return
    if not target:
        session.symbols.reload()
        session.reload_module_list()
        ctx.out.line("Loading Kernel Symbols")
        ctx.out.line("Loading unloaded module list")
    modules = [session.symbols.module(target)] if target else session.symbols.modules()
    if target and modules[0] is None:
        raise CommandError(f"Unable to find module '{target}'")
    if "f" in options or "i" in options:
        with Progress(ctx.console, ".reload", len(modules)) as progress:
            for done, module in enumerate(modules):
                progress.update(done)
                module.load(force="i" in options)


@command(".sympath", category=_S, usage=".sympath[+] [path]", needs_halt=False,
         aliases=(".sympath+",))
def sympath(ctx: CommandContext, args: Args) -> None:
    """Show or set the symbol path (.sympath+ appends); .reload loads with it."""
    symbols = ctx.session.symbols
    text = args.rest()
    append = ctx.text.startswith(".sympath+")
    if text:
        symbols.set_path(parse_path(ctx, f"{symbols.path};{text}" if append and str(symbols.path)
                                    else text))
    ctx.out.line(f"Symbol search path is: {symbols.path or '*** Invalid ***'}")
    ctx.out.line(f"Expanded Symbol search path is: {str(symbols.path).lower()}")


@command(".symfix", category=_S, usage=".symfix[+] [cache]", needs_halt=False,
         aliases=(".symfix+",))
def symfix(ctx: CommandContext, args: Args) -> None:
    """Set the symbol path to Microsoft's symbol server behind a local cache.

    KDCON_SYMBOL_SERVER in the environment names a mirror to use instead."""
    from kdcon.symbols import http

    cache = args.rest() or None
    server = http.symfix_path(cache)
    mirror = os.environ.get(SYMBOL_SERVER_VARIABLE)
    if mirror:
        server = server.replace(http.MICROSOFT_SYMBOL_SERVER, mirror.rstrip("/"))
    symbols = ctx.session.symbols
    text = f"{symbols.path};{server}" if ctx.text.startswith(".symfix+") and str(symbols.path) \
        else server
    symbols.set_path(parse_path(ctx, text))
    ctx.out.line(f"Symbol search path is: {symbols.path}")


@command("!sym", category=_S, usage="!sym noisy|quiet", needs_halt=False)
def sym(ctx: CommandContext, args: Args) -> None:
    """Say (noisy) or not (quiet) how each symbol file is searched for."""
    import logging

    word = args.rest().lower()
    if word not in ("noisy", "quiet", ""):
        raise CommandError("!sym takes noisy or quiet")
    if word:
        logging.getLogger("kdcon.symbols").setLevel(logging.INFO if word == "noisy" else logging.ERROR)
        ctx.console.state.values["sym_noisy"] = word == "noisy"
    ctx.out.line(f"{'noisy' if ctx.console.state.values.get('sym_noisy') else 'quiet'} mode - "
                 f"symbol prompts on")


@command("!lmi", category=_S, usage="!lmi module")
def lmi(ctx: CommandContext, args: Args) -> None:
    """Show what is known of one module: image, identity and symbol file."""
    name = args.rest()
    module = ctx.session.symbols.module(name) if name else None
    if module is None:
        raise CommandError(f"Unable to find module '{name}'")
    fmt = ctx.console.format_address
    ctx.out.line(f"Loaded Module Info: [{printable(module.name, newlines=False)}]")
    ctx.out.line(f"         Module: {printable(module.name, newlines=False)}")
    ctx.out.line(f"   Base Address: {fmt(module.base)}")
    ctx.out.line(f"     Image Name: {printable(module.image_name, newlines=False)}")
    ctx.out.line(f"      Time Stamp: {module.timestamp:08x}")
    ctx.out.line(f"           Size: {module.size:x}")
    ctx.out.line(f"    Symbol Type: {module.state.value.upper()}")
    ctx.out.line(f"    Symbol File: {module.symbol_file or ''}")
