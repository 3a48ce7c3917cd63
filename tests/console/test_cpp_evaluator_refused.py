"""``??`` (WinDbg's C++ evaluator) is refused in one line that says what to use instead,
not read as ``?`` of a MASM expression starting with '?'."""

from __future__ import annotations

from .test_golden_kernel_extensions import output_of
from .transcripts import batch


def test_double_question_mark_says_cpp_is_not_supported_and_names_the_alternatives():
    text, status = batch("?? sizeof(nt!_EPROCESS)", "? 1+2")
    refused = output_of(text, "?? sizeof(nt!_EPROCESS)").strip()
    assert refused.startswith("?? (C++ expressions) is not supported")
    assert "dt" in refused and "\n" not in refused
    assert output_of(text, "? 1+2").strip() == "Evaluate expression: 3 = 00000000`00000003"
    assert status == 1
