"""Reading the IPTC keywords of a JPEG (APP13 Photoshop resources, IIM dataset 2:25). Never written.

phototag leaves IPTC alone (see the README's Tags section): its APP13 segment, and with it the IPTC
digest that MWG readers compare, stays byte-identical. The keywords are read so that adding XMP
keyword fields does not hide them from readers that take only the first non-empty field.
"""

from __future__ import annotations

import struct

PHOTOSHOP = b"Photoshop 3.0\0"
IPTC_RESOURCE = 0x0404
UTF8_MARK = b"\x1b%G"  # dataset 1:90, coded character set ISO 2022 escape for UTF-8


def keywords(app13: bytes | None) -> list[str]:
    """The IPTC Keywords in an APP13 payload (after the segment header); [] when there are none or
    the data is damaged (reading must never stop a write)."""
    if not app13 or not app13.startswith(PHOTOSHOP):
        return []
    iim = _resource(app13, len(PHOTOSHOP), IPTC_RESOURCE)
    if iim is None:
        return []
    datasets = _datasets(iim)
    encoding = "utf-8" if datasets.get((1, 90), [b""])[0].startswith(UTF8_MARK) else "latin-1"
    return [value.decode(encoding, errors="replace").strip() for value in datasets.get((2, 25), [])]


def _resource(data: bytes, pos: int, wanted: int) -> bytes | None:
    """The data of the Photoshop image resource ``wanted`` (8BIM blocks: id, Pascal name, size, data)."""
    while pos + 12 <= len(data) and data[pos:pos + 4] == b"8BIM":
        resource = struct.unpack_from(">H", data, pos + 4)[0]
        name_length = data[pos + 6]
        pos += 6 + name_length + 1 + ((name_length + 1) & 1)
        if pos + 4 > len(data):
            return None
        size = struct.unpack_from(">I", data, pos)[0]
        pos += 4
        if resource == wanted:
            return data[pos:pos + size]
        pos += size + (size & 1)
    return None


def _datasets(iim: bytes) -> dict[tuple[int, int], list[bytes]]:
    """IIM datasets (tag 0x1C, record, number, 2-byte length, value) by (record, number), in order."""
    found: dict[tuple[int, int], list[bytes]] = {}
    pos = 0
    while pos + 5 <= len(iim) and iim[pos] == 0x1C:
        record, number, size = iim[pos + 1], iim[pos + 2], struct.unpack_from(">H", iim, pos + 3)[0]
        if size & 0x8000:  # extended length: not used for keywords
            break
        found.setdefault((record, number), []).append(iim[pos + 5:pos + 5 + size])
        pos += 5 + size
    return found
