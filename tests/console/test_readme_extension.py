"""The README's "Writing an extension" example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

from .transcripts import run_kdcon

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    section = README.read_text(encoding="utf-8").split("## Writing an extension\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_lists_the_modules_as_a_table(tmp_path):
    source = _example()
    assert 15 <= len(source.splitlines()) <= 40
    (tmp_path / "drivers.py").write_text(source, encoding="utf-8")
    text, status = run_kdcon(["--loopback", "--batch", "--ext-path", str(tmp_path),
                              "-c", "!drivers", "-c", "!drivers *.sys", "-c", "!drivers x*"])
    assert status == 1
    listing = text.split("kd> !drivers\n", 1)[1].splitlines()
    assert listing[0].split() == ["Module", "Base", "Size", "Entry"]
    assert listing[1].startswith(f"ntoskrnl.exe   fffff800`01000000  {_kernel_size():x}  ")
    only = text.split("kd> !drivers *.sys\n", 1)[1].splitlines()
    assert only[1].startswith("trackdemo.sys") and only[2].startswith("0: kd>")
    assert text.endswith("kd> !drivers x*\nNo loaded module matches x*\n")


def _kernel_size() -> int:
    """SizeOfImage of the simulated kernel, which grows as the kernel does."""
    import pefile

    from kdcon.tools.simtarget.kernel import IMAGES_DIR

    return pefile.PE(str(IMAGES_DIR / "ntoskrnl.exe"), fast_load=True).OPTIONAL_HEADER.SizeOfImage
