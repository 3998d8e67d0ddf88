"""``phototag people --html DIR``: the people's page, seen in a real headless browser.

Three photos of the astronaut and Grace Hopper's photo (EXIF orientation 2: mirrored) are scanned
with the shipped models; one astronaut photo is deleted after the scan (its face gets a placeholder);
the astronaut is named with HTML in the name. Chromium screenshots the page and the test looks for
each thumbnail file's pixels in the screenshot (template matching: the thumbnails are shown at their
own size), and for the placeholder's colour; the HTML must hold the name escaped and the commands.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from test_people_cli import library, run  # noqa: F401  (the fixture)

from phototag import people_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it: "
                                                              "apt-get install chromium)")
NAME = 'Zoë <b>& "Co"'
PLACEHOLDER = (0xD8, 0xD2, 0xC6)  # .faces .missing's background


def screenshot(page: Path, out: Path, size=(1200, 900)) -> np.ndarray:
    """The page as Chromium draws it, at one device pixel per CSS pixel."""
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--force-device-scale-factor=1", f"--screenshot={out}", f"--window-size={size[0]},{size[1]}",
                    page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(out).convert("RGB"), dtype=np.float64)


def best_match(shot: np.ndarray, patch: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Where ``patch`` (h x w x 3) fits ``shot`` best: the RMS difference (0-255) and the top left
    corner, by the sum of squared differences computed with FFTs."""
    H, W, _ = shot.shape
    h, w, _ = patch.shape
    ssd = np.zeros((H - h + 1, W - w + 1))
    for c in range(3):
        image, template = shot[..., c], patch[..., c]
        corr = np.fft.irfft2(np.fft.rfft2(image) * np.conj(np.fft.rfft2(template, s=(H, W))), s=(H, W))
        squares = np.pad(image ** 2, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        window = squares[h:, w:] - squares[:-h, w:] - squares[h:, :-w] + squares[:-h, :-w]
        ssd += window - 2 * corr[:H - h + 1, :W - w + 1] + (template ** 2).sum()
    y, x = np.unravel_index(np.argmin(ssd), ssd.shape)
    return float(np.sqrt(max(ssd[y, x], 0) / (h * w * 3))), (int(x), int(y))


@pytest.fixture
def page(library, tmp_path):  # noqa: F811
    """The library (Hopper's own file, EXIF orientation 2) scanned, the astronaut named, one of its
    photos deleted, the page written."""
    (library / "hopper.jpg").unlink()
    shutil.copy(Path(__file__).parent / "real_files" / "hopper_orientation_2.jpg", library / "hopper.jpg")
    db = tmp_path / "index.db"
    assert run("scan", library, "--db", db, "--no-exif").exit_code == 0
    people = json.loads(run("people", "--db", db, "--format", "json").stdout)
    astronaut = next(p for p in people if p["faces"] == 3)
    hopper = next(p for p in people if p["sample"].endswith("hopper.jpg"))
    assert run("people", "name", astronaut["id"], NAME, "--db", db).exit_code == 0
    (library / "astronaut 2021.jpg").unlink()
    out = tmp_path / "page"
    result = run("people", "--db", db, "--html", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str((out / "index.html").resolve())
    assert "astronaut 2021.jpg: the photo is gone" in result.stderr
    return {"out": out, "db": db, "astronaut": astronaut["id"], "hopper": hopper["id"], "library": library}


def test_page_html_escapes_and_gives_the_commands(page):
    text = (page["out"] / "index.html").read_text(encoding="utf-8")
    assert html.escape(NAME) in text and NAME not in text and "<b>" not in text
    words = f" --db {shlex.quote(str(page['db']))}"
    for pid in (page["astronaut"], page["hopper"]):
        assert html.escape(f'phototag people name{words} {pid} "NAME"') in text
        assert html.escape(f"phototag people merge{words} {pid} ID") in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched from anywhere
    thumbs = re.findall(r'<img src="faces/([^"]+)"', text)
    assert len(thumbs) == 3 and {p.name for p in (page["out"] / "faces").iterdir()} == set(thumbs)
    assert text.count('class="missing"') == 1 and "the photo is gone" in text


def test_hopper_thumbnail_is_in_the_displayed_frame(page):
    """Orientation 2 applied: the thumbnail is the displayed photo's face, not the stored (mirrored) one."""
    from phototag.index import open_index

    db = open_index(page["db"])
    x, y, w, h, face_id = db.execute("select f.x, f.y, f.w, f.h, f.id from faces f where f.person_id = ?",
                                     [page["hopper"]]).fetchone()
    thumb = next((page["out"] / "faces").glob(f"{face_id}-*.jpg"))
    shown = np.asarray(Image.open(thumb).convert("RGB"), dtype=np.float64)
    displayed = ImageOps.exif_transpose(Image.open(page["library"] / "hopper.jpg")).convert("RGB")
    left, top, side = people_page._square((x, y, w, h), *displayed.size)
    expected = displayed.crop((round(left), round(top), round(left + side), round(top + side))).resize(shown.shape[:2])
    expected = np.asarray(expected, dtype=np.float64)
    assert np.abs(shown - expected).mean() < 6 < np.abs(shown - expected[:, ::-1]).mean()


@needs_chromium
def test_page_in_a_browser_shows_the_faces(page, tmp_path):
    shot = screenshot(page["out"] / "index.html", tmp_path / "shot.png")
    assert shot.shape == (900, 1200, 3)
    corners = []
    for thumb in sorted((page["out"] / "faces").iterdir()):
        patch = np.asarray(Image.open(thumb).convert("RGB"), dtype=np.float64)
        assert patch.shape == (people_page.THUMB, people_page.THUMB, 3)
        rms, corner = best_match(shot, patch)
        assert rms < 8, (thumb.name, rms)  # drawn at its own size, pixel for pixel (give or take JPEG decoders)
        assert rms + 20 < best_match(shot, patch[:, ::-1])[0]  # ...and not any face-like patch: not its mirror
        corners.append(corner)
    assert len(set(corners)) == 3
    xs, ys = sorted(c[0] for c in corners), sorted(c[1] for c in corners)
    assert ys[0] == ys[1] < ys[2]  # the astronaut's two faces on one row, Grace Hopper's below
    assert xs[1] - xs[0] >= people_page.THUMB  # side by side
    placeholder = np.all(shot == PLACEHOLDER, axis=2).sum()
    assert 0.6 * people_page.THUMB ** 2 < placeholder < 1.05 * people_page.THUMB ** 2
    background = np.all(shot == (0xF3, 0xF1, 0xEC), axis=2).mean()
    assert background > 0.3  # the page's own background: the CSS applied


def test_page_again_reuses_thumbnails_and_pages_people(page):
    again = run("people", "--db", page["db"], "--html", page["out"], "--html-people", 1)
    assert again.exit_code == 0 and "People: 1 of 2, 2 faces shown (0 cut now, 1 not read)" in again.stderr
    text = (page["out"] / "index.html").read_text(encoding="utf-8")
    assert f'id="person-{page["hopper"]}"' not in text and "1 more people (fewer faces) are not shown" in text
    assert len(list((page["out"] / "faces").iterdir())) == 2  # Hopper's thumbnail, no longer shown, removed


def test_a_turned_photo_gives_an_upright_thumbnail(tmp_path):
    """A photo whose faces agree it lies on its left side (turn 1): the thumbnail is turned back."""
    from phototag.testing.photos import face_crops, jpeg_bytes

    upright = face_crops()[0].image.convert("RGB").resize((240, 240))
    canvas = Image.new("RGB", (400, 300), (90, 120, 150))
    canvas.paste(upright.rotate(90), (80, 30))  # counter-clockwise: the photo's content on its left side
    photo = tmp_path / "turned.jpg"
    photo.write_bytes(jpeg_bytes(canvas))
    face = people_page._Face(1, 1, (140.0, 90.0, 120.0, 120.0), str(photo), bytes(photo), 400, 300, 1, "x")
    face.file = "1-0123456789.jpg"
    assert people_page._cut([face], tmp_path) is None
    thumb = np.asarray(Image.open(tmp_path / face.file).convert("RGB"), dtype=np.float64)
    expected = np.asarray(upright.crop((30, 30, 210, 210)).resize(thumb.shape[:2]), dtype=np.float64)
    assert np.abs(thumb - expected).mean() < 12 < min(np.abs(thumb - np.rot90(expected, k)).mean() for k in (1, 2, 3))
