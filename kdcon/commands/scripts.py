"""Command programs: control flow, script files, .printf and gc.

The control-flow tokens (``.if``/``.elsif``/``.else``, ``.for``, ``.while``, ``.do``,
``.foreach``, ``.block``, ``.catch``, ``.break``, ``.continue``, ``.leave``) behave as
their C counterparts, with every conditional or repeated block in braces and every
condition a MASM expression; the interpreter's rules (when aliases are replaced, what
an error ends, what a resume ends) are in kdcon/scripting.py. ``$<`` and ``$$<`` run
a script file line by line, ``$><`` and ``$$><`` fold it into one block, and all four
echo what they run; ``$$>a<`` passes arguments (``${$arg1}``..., ``${$n}``) and does
not echo (aliases: commands/aliases.py). ``gc`` resumes from a conditional
breakpoint (here: as ``g``). Loops stop at the ``--timeout`` deadline and on Ctrl+C.
Spec: WinDbg's pages of each token, ".printf",
"$<, $><, $$<, $$><, $$>a< (Run Script File)", "gc".
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..argtypes import Args, unquote
from ..console import CommandContext
from ..errors import CommandError
from ..printf import c_escapes, format_printf
from ..registry import Category, command
from ..scripting import (BlockLeave, Interpreter, LoopBreak, LoopContinue,
                         ProgramAbort, read_script, replace_variable, skip_gap, split_top,
                         take_group)

_M = Category.META
_PRINTF_COLOURS = ("od", "oD", "oe", "on", "op", "oP", "os", "ov", "ow")


def _interpreter(ctx: CommandContext) -> Interpreter:
    return ctx.console.scripts


def _condition(ctx: CommandContext, text: str) -> bool:
    if not text.strip():
        raise CommandError("Numeric expression missing from '<EOL>'")
    return ctx.evaluate(text) != 0


def _expect_end(text: str, pos: int) -> None:
    rest = text[skip_gap(text, pos):].strip()
    if rest:
        raise CommandError(f"Syntax error at '{rest}'")


def _word_at(text: str, pos: int) -> tuple[str, int]:
    pos = skip_gap(text, pos)
    end = pos
    while end < len(text) and not text[end].isspace() and text[end] not in "({;":
        end += 1
    return text[pos:end], end


@contextmanager
def _loop(ctx: CommandContext) -> Iterator[None]:
    interpreter = _interpreter(ctx)
    interpreter.loops += 1
    try:
        yield
    finally:
        interpreter.loops -= 1


def _round(ctx: CommandContext, body: str) -> bool:
    """One pass through a loop's body; False when ``.break`` ends the loop."""
    executor, target = ctx.console.executor, ctx.console.target
    deadline = getattr(executor, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        ctx.console.state.values["timed_out"] = True
        raise CommandError("The run passed its --timeout in a loop; the loop stops")
    if target is not None and target.cancelled():
        # Ctrl+C at the interactive prompt: a loop printing nothing stops too.
        raise CommandError("The loop was cancelled (Ctrl+C).")
    try:
        _interpreter(ctx).run_block(body)
    except LoopContinue:
        pass
    except LoopBreak:
        return False
    return True


def capture_commands(ctx: CommandContext, commands: str) -> str:
    """What ``commands`` print, kept from the screen and the log (``.foreach``, ``as /c``).
    An error in them is shown and ends the program."""
    console, out = ctx.console, ctx.out
    first = len(console.results)
    failed = False
    out.begin_capture()
    try:
        _interpreter(ctx).run_block(commands)
    except ProgramAbort:
        failed = True
    finally:
        text = out.end_capture()
    if console.json_sink is not None:
        # JSON mode keeps each command's text in its own result.
        text = "".join(result.text for result in console.results[first:])
    if failed:
        out.line(_interpreter(ctx).last_error or "The commands failed")
        raise ProgramAbort()
    return text


# -- conditions and blocks -----------------------------------------------------------------


@command(".if", category=_M, needs_halt=False,
         usage=".if (condition) { cmds } [.elsif (condition) { cmds }] [.else { cmds }]")
def if_(ctx: CommandContext, args: Args) -> None:
    """Run a block when a condition is not zero; .elsif and .else may follow it."""
    text = args.rest()
    branches: list[tuple[str | None, str]] = []
    condition, pos = take_group(text, 0, "(", ".if: a condition in parentheses")
    body, pos = take_group(text, pos, "{", ".if: a { block }")
    branches.append((condition, body))
    while True:
        word, after = _word_at(text, pos)
        if not word:
            break
        if word.lower() == ".elsif" and branches[-1][0] is not None:
            condition, after = take_group(text, after, "(", ".elsif: a condition in parentheses")
            body, pos = take_group(text, after, "{", ".elsif: a { block }")
            branches.append((condition, body))
        elif word.lower() == ".else" and branches[-1][0] is not None:
            body, pos = take_group(text, after, "{", ".else: a { block }")
            branches.append((None, body))
        else:
            raise CommandError(f"Syntax error at '{text[skip_gap(text, pos):].strip()}'")
    for condition, body in branches:
        if condition is None or _condition(ctx, condition):
            _interpreter(ctx).run_block(body)
            return


@command(".elsif", category=_M, usage=".if (c) { } .elsif (condition) { cmds }", needs_halt=False)
def elsif(ctx: CommandContext, args: Args) -> None:
    """Part of .if: a block run when the conditions before it did not hold and its own does."""
    raise CommandError(".elsif without an .if before it")


@command(".else", category=_M, usage=".if (c) { } .else { cmds }", needs_halt=False)
def else_(ctx: CommandContext, args: Args) -> None:
    """Part of .if: the block run when no condition before it held."""
    raise CommandError(".else without an .if before it")


@command(".block", category=_M, usage=".block { cmds }", needs_halt=False)
def block(ctx: CommandContext, args: Args) -> None:
    """Run a block: aliases in it are replaced as it is entered."""
    text = args.rest()
    body, pos = take_group(text, 0, "{", ".block: a { block }")
    _expect_end(text, pos)
    _interpreter(ctx).run_block(body)


@command(".catch", category=_M, usage=".catch { cmds }", needs_halt=False)
def catch(ctx: CommandContext, args: Args) -> None:
    """Run a block whose errors end only the block: the program goes on after it."""
    text = args.rest()
    body, pos = take_group(text, 0, "{", ".catch: a { block }")
    _expect_end(text, pos)
    interpreter, console = _interpreter(ctx), ctx.console
    failures = console.failures
    interpreter.catches += 1
    try:
        interpreter.run_block(body)
    except ProgramAbort:
        # The error line is shown; a caught error does not fail the batch.
        console.failures = failures
    except BlockLeave:
        pass
    finally:
        interpreter.catches -= 1


@command(".leave", category=_M, usage=".leave", needs_halt=False)
def leave(ctx: CommandContext, args: Args) -> None:
    """Leave the .catch block it is in."""
    args.expect_end()
    if not _interpreter(ctx).catches:
        raise CommandError(".leave outside a .catch block")
    raise BlockLeave()


@command(".break", category=_M, usage=".break", needs_halt=False)
def break_(ctx: CommandContext, args: Args) -> None:
    """Leave the innermost .for, .while, .do or .foreach loop."""
    args.expect_end()
    if not _interpreter(ctx).loops:
        raise CommandError(".break outside a loop")
    raise LoopBreak()


@command(".continue", category=_M, usage=".continue", needs_halt=False)
def continue_(ctx: CommandContext, args: Args) -> None:
    """Go on with the next round of the innermost loop."""
    args.expect_end()
    if not _interpreter(ctx).loops:
        raise CommandError(".continue outside a loop")
    raise LoopContinue()


# -- loops ------------------------------------------------------------------------------------


@command(".for", category=_M, usage=".for (init cmd; condition; step cmds) { cmds }",
         needs_halt=False)
def for_(ctx: CommandContext, args: Args) -> None:
    """Loop as C's for; several step commands are separated by ';'."""
    text = args.rest()
    header, pos = take_group(text, 0, "(", ".for: (init; condition; step)")
    body, pos = take_group(text, pos, "{", ".for: a { block }")
    _expect_end(text, pos)
    parts = split_top(header, ";")
    if len(parts) < 3:
        raise CommandError(".for needs (initial command; condition; step commands)")
    start, condition, step = parts[0], parts[1], ";".join(parts[2:])
    interpreter = _interpreter(ctx)
    interpreter.run_block(start)
    with _loop(ctx):
        while not condition.strip() or _condition(ctx, condition):
            if not _round(ctx, body):
                break
            interpreter.run_block(step)


@command(".while", category=_M, usage=".while (condition) { cmds }", needs_halt=False)
def while_(ctx: CommandContext, args: Args) -> None:
    """Run a block as long as a condition is not zero."""
    text = args.rest()
    condition, pos = take_group(text, 0, "(", ".while: a condition in parentheses")
    body, pos = take_group(text, pos, "{", ".while: a { block }")
    _expect_end(text, pos)
    with _loop(ctx):
        while _condition(ctx, condition):
            if not _round(ctx, body):
                break


@command(".do", category=_M, usage=".do { cmds } (condition)", needs_halt=False)
def do(ctx: CommandContext, args: Args) -> None:
    """Run a block, then again as long as a condition is not zero."""
    text = args.rest()
    body, pos = take_group(text, 0, "{", ".do: a { block }")
    condition, pos = take_group(text, pos, "(", ".do: a condition in parentheses")
    _expect_end(text, pos)
    with _loop(ctx):
        while _round(ctx, body) and _condition(ctx, condition):
            pass


@command(".foreach", category=_M, needs_halt=False,
         usage='.foreach [/pS n] [/ps n] (var { cmds }) { cmds }  |  '
               '.foreach /s (var "text") { cmds }  |  .foreach /f (var "file") { cmds }')
def foreach(ctx: CommandContext, args: Args) -> None:
    """Run a block for each word of commands' output, of a string (/s) or of a file (/f).

    The variable is replaced where it stands as a word, and in ${var}. /pS n skips
    the first n words, /ps n skips n words after each one used.
    """
    text = args.rest()
    source, first, every, pos = None, 0, 0, 0
    while True:
        word, after = _word_at(text, pos)
        if word in ("/s", "/f"):
            source, pos = word[1], after
        elif word in ("/pS", "/ps"):
            count, pos = _word_at(text, after)
            if not count:
                raise CommandError(f"Numeric expression missing from '{word}'")
            value = ctx.evaluate(count)
            first, every = (value, every) if word == "/pS" else (first, value)
        elif word.startswith("/"):
            raise CommandError(f"Unknown option '{word}' of .foreach")
        else:
            break
    header, pos = take_group(text, pos, "(", ".foreach: (variable input)")
    body, pos = take_group(text, pos, "{", ".foreach: a { block }")
    _expect_end(text, pos)
    parts = header.strip().split(None, 1)
    if len(parts) < 2:
        raise CommandError(".foreach needs (variable {commands}), (variable \"text\") "
                           "or (variable \"file\")")
    variable, given = parts
    words = _foreach_input(ctx, source, given.strip()).split()
    with _loop(ctx):
        for word in words[first::every + 1]:
            if not _round(ctx, replace_variable(body, variable, word)):
                break


def _foreach_input(ctx: CommandContext, source: str | None, given: str) -> str:
    if source is None:
        commands, pos = take_group(given, 0, "{", ".foreach: { commands } after the variable")
        _expect_end(given, pos)
        return capture_commands(ctx, commands)
    if not (len(given) >= 2 and given[0] == given[-1] == '"'):
        raise CommandError(f".foreach /{source} needs its {'text' if source == 's' else 'file name'} "
                           "in quotes")
    value = unquote(given[1:-1])
    return value if source == "s" else read_script(value)


# -- output -------------------------------------------------------------------------------------


@command(".printf", category=_M, usage='.printf [/D] "format" [, argument, ...]',
         needs_halt=False)
def printf(ctx: CommandContext, args: Args) -> None:
    """Print a C format: %p %x %d %u %s %y %ma %mu %msa %msu %N and C's others.

    Numbers are 32 bits unless a size says otherwise (%I64x); %p is a target pointer,
    %y a symbol, %ma/%mu strings in target memory, %msa/%msu ANSI/UNICODE_STRINGs.
    Each argument is an expression, or a quoted string for %s. /D strips DML tags.
    """
    text = args.rest()
    dml = False
    while text.startswith("/"):
        option, _, text = text.partition(" ")
        if option == "/D":
            dml = True
        elif option[1:] not in _PRINTF_COLOURS:
            raise CommandError(f"Unknown option '{option}' of .printf")
        text = text.lstrip()
    fmt, rest = _quoted_format(text)
    arguments: list[int | str] = []
    rest = rest.strip()
    if rest:
        if not rest.startswith(","):
            raise CommandError(f"Syntax error at '{rest}'")
        for part in split_top(rest[1:], ","):
            part = part.strip()
            if not part:
                raise CommandError("Numeric expression missing from '<EOL>'")
            if len(part) >= 2 and part[0] == part[-1] == '"':
                arguments.append(c_escapes(part[1:-1]))
            else:
                arguments.append(ctx.evaluate(part))
    fmt = c_escapes(fmt)
    if dml:
        fmt = html.unescape(re.sub(r"<[^>]*>", "", fmt))
    target = ctx.target
    if target is None:
        from ..target import Target

        target = Target(ctx.console)
    ctx.out.write(format_printf(fmt, arguments, target))


def _quoted_format(text: str) -> tuple[str, str]:
    if not text.startswith('"'):
        raise CommandError(f"A quoted format string is expected at '{text or '<EOL>'}'")
    index = 1
    while index < len(text):
        if text[index] == "\\" and index + 1 < len(text):
            index += 2
            continue
        if text[index] == '"':
            return text[1:index], text[index + 1:]
        index += 1
    raise CommandError(f"Missing closing quote in '{text}'")


# -- script files -------------------------------------------------------------------------------


@command("$<", category=_M, usage="$<file  |  $><file", aliases=("$>",), needs_halt=False)
def run_script_file(ctx: CommandContext, args: Args) -> None:
    """Run a script file (the rest of the line is its name): $< line by line, $>< as one block.

    Both echo each command they run. The name may hold ';', so nothing can follow.
    """
    name = args.rest()
    fold = ctx.text.lstrip().startswith("$>")
    if fold:
        if not name.startswith("<"):
            raise CommandError(f"Syntax error at '{ctx.text.strip()}'")
        name = name[1:].strip()
    if not name:
        raise CommandError("A script file name is missing")
    _interpreter(ctx).run_script(name, fold=fold, echo=True)


@command("$$", category=_M, needs_halt=False,
         usage="$$ comment  |  $$<file  |  $$><file  |  $$>a<file [arg ...]")
def comment_or_script(ctx: CommandContext, args: Args) -> None:
    """A comment up to the next ';', or a script file: $$< by lines, $$>< as one block.

    $$>a<file args runs it as one block with ${$arg1}..${$argN} and ${$n} (the count)
    replaced, and does not echo its commands.
    """
    text = args.remaining().strip()
    interpreter = _interpreter(ctx)
    if text.startswith(">a<"):
        name, arguments = script_call(text[3:])
        interpreter.run_script(name, fold=True, echo=False, arguments=arguments)
    elif text.startswith("><"):
        interpreter.run_script(_script_name(text[2:]), fold=True, echo=True)
    elif text.startswith("<"):
        interpreter.run_script(_script_name(text[1:]), fold=False, echo=True)


def _script_name(text: str) -> str:
    name = text.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
    if not name:
        raise CommandError("A script file name is missing")
    return name


def script_call(text: str) -> tuple[str, list[str]]:
    """``file arg1 "arg two"``: the file name and the arguments (quotes group words)."""
    words = re.findall(r'"([^"]*)"|(\S+)', text)
    items = [quoted or plain for quoted, plain in words]
    if not items or not items[0]:
        raise CommandError("A script file name is missing")
    return items[0], items[1:]


# -- resuming ---------------------------------------------------------------------------------------


@command("gc", category=Category.EXECUTION, usage="gc", resumes=True)
def gc(ctx: CommandContext, args: Args) -> None:
    """Go from a conditional breakpoint: resume as the hit came (here, as g does)."""
    args.expect_end()
    go = ctx.console.registry.get("g")
    if go is None:
        raise CommandError("gc needs the g command")
    go.handler(ctx, args)
