"""!reload: the old kd extension form of .reload, with the same options.

    !reload [/f] [/i] [/u] [/unl] [module[=address,size]]

Everything after the name goes to ``.reload`` unchanged: with no argument the module
list is read again and symbols load lazily; ``/f`` loads them now, ``/u`` unloads,
``module=address,size`` adds a module the list does not name. Written against the
extension API only: it runs ``.reload`` with ``target.run`` and passes on its text,
its rows and its failure.
"""

from __future__ import annotations

from kdcon.api import ExtensionFailed, Target, bang, require

require("1.0")


@bang("reload", usage="!reload [/f] [/i] [/u] [/unl] [module[=address,size]]")
def reload(target: Target, args: str) -> None:
    """Rebuild the module list and reload symbols, as .reload does."""
    out = target.run(f".reload {args}".rstrip())
    target.write(out)
    for row in out.rows:
        target.row(**row)
    if not out.ok:
        # .reload has printed why.
        raise ExtensionFailed("")
