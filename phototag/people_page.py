"""``phototag people --html DIR``: a static page of the people, to see them before naming them.

The page (``DIR/index.html``, then ``page-2.html``... of :data:`PAGE_SIZE` people each) shows the
people with the most faces first, each with its id, name, gender, birth year, counts and dates, up to
:data:`THUMBS` face thumbnails, and the commands that name or merge it. Nothing is fetched from
anywhere: the CSS is inline, the thumbnails are small JPEG files in ``DIR/faces/``, cut from the
photos by the faces' boxes (the displayed frame: EXIF orientation applied, then the photo's turn
taken back so faces stand upright). A photo that cannot be read (gone, damaged, changed since the
scan) gets a placeholder with the reason. Thumbnails are named by the face and what they were cut
from, so writing the page again decodes only the photos whose faces are new; files of ``DIR/faces/``
no page uses any more are removed. Every name, path and command is HTML-escaped (they are user data).
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlite_utils
from PIL import Image

from . import images
from .display import GENDER_WORDS, people_records
from .names import escape_controls, printable
from .people import LIVE, list_people

THUMB = 112  # thumbnail side in pixels, written and shown at this size
THUMBS = 8  # thumbnails per person at most
PAGE_SIZE = 100  # people per page
DEFAULT_PEOPLE = 500  # people on the pages at most, most faces first (None: all)
MARGIN = 0.25  # of the face box's side, added around it on each side
QUALITY = 82
FACES_DIR = "faces"
_THUMB_NAME = re.compile(r"^\d+-[0-9a-f]{10}\.jpg$")


@dataclass
class PageReport:
    """What :func:`write_page` wrote: the first page, the pages, the people shown (of all), the
    thumbnails shown, newly cut, and the faces shown as placeholders (their photo unreadable)."""

    index: Path
    pages: int = 0
    people: int = 0
    all_people: int = 0
    thumbnails: int = 0
    cut: int = 0
    unreadable: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # path -> reason, for the photos not read


@dataclass
class _Face:
    id: int
    photo_id: int
    box: tuple[float, float, float, float]
    path: str
    path_key: bytes
    width: int
    height: int
    turn: int
    sha256: str
    file: str | None = None  # the thumbnail's name under faces/, once there
    error: str | None = None  # why there is none


def _faces_of(db: sqlite_utils.Database, person_ids: list[int], per_person: int) -> dict[int, list[_Face]]:
    """Up to ``per_person`` faces of each person (the detector's surest first), with their photos."""
    out: dict[int, list[_Face]] = {}
    for person_id in person_ids:
        rows = db.execute(
            "select f.id, f.photo_id, f.x, f.y, f.w, f.h, p.path, p.path_key, p.width, p.height, p.turn, p.sha256"
            f" from faces f join photos p on p.id = f.photo_id where f.person_id = ? and {LIVE}"
            " order by f.confidence desc, f.w * f.h desc, f.id limit ?", [person_id, per_person]).fetchall()
        out[person_id] = [_Face(r[0], r[1], tuple(r[2:6]), r[6], r[7], r[8], r[9], r[10] or 0, r[11] or "")
                          for r in rows]
    return out


def _thumb_name(face: _Face) -> str:
    key = f"{face.sha256}:{face.box}:{face.width}x{face.height}:{face.turn}:{THUMB}:{MARGIN}"
    return f"{face.id}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.jpg"


def _square(box, width: float, height: float) -> tuple[float, float, float]:
    """The square around a face box (with :data:`MARGIN`), moved and shrunk to lie in the frame:
    left, top, side (displayed pixels)."""
    x, y, w, h = box
    side = min(max(w, h) * (1 + 2 * MARGIN), width, height)
    left = min(max(x + w / 2 - side / 2, 0), width - side)
    top = min(max(y + h / 2 - side / 2, 0), height - side)
    return left, top, side


def _cut(faces: list[_Face], folder: Path) -> str | None:
    """Decode the photo of ``faces`` (one photo) just large enough and write their thumbnails; the
    reason when it cannot be read."""
    first = faces[0]
    smallest = min(_square(f.box, first.width, first.height)[2] for f in faces)
    long_side = max(first.width, first.height)
    decode_size = math.ceil(long_side * THUMB / smallest) if smallest > 0 else None
    try:
        pixels, info = images.decode_file(first.path_key, None if decode_size is None or decode_size >= long_side
                                          else decode_size)
    except FileNotFoundError:
        return "the photo is gone (phototag scan forgets it)"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    except images.DecodeError as e:
        return f"cannot be decoded ({e})"
    if (info.width, info.height) != (first.width, first.height):
        return "changed since the scan (phototag scan reads it again)"
    photo = Image.fromarray(pixels)
    for face in faces:
        left, top, side = _square(face.box, info.width, info.height)
        s = info.scale
        crop = photo.crop((round(left * s), round(top * s), round((left + side) * s), round((top + side) * s)))
        crop = crop.resize((THUMB, THUMB), Image.Resampling.LANCZOS, reducing_gap=3.0)
        if face.turn % 4:
            crop = crop.rotate(-90 * (face.turn % 4))  # the turn is counter-clockwise as displayed: take it back
        crop.save(folder / face.file, "JPEG", quality=QUALITY, optimize=True)
    return None


def _thumbnails(people_faces: dict[int, list[_Face]], folder: Path, report: PageReport) -> None:
    """Give each face its thumbnail file (cut now unless already there) or its error."""
    folder.mkdir(parents=True, exist_ok=True)
    to_cut: dict[int, list[_Face]] = defaultdict(list)
    for faces in people_faces.values():
        for face in faces:
            face.file = _thumb_name(face)
            if not (folder / face.file).is_file():
                to_cut[face.photo_id].append(face)
    for faces in to_cut.values():
        try:
            error = _cut(faces, folder)
        except Exception as e:  # a photo that breaks the decoder in a new way: a placeholder, never a crash
            error = f"cannot be decoded ({type(e).__name__}: {e})"
        if error:
            report.errors[printable(faces[0].path_key)] = error
            for face in faces:
                face.file, face.error = None, error
        else:
            report.cut += len(faces)
    used = {f.file for faces in people_faces.values() for f in faces if f.file}
    for entry in os.scandir(folder):
        if _THUMB_NAME.match(entry.name) and entry.name not in used:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _e(text) -> str:
    return html.escape(escape_controls(str(text)), quote=True)


def _photo_uri(face: _Face) -> str | None:
    try:
        return Path(os.fsdecode(face.path_key)).as_uri()
    except ValueError:
        return None


_CSS = """
:root { --bg: #f3f1ec; --card: #ffffff; --ink: #222; --mute: #666; --line: #ddd8cf; --accent: #2d5f8b; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; }
h1 { font-size: 24px; margin: 0 0 4px; }
header p, footer p { margin: 4px 0; color: var(--mute); }
.intro code { color: var(--ink); user-select: all; }
nav { margin: 10px 0; display: flex; flex-wrap: wrap; gap: 6px; }
nav a, nav span { padding: 2px 9px; border: 1px solid var(--line); border-radius: 4px; background: var(--card);
                  color: var(--accent); text-decoration: none; }
nav span { color: var(--ink); font-weight: 600; }
code { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.person { display: grid; grid-template-columns: 250px 1fr; gap: 10px 18px; background: var(--card);
          border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 12px 0; }
.info h2 { font-size: 18px; margin: 0 0 6px; overflow-wrap: anywhere; }
.info h2 .id { color: var(--mute); font-weight: 400; margin-right: 6px; }
.info h2 .unnamed { color: var(--mute); font-style: italic; font-weight: 400; }
.info dl { display: grid; grid-template-columns: auto 1fr; gap: 1px 10px; margin: 0; font-size: 14px; }
.info dt { color: var(--mute); }
.info dd { margin: 0; }
.flag { display: inline-block; margin-top: 6px; padding: 1px 7px; border-radius: 4px; background: #f7e3c6;
        font-size: 13px; }
.faces { display: flex; flex-wrap: wrap; gap: 8px; align-content: flex-start; }
.faces figure { margin: 0; width: 112px; }
.faces img, .faces .missing { display: block; width: 112px; height: 112px; border-radius: 4px; }
.faces .missing { background: #d8d2c6; color: #5a5348; font-size: 12px; padding: 8px; overflow: hidden;
                  display: flex; align-items: center; justify-content: center; text-align: center; }
.faces figcaption { font-size: 11px; color: var(--mute); text-align: center; }
.faces a { color: inherit; text-decoration: none; }
.cmds { grid-column: 1 / -1; display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 13px; color: var(--mute); }
.cmds code { color: var(--ink); background: #f0eee9; padding: 2px 6px; border-radius: 3px; user-select: all;
             overflow-wrap: anywhere; }
@media (max-width: 700px) { .person { grid-template-columns: 1fr; } }
"""


def _born(row: dict, record: dict) -> str:
    if record["born_year"] is None:
        return ""
    if row.get("born_set_by_user"):
        return f"{record['born_year']} (set)"
    return f"{record['born_year']} ± {record['born_sd']:g}"


def _person_html(row: dict, record: dict, faces: list[_Face], db_words: str) -> str:
    pid = row["id"]
    name = row.get("name")
    title = f'<span class="unnamed">no name</span>' if not name else _e(name)
    gender = GENDER_WORDS.get(row.get("gender") or "", "") + (" (set)" if row.get("gender_set_by_user") else "")
    taken = " to ".join(dict.fromkeys(d for d in (record["first_taken"], record["last_taken"]) if d))
    facts = [("gender", gender or "?"), ("born", _born(row, record) or "?"),
             ("faces", f"{row['faces']} in {record['photos']} photo{'s' if record['photos'] != 1 else ''}")]
    if taken:
        facts.append(("taken", taken))
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    flag = (f'<div class="flag" title="{_e(row.get("flag_reason") or "")}">two people? its faces do not correct '
            f"one another</div>" if row.get("flagged") else "")
    figures = []
    for face in faces:
        where = printable(face.path_key)
        if face.file:
            tip = f"face {face.id} in {where}"
            image = f'<img src="{FACES_DIR}/{_e(face.file)}" width="{THUMB}" height="{THUMB}" alt="{_e(tip)}" ' \
                    f'title="{_e(tip)}" loading="lazy">'
        else:
            tip = f"face {face.id} in {where}: {face.error}"
            image = f'<div class="missing" title="{_e(tip)}">{_e(face.error)}</div>'
        uri = _photo_uri(face)
        if uri:
            image = f'<a href="{_e(uri)}">{image}</a>'
        figures.append(f"<figure>{image}<figcaption>face {face.id}</figcaption></figure>")
    more = row["faces"] - len(faces)
    if more > 0:
        figures.append(f'<figure><div class="missing" style="background:none">and {more} more</div></figure>')
    name_cmd = f'phototag people name{db_words} {pid} "NAME"'
    merge_cmd = f"phototag people merge{db_words} {pid} ID"
    return (f'<section class="person" id="person-{pid}">'
            f'<div class="info"><h2><span class="id">#{pid}</span>{title}</h2><dl>{dl}</dl>{flag}</div>'
            f'<div class="faces">{"".join(figures)}</div>'
            f'<div class="cmds"><span>{"Rename" if name else "Name"}: <code>{_e(name_cmd)}</code></span>'
            f"<span>Same as person ID (into #{pid}): <code>{_e(merge_cmd)}</code></span></div></section>")


def _page_name(number: int) -> str:
    return "index.html" if number == 1 else f"page-{number}.html"


def _nav(number: int, pages: int) -> str:
    if pages < 2:
        return ""
    links = [f"<span>{n}</span>" if n == number else f'<a href="{_page_name(n)}">{n}</a>' for n in range(1, pages + 1)]
    return f'<nav aria-label="pages">{"".join(links)}</nav>'


def write_page(db: sqlite_utils.Database, folder: str | os.PathLike, *, db_words: str = "",
               people_limit: int | None = DEFAULT_PEOPLE, per_person: int = THUMBS,
               index_name: str = "") -> PageReport:
    """Write the people's pages into ``folder`` (created): ``index.html`` and more pages of
    :data:`PAGE_SIZE` people, the thumbnails in ``faces/``. ``db_words``: what the commands shown need
    to reach this index (`` --db PATH`` or ""); ``people_limit``: the people shown at most, most faces
    first (None: all); ``index_name``: the index as the page names it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = list_people(db)
    shown = rows if people_limit is None else rows[:people_limit]
    report = PageReport(index=folder / "index.html", all_people=len(rows), people=len(shown))
    people_faces = _faces_of(db, [r["id"] for r in shown], per_person)
    _thumbnails(people_faces, folder / FACES_DIR, report)
    report.thumbnails = sum(1 for faces in people_faces.values() for f in faces if f.file)
    report.unreadable = sum(1 for faces in people_faces.values() for f in faces if not f.file)
    records = people_records(shown)
    pages = max(1, math.ceil(len(shown) / PAGE_SIZE))
    report.pages = pages
    total_faces = sum(r["faces"] for r in rows)
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    for number in range(1, pages + 1):
        start = (number - 1) * PAGE_SIZE
        part = range(start, min(start + PAGE_SIZE, len(shown)))
        if not rows:
            summary = f"No people yet: phototag scan{db_words} groups the faces it finds."
        else:
            summary = (f"{len(rows)} people with {total_faces} faces, most faces first; this page: "
                       f"{part.start + 1} to {part.stop}" + (f" of the {len(shown)} shown." if len(shown) < len(rows)
                                                              else "."))
        intro = (f"Name a person: copy its command (a click selects it) and put the name in place of NAME. "
                 f"The same person twice: <code>{_e(f'phototag people merge{db_words} ID ID...')}</code> (into the "
                 f"first). A face that is not its person: <code>{_e(f'phototag people remove{db_words} FACE')}</code>."
                 " The names go into the photos at the next <code>phototag scan</code>.")
        body = "".join(_person_html(shown[i], records[i], people_faces[shown[i]["id"]], db_words) for i in part)
        notes = []
        if len(shown) < len(rows):
            notes.append(f"{len(rows) - len(shown)} more people (fewer faces) are not shown: "
                         f"phototag people{db_words} lists them all.")
        notes.append(f"Written {when}" + (f" from {index_name}." if index_name else "."))
        page = (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>People{_e(f' (page {number})') if number > 1 else ''} - phototag</title>"
            f"<style>{_CSS}</style></head><body>\n"
            f"<header><h1>People</h1><p>{_e(summary)}</p><p class=\"intro\">{intro}</p>{_nav(number, pages)}</header>\n"
            f"<main>\n{body}\n</main>\n"
            f"<footer>{_nav(number, pages)}{''.join(f'<p>{_e(n)}</p>' for n in notes)}</footer>\n"
            "</body></html>\n")
        target = folder / _page_name(number)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, target)
    for entry in os.scandir(folder):  # pages of an earlier, longer run
        match = re.match(r"^page-(\d+)\.html$", entry.name)
        if match and int(match[1]) > pages:
            os.unlink(entry.path)
    return report
