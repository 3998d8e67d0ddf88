"""XMP sidecars: MWG face regions exiftool reads back, merging with a sidecar other tools wrote."""

from __future__ import annotations

import os

import pytest
from test_tags import FACES, OUR_KEYWORDS, exiftool, exiftool_edit, face_image, make_jpeg, needs_exiftool

from phototag import tags
from phototag.records import Face, PhotoInfo
from phototag.sidecar import sidecar_path

# A portrait shown from a landscape sensor: stored 200 x 150, EXIF orientation 6 (rotate 90 CW to show).
TURNED = PhotoInfo(width=150, height=200, stored_width=200, stored_height=150, orientation=6, format="PNG")
FACE = Face(box=(30, 40, 60, 80), landmarks={}, confidence=0.99, rotation=4.0, gender="f", p_female=0.93, age=31.0)


def regions(path) -> dict:
    return exiftool("-XMP-mwg-rs:all", "-XMP-dc:Subject", "-XMP-xmp:Rating", path)[0]


@needs_exiftool
def test_regions_are_normalised_to_the_stored_image(tmp_path):
    photo = tmp_path / "p.png"  # a format EXIF is not written into: the sidecar still works
    face_image().save(photo)

    assert tags.write_sidecar(photo, [FACE], TURNED, "m1").status == "written"

    seen = regions(sidecar_path(photo))
    # displayed (30, 40, 60, 80) in 150 x 200 -> stored: left 0.2, top 0.4, w 0.4, h 0.4 (centre 0.4, 0.6)
    assert seen["RegionAreaX"] == pytest.approx(0.4) and seen["RegionAreaY"] == pytest.approx(0.6)
    assert seen["RegionAreaW"] == pytest.approx(0.4) and seen["RegionAreaH"] == pytest.approx(0.4)
    assert (seen["RegionAreaUnit"], seen["RegionType"]) == ("normalized", "Face")
    assert (seen["RegionAppliedToDimensionsW"], seen["RegionAppliedToDimensionsH"]) == (200, 150)
    assert seen["RegionAppliedToDimensionsUnit"] == "pixel"
    assert seen["Subject"] == ["phototag", "faces: 1", "female", "age 30-39"]
    assert tags.write_sidecar(photo, [FACE], TURNED, "m1").status == "unchanged"


@needs_exiftool
def test_merges_with_a_foreign_sidecar_and_clean_restores_it(tmp_path):
    photo = tmp_path / "p.jpg"
    face_image().save(photo)
    sidecar = sidecar_path(photo)
    exiftool_edit(sidecar, "-XMP-dc:Subject=holiday", "-XMP-dc:Subject=female", "-XMP-xmp:Rating=4",
                  "-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=200,H=200,Unit=pixel},RegionList=["
                  "{Area={X=0.5,Y=0.5,W=0.1,H=0.1,Unit=normalized},Name=Ann,Type=Face}]}")
    before = regions(sidecar)

    assert tags.write_sidecar(photo, FACES, PhotoInfo(200, 200, 200, 200), "m1").status == "written"

    merged = regions(sidecar)
    assert merged["Rating"] == 4
    assert merged["RegionName"] == "Ann" and merged["RegionType"] == ["Face", "Face", "Face"]
    assert merged["RegionAreaX"] == pytest.approx([0.5, 0.25, 0.675])
    assert merged["Subject"] == ["holiday", "female"] + [k for k in OUR_KEYWORDS if k != "female"]
    assert tags.write_sidecar(photo, FACES, PhotoInfo(200, 200, 200, 200), "m1").status == "unchanged"

    result = tags.clean(photo)
    assert (result.regions, result.sidecar_deleted) == (2, False)
    assert regions(sidecar) == before


def test_sidecar_of_only_phototag_data_is_deleted_by_clean(tmp_path):
    photo = tmp_path / "p.heic"
    photo.write_bytes(b"not really a photo")
    tags.write_sidecar(photo, FACES, PhotoInfo(200, 200, 200, 200), "m1")
    assert tags.clean(photo, dry_run=True).sidecar_deleted and sidecar_path(photo).exists()
    assert tags.clean(photo).regions == 2
    assert not sidecar_path(photo).exists()


def test_a_sidecar_that_is_not_xmp_is_left_alone(tmp_path):
    photo = tmp_path / "p.jpg"
    face_image().save(photo)
    sidecar_path(photo).write_text("<not xml")
    result = tags.write_sidecar(photo, FACES, PhotoInfo(200, 200, 200, 200), "m1")
    assert result.status == "failed" and "XML" in result.reason
    assert sidecar_path(photo).read_text() == "<not xml"


# -- which photos get a sidecar in a scan ---------------------------------------------------------


def scan_folder(root, analyzer, **options):
    from phototag.scan import ScanOptions, scan

    return scan(ScanOptions(paths=[os.fsencode(root)], db_path=root.parent / "index.db", **options),
                analyzer=analyzer)


@needs_exiftool
def test_a_scan_gives_sidecars_to_formats_it_cannot_write_into_and_adds_missing_ones_later(tmp_path, tiny_analyzer):
    root = tmp_path / "library"
    root.mkdir()
    jpeg = make_jpeg(root / "a.jpg", "plain")
    png = root / "b.png"
    face_image().save(png)

    first = scan_folder(root, tiny_analyzer)  # default: embedded in the JPEG, a sidecar for the PNG
    assert first.exif == {"written": 1, "unsupported": 1} and first.sidecars == {"written": 1}
    assert sidecar_path(png).exists() and not sidecar_path(jpeg).exists()
    assert "phototag" in exiftool("-XMP-dc:Subject", sidecar_path(png))[0]["Subject"]

    # --sidecar --sidecar-name photo.xmp on the scanned library: no rescan, the sidecars come from the index
    again = scan_folder(root, tiny_analyzer, sidecar=True, sidecar_name="photo.xmp")
    assert (again.scanned, again.unchanged, again.sidecars) == (0, 2, {"written": 2}), again.exif_problems
    subject = exiftool("-XMP-dc:Subject", jpeg)[0]["Subject"]
    assert exiftool("-XMP-dc:Subject", sidecar_path(jpeg, "photo.xmp"))[0]["Subject"] == subject
    assert sidecar_path(png, "photo.xmp").read_bytes() == sidecar_path(png).read_bytes()  # same as a scan's

    assert scan_folder(root, tiny_analyzer, sidecar=True, sidecar_name="photo.xmp").sidecars == {}
    other = root / "c.png"
    face_image().save(other)
    assert scan_folder(root, tiny_analyzer, sidecar=False).sidecars == {} and not sidecar_path(other).exists()
    assert scan_folder(root, tiny_analyzer, exif=False).sidecars == {}  # --no-exif writes nothing

    result = tags.clean(png)  # clean takes phototag's part out of both kinds of sidecar
    assert not sidecar_path(png).exists() and not sidecar_path(png, "photo.xmp").exists()
    assert result.sidecar_deleted


def test_two_photos_sharing_a_photo_xmp_sidecar_are_told_apart(tmp_path):
    jpeg, png = tmp_path / "a.jpg", tmp_path / "a.png"
    face_image().save(jpeg)
    face_image().save(png)
    info = PhotoInfo(200, 200, 200, 200)
    assert tags.write_sidecar(jpeg, FACES, info, "m1", name="photo.xmp").status == "written"
    before = sidecar_path(jpeg, "photo.xmp").read_bytes()
    result = tags.write_sidecar(png, FACES[:1], info, "m1", name="photo.xmp")
    assert result.status == "failed" and "a.jpg" in result.reason
    assert sidecar_path(png, "photo.xmp").read_bytes() == before
    assert tags.write_sidecar(jpeg, FACES, info, "m1", name="photo.xmp").status == "unchanged"
