"""What phototag writes about a photo's faces: its keywords, its EXIF record and its face regions.

* Keywords (``phototag``, ``faces: 2``, ``female``, ``age 20-29``) are merged with the user's. Which
  keywords are phototag's: the record lists those it *added*. A keyword the user already had
  (compared case-insensitively) is not added again and not listed, so ``clean`` leaves it. A keyword
  the user adds later that equals a listed one cannot be told apart and goes with ``clean``.
* ``XPKeywords`` (IFD0; Windows Explorer's *Tags*) holds them as UTF-16LE, NUL-terminated,
  ``;``-separated.
* ``UserComment`` (Exif IFD) holds the machine-readable record, one line ``phototag:{json}`` (schema
  version, model version, EXIF orientation, per face the box (left, top, w, h) normalised to the
  *stored* image, rotation in degrees counter-clockwise *as displayed*, gender, probability of
  female, age; and which keywords phototag added). UserComment is the EXIF field meant for text
  "besides ImageDescription", so it is the one that apps may use. When it already holds the user's
  text, the record goes in front of it, followed by a newline, and the user's bytes are kept as they
  were (same character code, padding and all): ``clean`` cuts the record off and leaves them exactly.
  A Unicode comment gets the record in UTF-16, in the EXIF block's byte order.
"""

from __future__ import annotations

import json

from .ages import age_decade, age_years, decade_label
from .errors import Refused
from .records import Face, PhotoInfo
from .xmp import HIERARCHY, SUBJECT, TAGS_LIST, Region

SCHEMA_VERSION = 1
RECORD_MARK = "phototag:"
ASCII_CODE, UNICODE_CODE = b"ASCII\0\0\0", b"UNICODE\0"
GENDER_WORDS = {"f": "female", "m": "male"}

# Displayed-frame point (u, v), normalised, to the stored frame, per EXIF orientation; the inverse of
# what ``ImageOps.exif_transpose`` does (e.g. 6: stored rotated 90 degrees clockwise for display).
_TO_STORED = {
    1: lambda u, v: (u, v),
    2: lambda u, v: (1 - u, v),
    3: lambda u, v: (1 - u, 1 - v),
    4: lambda u, v: (u, 1 - v),
    5: lambda u, v: (v, u),
    6: lambda u, v: (v, 1 - u),
    7: lambda u, v: (1 - v, 1 - u),
    8: lambda u, v: (1 - v, u),
}


def photo_keywords(faces: list[Face]) -> list[str]:
    """The human-readable keywords for a photo's faces."""
    words = ["phototag", f"faces: {len(faces)}"]
    words += _genders(faces)
    return words + [f"age {decade_label(d)}" for d in sorted({age_decade(f.age) for f in faces})]


def keyword_paths(faces: list[Face]) -> list[str]:
    """The same keywords as paths under ``phototag`` (``phototag|gender|female``), for lr:hierarchicalSubject."""
    paths = [f"phototag|faces|faces {len(faces)}"]
    paths += [f"phototag|gender|{w}" for w in _genders(faces)]
    paths += [f"phototag|age|{w}" for w in photo_keywords(faces) if w.startswith("age ")]
    return paths + [f"phototag|people|{name}" for name in dict.fromkeys(f.person for f in faces if f.person)]


def xmp_additions(faces: list[Face], user: dict[str, list[str] | None],
                  elsewhere: list[str]) -> dict[str, list[str]]:
    """What phototag appends to each XMP bag, given the user's values in it (None: the bag is absent)
    and the user's keywords in other fields (XPKeywords, IPTC).

    ``dc:subject`` gets phototag's keywords and the user's keywords from elsewhere. The hierarchy bags
    get phototag's paths and every flat keyword of the user's that no path of theirs names, as a
    top-level entry: digiKam and Immich read only the first non-empty of these fields, so adding a
    hierarchy must not hide the user's keywords. ``digiKam:TagsList`` only where the file has one.
    """
    subject = user[SUBJECT] or []
    flat = _unique(subject + elsewhere)
    paths = keyword_paths(faces)
    additions = {SUBJECT: _missing(subject, flat + photo_keywords(faces))}
    for name, sep in ((HIERARCHY, "|"), (TAGS_LIST, "/")):
        if name == TAGS_LIST and user[name] is None:
            additions[name] = []
            continue
        existing = user[name] or []
        named = {part.casefold() for path in existing for part in path.split(sep)}
        carried = [k for k in flat if k.casefold() not in named and sep not in k]
        additions[name] = _missing(existing, carried + [p.replace("|", sep) for p in paths])
    return additions


def _genders(faces: list[Face]) -> list[str]:
    return sorted({GENDER_WORDS[f.gender] for f in faces if f.gender in GENDER_WORDS})


def _unique(words: list[str]) -> list[str]:
    """``words`` without case-insensitive repeats, in order."""
    seen: set[str] = set()
    return [w for w in words if not (w.casefold() in seen or seen.add(w.casefold()))]


def _missing(existing: list[str], candidates: list[str]) -> list[str]:
    """The candidates not already in ``existing`` (case-insensitively), each once."""
    present = {k.casefold() for k in existing}
    return [k for k in _unique(candidates) if k.casefold() not in present]


def stored_box(box: tuple[float, float, float, float], info: PhotoInfo) -> tuple[float, float, float, float]:
    """A box (x, y, w, h) in displayed-frame pixels as (left, top, w, h) normalised to the stored image."""
    x, y, w, h = box
    to_stored = _TO_STORED.get(info.orientation, _TO_STORED[1])
    s0, t0 = to_stored(x / info.width, y / info.height)
    s1, t1 = to_stored((x + w) / info.width, (y + h) / info.height)
    left, right = sorted(min(max(v, 0.0), 1.0) for v in (s0, s1))
    top, bottom = sorted(min(max(v, 0.0), 1.0) for v in (t0, t1))
    return left, top, right - left, bottom - top


def merge_keywords(current: list[str], own_before: list[str], ours: list[str]) -> tuple[list[str], list[str]]:
    """(all keywords, those phototag adds): the user's stay, ours already present are not added twice."""
    user = without(current, own_before)
    present = {k.casefold() for k in user}
    added = [k for k in ours if k.casefold() not in present]
    return user + added, added


def without(words: list[str], remove: list[str]) -> list[str]:
    """``words`` minus one occurrence (the last) of each of ``remove``."""
    remaining = list(words)
    for word in remove:
        if word in remaining:
            del remaining[len(remaining) - 1 - remaining[::-1].index(word)]
    return remaining


def own_keywords(record: dict | None) -> list[str]:
    words = (record or {}).get("keywords")
    return [w for w in words if isinstance(w, str)] if isinstance(words, list) else []


def exif_record(faces: list[Face], info: PhotoInfo, model_version: str, added: list[str]) -> dict:
    return {
        "phototag": SCHEMA_VERSION,
        "model": model_version,
        "frame": "stored",
        "orientation": info.orientation,
        "faces": [{
            "box": [round(v, 4) for v in stored_box(face.box, info)],
            "rotation": round(face.rotation, 1),
            "gender": face.gender,
            "p_female": round(face.p_female, 3),
            "age": round(face.age, 1),
        } for face in faces],
        "keywords": added,
    }


def face_region(face: Face, info: PhotoInfo) -> Region:
    left, top, w, h = stored_box(face.box, info)
    gender = GENDER_WORDS.get(face.gender, "face")
    return Region(left + w / 2, top + h / 2, w, h, f"{gender}, age {age_years(face.age)}", {
        "Gender": face.gender,
        "PFemale": f"{face.p_female:.3f}",
        "Age": f"{face.age:.1f}",
        "Rotation": f"{face.rotation:.1f}",
    }, name=face.person)


def decode_keywords(raw: bytes | None) -> list[str]:
    if not raw:
        return []
    text = raw[: len(raw) // 2 * 2].decode("utf-16-le", errors="replace").split("\0", 1)[0]
    return [word.strip() for word in text.split(";") if word.strip()]


def encode_keywords(words: list[str]) -> bytes | None:
    return ";".join(words).encode("utf-16-le") + b"\0\0" if words else None


def split_comment(raw: bytes | None, order: str) -> tuple[bytes, dict | None, bytes, str]:
    """(character code, phototag's record or None, the user's bytes, encoding for the record)."""
    if raw is None:
        return ASCII_CODE, None, b"", "latin-1"
    if len(raw) < 8:
        raise Refused("UserComment is shorter than its 8-byte character code")
    code, payload = raw[:8], raw[8:]
    candidates = ["utf-16-le", "utf-16-be"] if code == UNICODE_CODE else ["latin-1"]
    if code == UNICODE_CODE and order == ">":
        candidates.reverse()
    for encoding in candidates:
        if not payload.startswith(RECORD_MARK.encode(encoding)):
            continue
        text = payload.decode(encoding, errors="replace")
        try:
            record, end = json.JSONDecoder().raw_decode(text, len(RECORD_MARK))
        except (ValueError, RecursionError):  # not JSON, or nested too deep to be phototag's: the user's text
            break
        if not isinstance(record, dict) or not text[:end].isascii():
            break
        rest = payload[end * len("a".encode(encoding)):]
        newline = "\n".encode(encoding)
        return code, record, rest[len(newline):] if rest.startswith(newline) else rest, encoding
    return code, None, payload, candidates[0]


def join_comment(code: bytes, record: dict, user: bytes, encoding: str) -> bytes:
    ours = RECORD_MARK + json.dumps(record, ensure_ascii=True, separators=(",", ":"))
    return code + ours.encode(encoding) + ("\n".encode(encoding) + user if user else b"")
