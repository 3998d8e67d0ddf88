"""Embedded XMP read back by independent readers: exiftool in MWG mode (as Immich runs it) and exiv2
(as digiKam, darktable and Shotwell read), on JPEGs from several sources; the user's metadata kept,
idempotent rewrites, clean, refusals and interrupted writes."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from test_tags import (FACES, INFO, OUR_KEYWORDS, all_tags, exiftool, exiftool_edit, face_image, make_jpeg,
                       needs_exiftool)

from phototag import tags
from phototag.records import PhotoInfo
from phototag.sidecar import sidecar_path

exiv2 = pytest.importorskip("exiv2")
exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)

OUR_PATHS = ["phototag|faces|faces 2", "phototag|gender|female", "phototag|gender|male", "phototag|age|age 20-29",
             "phototag|age|age 40-49"]

# What Lightroom Classic writes (attributes for simple values, its own namespaces), with a named face
# region and a comment; lines are compared verbatim after phototag's write. (lxml writes a start tag's
# attributes on one line, namespaces first, so this one is written that way.)
LIGHTROOM_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000, 0000/00/00-00:00:00">
   <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
      <rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" \
xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" \
xmlns:lr="http://ns.adobe.com/lightroom/1.0/" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" \
xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#" xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#" \
rdf:about="" xmp:Rating="4" crs:Exposure2012="+0.35">
         <!-- edited in Lightroom -->
         <dc:subject>
            <rdf:Bag>
               <rdf:li>Paris</rdf:li>
               <rdf:li>Ann</rdf:li>
            </rdf:Bag>
         </dc:subject>
         <lr:hierarchicalSubject>
            <rdf:Bag>
               <rdf:li>Places|France|Paris</rdf:li>
               <rdf:li>People|Ann</rdf:li>
            </rdf:Bag>
         </lr:hierarchicalSubject>
         <mwg-rs:Regions rdf:parseType="Resource">
            <mwg-rs:AppliedToDimensions stDim:w="200" stDim:h="200" stDim:unit="pixel"/>
            <mwg-rs:RegionList>
               <rdf:Bag>
                  <rdf:li>
                     <rdf:Description mwg-rs:Name="Ann" mwg-rs:Type="Face">
                        <mwg-rs:Area stArea:x="0.5" stArea:y="0.5" stArea:w="0.1" stArea:h="0.1" stArea:unit="normalized"/>
                     </rdf:Description>
                  </rdf:li>
               </rdf:Bag>
            </mwg-rs:RegionList>
         </mwg-rs:Regions>
      </rdf:Description>
   </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""

DIGIKAM_XMP = LIGHTROOM_XMP.replace(
    'xmlns:lr="http://ns.adobe.com/lightroom/1.0/"',
    'xmlns:lr="http://ns.adobe.com/lightroom/1.0/" xmlns:digiKam="http://www.digikam.org/ns/1.0/"').replace(
    "         <lr:hierarchicalSubject>",
    "         <digiKam:TagsList>\n            <rdf:Seq>\n               <rdf:li>Places/France/Paris</rdf:li>\n"
    "               <rdf:li>People/Ann</rdf:li>\n            </rdf:Seq>\n         </digiKam:TagsList>\n"
    "         <lr:hierarchicalSubject>")


def with_xmp(path: Path, packet: bytes) -> Path:
    """Put an APP1 XMP segment right after the JFIF APP0 segment (independently of phototag)."""
    data = path.read_bytes()
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]
    header = b"http://ns.adobe.com/xap/1.0/\0"
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(header) + len(packet)) + header + packet
    path.write_bytes(data[:app0_end] + segment + data[app0_end:])
    return path


def make(path: Path, kind: str) -> Path:
    """The kinds of test_tags.make_jpeg plus lightroom, digikam (TagsList) and iptc (IPTC keywords with
    a digest, as Photoshop leaves them)."""
    if kind == "lightroom":
        return with_xmp(make_jpeg(path, "plain"), LIGHTROOM_XMP.encode())
    if kind == "digikam":
        return with_xmp(make_jpeg(path, "plain"), DIGIKAM_XMP.encode())
    if kind == "iptc":
        make_jpeg(path, "camera")
        exiftool_edit(path, "-IPTC:Keywords=old one", "-IPTC:Keywords=Zürich", "-IPTC:CodedCharacterSet=UTF8")
        exiftool_edit(path, "-IPTCDigest=new")
        return path
    return make_jpeg(path, kind)


KINDS = ["plain", "camera", "thumbnail_xmp", "progressive", "little_endian", "lightroom", "digikam", "iptc"]


def mwg(path: Path) -> dict:
    """What exiftool in MWG mode reports, as Immich runs it."""
    args = ["-use", "MWG", "-struct", "-Keywords", "-HierarchicalSubject", "-TagsList", "-XPKeywords",
            "-RegionInfo"]
    return exiftool(*args, path)[0]


def immich_keywords(info: dict) -> list[str]:
    """Immich's rule: TagsList, else HierarchicalSubject (``|`` -> ``/``), else MWG Keywords."""
    for name in ("TagsList", "HierarchicalSubject", "Keywords"):
        if info.get(name):
            values = info[name] if isinstance(info[name], list) else [info[name]]
            return [str(v).replace("|", "/") for v in values]
    return []


def exiv2_read(path: Path) -> dict[str, list[str]]:
    """Keyword fields as exiv2 reads them (digiKam, darktable and Shotwell use it)."""
    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    out: dict[str, list[str]] = {}
    for datum in image.xmpData():
        if datum.typeName() in ("XmpBag", "XmpSeq"):
            out[datum.key()] = [datum.toString(i) for i in range(datum.count())]
        else:
            out[datum.key()] = [datum.toString()]
    out["Iptc.Application2.Keywords"] = [d.toString() for d in image.iptcData()
                                         if d.key() == "Iptc.Application2.Keywords"]
    exif = image.exifData()
    xp = exif.findKey(exiv2.ExifKey("Exif.Image.XPKeywords"))
    out["Exif.Image.XPKeywords"] = xp.print(exif).split(";") if xp != exif.end() else []
    return out


def digikam_keywords(seen: dict[str, list[str]]) -> list[str]:
    """digiKam's rule: the first non-empty of TagsList, hierarchicalSubject, dc:subject, IPTC, XPKeywords."""
    for key in ("Xmp.digiKam.TagsList", "Xmp.lr.hierarchicalSubject", "Xmp.dc.subject",
                "Iptc.Application2.Keywords", "Exif.Image.XPKeywords"):
        if seen.get(key):
            return [v.replace("|", "/") for v in seen[key]]
    return []


def validation(path: Path) -> int:
    """How many warnings ``exiftool -validate`` reports."""
    verdict = exiftool("-validate", path)[0]["Validate"]
    return 0 if verdict == "OK" else int(verdict.split()[0])


def leaves(paths: list[str]) -> set[str]:
    return {p.rsplit("/", 1)[-1] for p in paths}


@needs_exiftool
@pytest.mark.parametrize("kind", KINDS)
def test_every_reader_finds_phototags_keywords_and_the_users(tmp_path, kind):
    photo = make(tmp_path / "p.jpg", kind)
    before_mwg, before_exiv2 = mwg(photo), exiv2_read(photo)
    original = tmp_path / "original.jpg"
    shutil.copy(photo, original)

    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"

    assert validation(photo) <= validation(original)  # exiftool -validate: no new warnings

    after_mwg, after_exiv2 = mwg(photo), exiv2_read(photo)
    # Lightroom, Apple Photos, Windows, PhotoPrism: dc:subject (MWG Keywords); Windows also XPKeywords
    assert set(OUR_KEYWORDS) <= set(after_mwg["Keywords"]) and set(OUR_KEYWORDS) <= set(after_exiv2["Xmp.dc.subject"])
    assert set(OUR_KEYWORDS) <= set(after_exiv2["Exif.Image.XPKeywords"])
    # Lightroom and darktable: lr:hierarchicalSubject
    assert set(OUR_PATHS) <= set(after_mwg["HierarchicalSubject"])
    # Immich and digiKam read only the first non-empty field: it has phototag's keywords and the user's
    for rule, before, after in ((immich_keywords, before_mwg, after_mwg),
                                (digikam_keywords, before_exiv2, after_exiv2)):
        user, now = rule(before), rule(after)
        assert leaves(user) <= leaves(now) and {p.replace("|", "/") for p in OUR_PATHS} <= set(now)
    # face regions: phototag's have no name (no fake people); the user's named ones stay
    regions = after_mwg["RegionInfo"]["RegionList"]
    ours = [r for r in regions if "Name" not in r]
    assert [r["Description"] for r in ours] == ["female, age 27", "male, age 43"]
    assert [r["Name"] for r in regions if "Name" in r] == [
        r["Name"] for r in before_mwg.get("RegionInfo", {}).get("RegionList", []) if "Name" in r]
    assert after_mwg["RegionInfo"]["AppliedToDimensions"] == {"W": 200, "H": 200, "Unit": "pixel"}
    # digiKam:TagsList only where the file had one
    assert ("TagsList" in after_mwg) == (kind == "digikam")
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "unchanged"


@needs_exiftool
@pytest.mark.parametrize("kind", KINDS)
def test_the_users_values_stay_and_clean_restores_them(tmp_path, kind):
    photo = make(tmp_path / "p.jpg", kind)
    original = all_tags(photo, skip=())[0]
    user = all_tags(photo)[0]

    tags.write_faces(photo, FACES, INFO, "m1")
    tags.write_faces(photo, FACES[:1], INFO, "m2")  # a rescan with other results replaces phototag's part

    tagged = all_tags(photo)[0]
    if "File:ExifByteOrder" not in user:  # phototag created the EXIF block and its required tags
        tagged = {k: v for k, v in tagged.items() if k in user}
    assert tagged == user  # every EXIF, IPTC and XMP value of the user's, except the fields phototag extends
    full = all_tags(photo, skip=())[0]
    for field in ("XMP-dc:Subject", "XMP-lr:HierarchicalSubject", "XMP-digiKam:TagsList"):
        kept = original.get(field, [])
        kept = kept if isinstance(kept, list) else [kept]
        assert full.get(field, [])[:len(kept)] == kept  # the user's values first, as they were

    result = tags.clean(photo)
    assert result.xmp and result.regions == 1
    assert all_tags(photo, skip=())[0] == original
    assert tags.clean(photo) == tags.CleanResult()


def test_the_users_xml_is_not_reformatted(tmp_path):
    photo = make(tmp_path / "p.jpg", "lightroom")
    tags.write_faces(photo, FACES, INFO, "m1")
    packet = xmp_of(photo)
    lines = iter(packet.splitlines())
    for line in LIGHTROOM_XMP.splitlines()[1:-1]:  # every line of the user's, in order, unchanged
        assert line in lines, line
    tags.clean(photo)
    assert xmp_of(photo) == LIGHTROOM_XMP


def xmp_of(photo: Path) -> str:
    data = photo.read_bytes()
    start = data.index(b"http://ns.adobe.com/xap/1.0/\0")
    size = struct.unpack(">H", data[start - 2:start])[0]
    return data[start + 29:start - 2 + size].decode()


@needs_exiftool
def test_iptc_stays_byte_identical_and_mwg_readers_return_the_xmp_keywords(tmp_path):
    photo = make(tmp_path / "p.jpg", "iptc")
    app13 = segment(photo.read_bytes(), 0xED)
    tags.write_faces(photo, FACES, INFO, "m1")
    assert segment(photo.read_bytes(), 0xED) == app13  # IPTC and its digest untouched
    seen = exiftool("-use", "MWG", "-Keywords", "-IPTC:Keywords", "-IPTCDigest", "-CurrentIPTCDigest", photo)[0]
    assert seen["IPTCDigest"] == seen["CurrentIPTCDigest"]  # still in sync: MWG readers prefer XMP
    assert seen["Keywords"] == ["old one", "Zürich"] + OUR_KEYWORDS  # the user's IPTC keywords carried over
    exiftool_edit(photo, "-IPTCDigest=")  # older files have no digest: MWG readers prefer XMP too
    assert exiftool("-use", "MWG", "-Keywords", photo)[0]["Keywords"] == ["old one", "Zürich"] + OUR_KEYWORDS


def segment(data: bytes, marker: int) -> bytes:
    pos = 2
    while data[pos + 1] != 0xDA:
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if data[pos + 1] == marker:
            return data[pos:end]
        pos = end
    raise AssertionError("no such segment")


def test_a_packet_over_64_kib_is_refused_and_the_photo_untouched(tmp_path):
    big = LIGHTROOM_XMP.replace("<!-- edited in Lightroom -->", "<!-- " + "x" * 62_500 + " -->")
    photo = with_xmp(make_jpeg(tmp_path / "p.jpg", "plain"), big.encode())
    before = photo.read_bytes()
    result = tags.write_faces(photo, FACES, INFO, "m1")
    assert result.status == "failed" and "XMP packet" in result.reason and "64 KiB" in result.reason
    assert photo.read_bytes() == before and os.listdir(tmp_path) == ["p.jpg"]


@needs_exiftool
def test_webp_xmp_round_trip(tmp_path):
    photo = tmp_path / "p.webp"
    face_image().save(photo, quality=80)
    before = photo.read_bytes()
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    assert exiv2_read(photo)["Xmp.dc.subject"] == OUR_KEYWORDS
    assert mwg(photo)["HierarchicalSubject"] == OUR_PATHS
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "unchanged"
    tags.clean(photo)
    assert photo.read_bytes() == before


@needs_exiftool
def test_webp_keeps_another_tools_xmp_and_clean_restores_it(tmp_path):
    photo = tmp_path / "p.webp"
    face_image().save(photo, quality=80)
    exiftool_edit(photo, "-XMP-dc:Subject=beach", "-XMP-xmp:Rating=5")
    original = all_tags(photo, skip=())[0]
    assert tags.write_faces(photo, FACES, INFO, "m1").status == "written"
    seen = exiftool("-XMP-dc:Subject", "-XMP-xmp:Rating", "-HierarchicalSubject", photo)[0]
    assert seen["Subject"] == ["beach"] + OUR_KEYWORDS and seen["Rating"] == 5
    assert seen["HierarchicalSubject"] == ["beach"] + OUR_PATHS
    tags.clean(photo)
    assert all_tags(photo, skip=())[0] == original


# -- sidecars -------------------------------------------------------------------------------------


FOREIGN_PREFIXES = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description xmlns:dc="http://example.com/not-dublin-core/" xmlns:purl="http://purl.org/dc/elements/1.1/" \
rdf:about="">
   <dc:subject>not keywords</dc:subject>
   <purl:subject><rdf:Bag><rdf:li>holiday</rdf:li></rdf:Bag></purl:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


@needs_exiftool
def test_a_sidecar_binding_dc_to_another_uri_keeps_its_prefixes_and_others_are_unaffected(tmp_path):
    odd, plain = tmp_path / "odd.jpg", tmp_path / "plain.jpg"
    make_jpeg(odd, "plain")
    make_jpeg(plain, "plain")
    sidecar_path(odd).write_text(FOREIGN_PREFIXES)
    info = PhotoInfo(200, 200, 200, 200)

    assert tags.write_sidecar(odd, FACES, info, "m1").status == "written"
    assert tags.write_sidecar(plain, FACES, info, "m1").status == "written"

    odd_text, plain_text = sidecar_path(odd).read_text(), sidecar_path(plain).read_text()
    assert "<dc:subject>not keywords</dc:subject>" in odd_text and "<purl:subject>" in odd_text
    assert exiftool("-XMP-dc:Subject", sidecar_path(odd))[0]["Subject"] == ["holiday"] + OUR_KEYWORDS
    assert "<dc:subject>" in plain_text and "ns0:" not in plain_text and "purl:" not in plain_text
    assert exiftool("-XMP-dc:Subject", sidecar_path(plain))[0]["Subject"] == OUR_KEYWORDS
    tags.clean(odd)
    assert sidecar_path(odd).read_text().split("\n", 1)[1].removesuffix('\n<?xpacket end="w"?>') == FOREIGN_PREFIXES
