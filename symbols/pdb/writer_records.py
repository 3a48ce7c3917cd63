"""Builders of CodeView symbol and type records for the PDB writer, in all three forms.

``SymbolWriter`` makes symbol records and ``TypeWriter`` type records in the
7.0 form (``"sz"``: NUL-terminated UTF-8 names, 32-bit type indices), the
VC5/6 form (``"st"``: length-prefixed names, 32-bit indices) or the VC4 form
(``"16t"``: length-prefixed names, 16-bit indices). They exist to make test
files and fuzzing seeds; the reader never imports them. Spec: symbols.md 2.7
and 2.8 (record layouts), cvinfo.h.
"""

from __future__ import annotations

import struct

from kdcon.symbols import codeview as cv
from kdcon.symbols.codeview import numeric_bytes

__all__ = ["SymbolWriter", "TypeWriter", "FORMS", "encode_name"]

FORMS = ("sz", "st", "16t")


def encode_name(name: str, form: str) -> bytes:
    """A name field: NUL-terminated UTF-8 ("sz") or u8-length-prefixed cp1252."""
    if form == "sz":
        return name.encode("utf-8") + b"\0"
    raw = name.encode("cp1252", errors="replace")[:255]
    return bytes([len(raw)]) + raw


def _record(kind: int, payload: bytes, *, pad_byte: int | None = None) -> bytes:
    """``u16 len, u16 kind, payload`` padded to 4 (LF_PAD bytes for types, zeros for symbols)."""
    body = struct.pack("<H", kind) + payload
    while (len(body) + 2) % 4:
        pad = 0 if pad_byte is None else 0xF0 | (4 - (len(body) + 2) % 4)
        body += bytes([pad])
    return struct.pack("<H", len(body)) + body


class SymbolWriter:
    """Symbol records of one form; ``form`` is "sz", "st" or "16t"."""

    _KINDS = {
        "sz": dict(pub=cv.S_PUB32, gdata=cv.S_GDATA32, ldata=cv.S_LDATA32, gproc=cv.S_GPROC32,
                   lproc=cv.S_LPROC32, label=cv.S_LABEL32, udt=cv.S_UDT, thunk=cv.S_THUNK32),
        "st": dict(pub=cv.S_PUB32_ST, gdata=cv.S_GDATA32_ST, ldata=cv.S_LDATA32_ST,
                   gproc=cv.S_GPROC32_ST, lproc=cv.S_LPROC32_ST, label=cv.S_LABEL32_ST,
                   udt=cv.S_UDT_ST, thunk=cv.S_THUNK32_ST),
        "16t": dict(pub=cv.S_PUB32_16t, gdata=cv.S_GDATA32_16t, ldata=cv.S_LDATA32_16t,
                    gproc=cv.S_GPROC32_16t, lproc=cv.S_LPROC32_16t, label=cv.S_LABEL32_ST,
                    udt=cv.S_UDT_16t, thunk=cv.S_THUNK32_ST),
    }

    def __init__(self, form: str = "sz") -> None:
        if form not in FORMS:
            raise ValueError(f"unknown record form {form!r}")
        self.form = form
        self.kinds = self._KINDS[form]

    def _name(self, name: str) -> bytes:
        return encode_name(name, self.form)

    def public(self, name: str, segment: int, offset: int, flags: int = 0) -> bytes:
        if self.form == "16t":
            payload = struct.pack("<IHH", offset, segment, 0)
        else:
            payload = struct.pack("<IIH", flags, offset, segment)
        return _record(self.kinds["pub"], payload + self._name(name))

    def data(self, name: str, segment: int, offset: int, type_index: int, *,
             local: bool = False) -> bytes:
        kind = self.kinds["ldata" if local else "gdata"]
        if self.form == "16t":
            payload = struct.pack("<IHH", offset, segment, type_index)
        else:
            payload = struct.pack("<IIH", type_index, offset, segment)
        return _record(kind, payload + self._name(name))

    def procedure(self, name: str, segment: int, offset: int, length: int, type_index: int, *,
                  end_offset: int, local: bool = False) -> bytes:
        """A procedure start; ``end_offset`` is where its S_END will be in the module stream."""
        kind = self.kinds["lproc" if local else "gproc"]
        if self.form == "16t":
            payload = struct.pack("<IIIIIIIHHB", 0, end_offset, 0, length, 0, length, offset,
                                  segment, type_index, 0)
        else:
            payload = struct.pack("<IIIIIIIIHB", 0, end_offset, 0, length, 0, length,
                                  type_index, offset, segment, 0)
        return _record(kind, payload + self._name(name))

    def label(self, name: str, segment: int, offset: int) -> bytes:
        return _record(self.kinds["label"], struct.pack("<IHB", offset, segment, 0)
                       + self._name(name))

    def thunk(self, name: str, segment: int, offset: int, length: int, *, end_offset: int) -> bytes:
        payload = struct.pack("<IIIIHHB", 0, end_offset, 0, offset, segment, length, 0)
        return _record(self.kinds["thunk"], payload + self._name(name))

    def udt(self, name: str, type_index: int) -> bytes:
        fmt = "<H" if self.form == "16t" else "<I"
        return _record(self.kinds["udt"], struct.pack(fmt, type_index) + self._name(name))

    @staticmethod
    def end() -> bytes:
        return _record(cv.S_END, b"")


class TypeWriter:
    """Type records of one form, numbered from 0x1000 in the order they are added."""

    def __init__(self, form: str = "sz") -> None:
        if form not in FORMS:
            raise ValueError(f"unknown record form {form!r}")
        self.form = form
        self.small = form == "16t"
        self._records: list[bytes] = []

    @property
    def next_index(self) -> int:
        return 0x1000 + len(self._records)

    def records(self) -> bytes:
        return b"".join(self._records)

    def count(self) -> int:
        return len(self._records)

    def add(self, leaf: int, payload: bytes) -> int:
        self._records.append(_record(leaf, payload, pad_byte=0xF0))
        return self.next_index - 1

    def _name(self, name: str) -> bytes:
        return encode_name(name, "sz" if self.form == "sz" else "st")

    def pointer(self, target: int, size: int = 8) -> int:
        ptrtype = 0x0C if size == 8 else 0x0A
        if self.small:
            return self.add(cv.LF_POINTER_16t, struct.pack("<HH", ptrtype, target))
        return self.add(cv.LF_POINTER, struct.pack("<II", target, ptrtype | (size << 13)))

    def modifier(self, target: int, attr: int = 1) -> int:
        if self.small:
            return self.add(cv.LF_MODIFIER_16t, struct.pack("<HH", attr, target))
        return self.add(cv.LF_MODIFIER, struct.pack("<IHxx", target, attr))

    def array(self, element: int, size: int, index_type: int = 0x0023) -> int:
        if self.small:
            head = struct.pack("<HH", element, index_type)
            return self.add(cv.LF_ARRAY_16t, head + numeric_bytes(size) + self._name(""))
        leaf = cv.LF_ARRAY if self.form == "sz" else cv.LF_ARRAY_ST
        head = struct.pack("<II", element, index_type)
        return self.add(leaf, head + numeric_bytes(size) + self._name(""))

    def bitfield(self, base: int, position: int, width: int) -> int:
        if self.small:
            return self.add(cv.LF_BITFIELD_16t, struct.pack("<BBH", width, position, base))
        return self.add(cv.LF_BITFIELD, struct.pack("<IBBxx", base, width, position))

    def procedure(self, returns: int) -> int:
        if self.small:
            return self.add(cv.LF_PROCEDURE_16t, struct.pack("<HBBHH", returns, 0, 0, 0, 0))
        return self.add(cv.LF_PROCEDURE, struct.pack("<IBBHI", returns, 0, 0, 0, 0))

    def member(self, name: str, type_index: int, offset: int) -> bytes:
        if self.small:
            head = struct.pack("<HHH", cv.LF_MEMBER_16t, type_index, 3)
        else:
            leaf = cv.LF_MEMBER if self.form == "sz" else cv.LF_MEMBER_ST
            head = struct.pack("<HHI", leaf, 3, type_index)
        return _pad_member(head + numeric_bytes(offset) + self._name(name))

    def enumerate(self, name: str, value: int) -> bytes:
        leaf = cv.LF_ENUMERATE if self.form == "sz" else cv.LF_ENUMERATE_ST
        return _pad_member(struct.pack("<HH", leaf, 3) + numeric_bytes(value) + self._name(name))

    def field_lists(self, members: list[bytes], max_bytes: int = 0xFF00) -> int:
        """Field lists holding ``members``, chained with LF_INDEX when longer than ``max_bytes``.

        Records are emitted last chunk first so every LF_INDEX points backwards,
        as linkers do; returns the index of the first list.
        """
        chunks: list[list[bytes]] = [[]]
        size = 0
        for member in members:
            if chunks[-1] and size + len(member) > max_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(member)
            size += len(member)
        leaf = cv.LF_FIELDLIST_16t if self.small else cv.LF_FIELDLIST
        following = 0
        for chunk in reversed(chunks):
            body = b"".join(chunk)
            if following:
                if self.small:
                    body += struct.pack("<HH", cv.LF_INDEX_16t, following)
                else:
                    body += struct.pack("<HxxI", cv.LF_INDEX, following)
            following = self.add(leaf, body)
        return following

    def structure(self, name: str, field_list: int, count: int, size: int, *,
                  forward: bool = False, kind: str = "struct") -> int:
        prop = cv.CV_PROP_FWDREF if forward else 0
        leaves = {"struct": (cv.LF_STRUCTURE, cv.LF_STRUCTURE_ST, cv.LF_STRUCTURE_16t),
                  "class": (cv.LF_CLASS, cv.LF_CLASS_ST, cv.LF_CLASS_16t)}[kind]
        leaf = leaves[FORMS.index(self.form)]
        if self.small:
            head = struct.pack("<HHHHH", count, field_list, prop, 0, 0)
        else:
            head = struct.pack("<HHIII", count, prop, field_list, 0, 0)
        return self.add(leaf, head + numeric_bytes(size) + self._name(name))

    def union(self, name: str, field_list: int, count: int, size: int, *,
              forward: bool = False) -> int:
        prop = cv.CV_PROP_FWDREF if forward else 0
        leaf = (cv.LF_UNION, cv.LF_UNION_ST, cv.LF_UNION_16t)[FORMS.index(self.form)]
        if self.small:
            head = struct.pack("<HHH", count, field_list, prop)
        else:
            head = struct.pack("<HHI", count, prop, field_list)
        return self.add(leaf, head + numeric_bytes(size) + self._name(name))

    def enum(self, name: str, underlying: int, values: list[tuple[str, int]]) -> int:
        field_list = self.field_lists([self.enumerate(n, v) for n, v in values])
        leaf = (cv.LF_ENUM, cv.LF_ENUM_ST, cv.LF_ENUM_16t)[FORMS.index(self.form)]
        if self.small:
            head = struct.pack("<HHHH", len(values), underlying, field_list, 0)
        else:
            head = struct.pack("<HHII", len(values), 0, underlying, field_list)
        return self.add(leaf, head + self._name(name))

    def aggregate(self, name: str, members: list[tuple[str, int, int]], size: int, *,
                  kind: str = "struct", max_list_bytes: int = 0xFF00) -> tuple[int, int]:
        """A forward reference then the definition: returns (forward index, definition index).

        ``members`` are (name, type index, offset); use ``forward index`` for
        self-references, as compilers do.
        """
        make = self.union if kind == "union" else (
            lambda *a, **k: self.structure(*a, kind=kind, **k))
        forward = make(name, 0, 0, 0, forward=True)
        return forward, self.complete(name, members, size, kind=kind, max_list_bytes=max_list_bytes)

    def complete(self, name: str, members: list[tuple[str, int, int]], size: int, *,
                 kind: str = "struct", max_list_bytes: int = 0xFF00) -> int:
        field_list = self.field_lists([self.member(*m) for m in members], max_list_bytes)
        if kind == "union":
            return self.union(name, field_list, len(members), size)
        return self.structure(name, field_list, len(members), size, kind=kind)


def _pad_member(body: bytes) -> bytes:
    while len(body) % 4:
        body += bytes([0xF0 | (4 - len(body) % 4)])
    return body
