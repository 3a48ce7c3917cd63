"""A live console on the simulated target, for extension tests that change files between
commands: ``Live.run(line)`` returns what that line printed."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from kdcon.app import App
from kdcon.output import Output
from kdcon.tools.simtarget.kernel import IMAGES_DIR
from kdcon.tools.simtarget.loopback import SimTarget


class Live:
    def __init__(self, *, ext_path: Iterable[str | Path] = (), debug: bool = False,
                 flavour: str = "checked") -> None:
        self.sim = SimTarget(seed=0, flavour=flavour, break_on_connect=True)
        self.stream = io.StringIO()
        self.app = App(self.sim.connect(), link_name="kdsim", output=Output(self.stream),
                       symbol_path=f"{IMAGES_DIR};{IMAGES_DIR / flavour}", debug=debug,
                       ext_path=[str(p) for p in ext_path], timeout=60)
        self.startup = self.stream.getvalue()
        self.app.connect()
        self._seen = len(self.stream.getvalue())

    @property
    def console(self):
        return self.app.console

    def run(self, line: str) -> str:
        self.app.run_line(line)
        text = self.stream.getvalue()
        out, self._seen = text[self._seen:], len(text)
        return out

    def ok(self, line: str) -> str:
        before = self.console.failures
        text = self.run(line)
        assert self.console.failures == before, text
        return text

    def fails(self, line: str) -> str:
        before = self.console.failures
        text = self.run(line)
        assert self.console.failures > before, text
        return text

    def close(self) -> None:
        self.app.close()
        self.sim.close()
