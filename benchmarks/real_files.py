"""Real camera files through a phototag tag write and ``clean``: does every tag survive?

For each JPEG (MPO included) and WebP file, three states are compared: as it was, after a scan-style
tag write (``tags.write_faces``, two faces) and after ``tags.clean``. Each state is snapshotted by

* exiftool: every tag (``-a -G1 -n -u -b``; long and binary values as a digest) and the
  ``-validate`` warnings;
* the image data: Pillow's decoded pixels of every frame (SHA-256), and the bytes from the first SOS
  marker on (JPEG);
* exiv2 (the Python binding): every Exif, IPTC and XMP key and value it reads.

and every difference is reported: a tag lost, changed or added (other than phototag's own fields),
a new warning, changed image data, an exiv2 difference, a file left without tags. The write's time is
summed too (``--repeat`` to time it more steadily).

Without folders, the test images of two source distributions from PyPI are used, fetched with
``pip download`` into a cache folder: Pillow's (``Tests/images``, HPND licence) and piexif's
(``tests/images``, MIT licence), several of them straight from cameras. Nothing is downloaded when
the cache has them.

    .venv/bin/python benchmarks/real_files.py                  # the sdists' images
    .venv/bin/python benchmarks/real_files.py ~/Pictures -v    # your own files (copies are written)
    .venv/bin/python benchmarks/real_files.py --json out.json
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageOps  # noqa: E402

from phototag import tags  # noqa: E402
from phototag.records import Face, PhotoInfo  # noqa: E402

SDISTS = {  # requirement: folders inside it holding test images
    "pillow==11.0.0": ["Tests/images"],
    "piexif==1.1.3": ["tests/images"],
}
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "phototag-real-files"
FACES = [
    Face(box=(0.2, 0.2, 0.2, 0.25), landmarks={}, confidence=0.99, rotation=5.0, gender="f", p_female=0.91, age=27.4),
    Face(box=(0.55, 0.3, 0.15, 0.2), landmarks={}, confidence=0.97, rotation=-2.0, gender="m", p_female=0.08, age=43.0),
]
# What a write may add or change: phototag's own fields, and the file system's.
FILE_SYSTEM = ("SourceFile", "System:", "ExifTool:", "File:FileSize", "File:FileModifyDate", "File:FileAccessDate",
               "File:FileInodeChangeDate", "File:FilePermissions", "File:FileName", "File:Directory")
OWN_EXIFTOOL = ("IFD0:XPKeywords", "ExifIFD:UserComment", "XMP-dc:Subject", "XMP-lr:", "XMP-digiKam:TagsList",
                "XMP-mwg-rs:", "XMP-phototag:", "XMP-x:XMPToolkit", "XMP-xmpNote:HasExtendedXMP",
                "RIFF:WebP_Flags", "File:FileType")  # a WebP's XMP flag, which makes it an "Extended WEBP"
CREATED = ("File:ExifByteOrder", "IFD0:XResolution", "IFD0:YResolution", "IFD0:ResolutionUnit",
           "IFD0:YCbCrPositioning", "ExifIFD:ExifVersion", "ExifIFD:ComponentsConfiguration",
           "ExifIFD:FlashpixVersion", "ExifIFD:ColorSpace", "ExifIFD:ExifImageWidth", "ExifIFD:ExifImageHeight")
OWN_EXIV2 = ("Exif.Image.XPKeywords", "Exif.Photo.UserComment", "Xmp.dc.subject", "Xmp.lr.", "Xmp.digiKam.",
             "Xmp.mwg-rs.", "Xmp.phototag.", "Xmp.xmpNote.HasExtendedXMP")
POINTERS = ("Exif.Image.ExifTag", "Exif.Image.GPSTag", "Exif.Photo.InteroperabilityTag", "IFD0:ExifOffset",
            "IFD0:GPSInfo", "ExifIFD:InteropOffset")  # a directory's offset, which may move
MOVED = (":MPImageStart",)  # the images after a JPEG move with it (their bytes, MPImageN, are compared)


# -- the files ----------------------------------------------------------------------------------------


def fetch(cache: Path) -> list[Path]:
    """The sdists' image folders, unpacked into ``cache`` (downloaded with pip when missing)."""
    folders = []
    for requirement, inside in SDISTS.items():
        name = requirement.replace("==", "-")
        root = cache / name
        if not root.is_dir():
            download = cache / "download"
            download.mkdir(parents=True, exist_ok=True)
            archive = next(download.glob(f"{name}.*"), None)
            if archive is None:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                                "--no-build-isolation", requirement, "-d", str(download)], check=True)
                archive = next(download.glob(f"{name}.*"))
            unpack = Path(tempfile.mkdtemp(dir=cache))
            if archive.suffix == ".zip":
                with zipfile.ZipFile(archive) as z:
                    z.extractall(unpack)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(unpack, filter="data")
            (unpack / name).rename(root)
            shutil.rmtree(unpack)
        folders += [root / i for i in inside]
    return folders


def photos(folders: list[Path]) -> list[Path]:
    """The JPEG and WebP files (by their first bytes) under the folders."""
    found = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            with open(path, "rb") as f:
                head = f.read(12)
            if head[:3] == b"\xff\xd8\xff" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
                found.append(path)
    return found


# -- snapshots ----------------------------------------------------------------------------------------


def _pairs(pairs: list) -> dict:
    """A JSON object keeping repeated keys (``key``, ``key#2``...)."""
    out: dict = {}
    for key, value in pairs:
        name, n = key, 1
        while name in out:
            n += 1
            name = f"{key}#{n}"
        out[name] = value
    return out


def _short(value):
    """Long values (binary ones come base64-encoded) as a digest, so that a change shows but not the bytes."""
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    if len(text) > 120:
        if text.startswith("base64:"):
            text = base64.b64decode(text[7:])
        digest = hashlib.sha256(text if isinstance(text, bytes) else text.encode()).hexdigest()[:12]
        return f"<{len(text)} bytes {digest}>"
    return value


def exiftool_snapshots(folder: Path) -> dict[str, tuple[dict, list[str]]]:
    """name -> (every tag, the -validate warnings) for each file in ``folder``."""
    out = {}
    tags_run = subprocess.run(["exiftool", "-j", "-a", "-G1", "-n", "-u", "-b", "-q", "-q", str(folder)],
                              capture_output=True, text=True)
    warn_run = subprocess.run(["exiftool", "-j", "-a", "-G1", "-validate", "-warning", "-q", "-q", str(folder)],
                              capture_output=True, text=True)
    everything = json.loads(tags_run.stdout or "[]", object_pairs_hook=_pairs)
    warned = json.loads(warn_run.stdout or "[]", object_pairs_hook=_pairs)
    for info in everything:
        name = Path(info["SourceFile"]).name
        out[name] = ({k: _short(v) for k, v in info.items() if not k.startswith(("SourceFile", "System:"))}, [])
    for info in warned:
        name = Path(info["SourceFile"]).name
        found = sorted(str(v) for k, v in info.items() if k != "SourceFile" and "Validate" not in k)
        out.setdefault(name, ({}, []))[1].extend(found)
    return out


def image_snapshot(path: Path) -> dict:
    """SHA-256 of every decoded frame, and of the bytes from the first SOS on (JPEG)."""
    out = {}
    try:
        with Image.open(path) as image:
            frames = []
            for i in range(getattr(image, "n_frames", 1)):
                image.seek(i)
                image.load()
                frames.append(hashlib.sha256(image.tobytes()).hexdigest()[:16])
            out["decoded"] = frames
    except Exception as error:  # noqa: BLE001 - a file Pillow cannot decode is reported as such
        out["decoded"] = f"undecodable: {type(error).__name__}"
    data = path.read_bytes()
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 4 <= len(data) and data[pos + 1] != 0xDA:
            if data[pos] != 0xFF:  # stray bytes between segments
                pos += 1
                continue
            if data[pos + 1] in (0xFF, 0x01) or 0xD0 <= data[pos + 1] <= 0xD7:
                pos += 1 if data[pos + 1] == 0xFF else 2
                continue
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        out["image_data"] = hashlib.sha256(data[pos:]).hexdigest()[:16]
    return out


def exiv2_snapshot(path: Path) -> dict:
    try:
        import exiv2
    except ImportError:
        return {}
    exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)
    try:
        image = exiv2.ImageFactory.open(str(path))
        image.readMetadata()
    except Exception as error:  # noqa: BLE001
        return {"error": f"{type(error).__name__}: {error}"}
    out: dict = {}
    for data in (image.exifData(), image.iptcData(), image.xmpData()):
        pairs = []
        for datum in data:
            try:
                value = datum.toString()
            except Exception as error:  # noqa: BLE001
                value = f"unreadable: {type(error).__name__}"
            pairs.append((datum.key(), _short(value)))
        out.update(_pairs(pairs))
    return out


def snapshot_folder(folder: Path) -> dict[str, dict]:
    tool = exiftool_snapshots(folder)
    out = {}
    for path in sorted(folder.iterdir()):
        everything, warned = tool.get(path.name, ({}, []))
        out[path.name] = {"tags": everything, "warnings": warned, "image": image_snapshot(path),
                          "exiv2": exiv2_snapshot(path)}
    return out


# -- comparing ----------------------------------------------------------------------------------------


def _strip_copy(key: str) -> str:
    return key.split("#")[0]


def tag_differences(before: dict, after: dict, *, written: bool, created: bool, own: tuple):
    """(lost, changed, added) keys, the file system's left out, and after the write phototag's own fields
    (and the required ones it creates): after clean, they must be back as they were too."""
    skip = FILE_SYSTEM + (own + (CREATED if created else ()) if written else ())
    lost, changed, added = [], [], []
    for key in before.keys() | after.keys():
        if _strip_copy(key).startswith(skip) or _strip_copy(key) in POINTERS or _strip_copy(key).endswith(MOVED):
            continue
        if key not in after:
            lost.append(key)
        elif key not in before:
            added.append(key)
        elif before[key] != after[key]:
            changed.append(key)
    return sorted(lost), sorted(changed), sorted(added)


def compare(name: str, before: dict, after: dict, *, written: bool, created: bool) -> list[str]:
    problems = []
    lost, changed, added = tag_differences(before["tags"], after["tags"], written=written, created=created,
                                           own=OWN_EXIFTOOL)
    problems += [f"tag lost: {k} = {before['tags'][k]!r}" for k in lost]
    problems += [f"tag changed: {k}: {before['tags'][k]!r} -> {after['tags'][k]!r}" for k in changed]
    problems += [f"tag added: {k} = {after['tags'][k]!r}" for k in added]
    if written and "ExifIFD:UserComment" in before["tags"]:
        old, new = str(before["tags"]["ExifIFD:UserComment"]), str(after["tags"].get("ExifIFD:UserComment"))
        if not new.endswith(old.strip()):
            problems.append(f"UserComment lost: {old!r} -> {new!r}")
    if not written and before["tags"].get("ExifIFD:UserComment") != after["tags"].get("ExifIFD:UserComment"):
        problems.append("UserComment not restored")
    new_warnings = Counter(after["warnings"]) - Counter(before["warnings"])
    problems += [f"new warning: {w}" for w in new_warnings.elements()]
    if before["image"] != after["image"]:
        problems.append(f"image data changed: {before['image']} -> {after['image']}")
    lost, changed, added = tag_differences(before["exiv2"], after["exiv2"], written=written, created=created,
                                           own=OWN_EXIV2)
    problems += [f"exiv2 lost: {k}" for k in lost] + [f"exiv2 changed: {k}" for k in changed]
    problems += [f"exiv2 added: {k}" for k in added if not (created and k.startswith(("Exif.Image.", "Exif.Photo.")))]
    return problems


def has_our_tags(snapshot: dict) -> bool:
    found = snapshot["tags"]
    return (str(found.get("ExifIFD:UserComment", "")).startswith("phototag:")
            or any(k.startswith("XMP-phototag:") for k in found))


# -- the run --------------------------------------------------------------------------------------------


def photo_info(path: Path) -> PhotoInfo | None:
    try:
        with Image.open(path) as image:
            stored = image.size
            orientation = image.getexif().get(0x0112, 1)
            shown = ImageOps.exif_transpose(image).size if orientation in range(2, 9) else stored
            return PhotoInfo(width=shown[0], height=shown[1], stored_width=stored[0], stored_height=stored[1],
                             orientation=orientation if orientation in range(1, 9) else 1, format=image.format)
    except Exception:  # noqa: BLE001 - counted as not decodable
        return None


def run(files: list[Path], work: Path, repeat: int = 1) -> dict:
    states = {s: work / s for s in ("before", "written", "cleaned")}
    for folder in states.values():
        folder.mkdir(parents=True)
    names = {}
    for i, path in enumerate(files):
        name = f"{i:03d}_{path.name}"
        names[name] = path
        shutil.copyfile(path, states["before"] / name)
    results, seconds = {}, 0.0
    for name in names:
        target = states["written"] / name
        info = photo_info(states["before"] / name)
        faces = [Face(box=(f.box[0] * info.width, f.box[1] * info.height, f.box[2] * info.width,
                           f.box[3] * info.height), landmarks={}, confidence=f.confidence, rotation=f.rotation,
                      gender=f.gender, p_female=f.p_female, age=f.age) for f in FACES] if info else []
        info = info or PhotoInfo(width=1, height=1, stored_width=1, stored_height=1)
        took = 0.0
        for _ in range(repeat):
            shutil.copyfile(states["before"] / name, target)
            start = time.perf_counter()
            result = tags.write_faces(target, faces, info, "real-files")
            took += time.perf_counter() - start
        seconds += took
        shutil.copyfile(target, states["cleaned"] / name)
        cleaned = tags.clean(states["cleaned"] / name)
        results[name] = {"source": str(names[name]), "status": result.status, "reason": result.reason,
                         "note": result.note, "clean": cleaned.failed or cleaned.summary(),
                         "decodes": photo_info(states["before"] / name) is not None, "seconds": took / repeat}
    snaps = {state: snapshot_folder(folder) for state, folder in states.items()}
    for name, result in results.items():
        before = snaps["before"][name]
        created = "File:ExifByteOrder" not in before["tags"]
        result["written_problems"] = compare(name, before, snaps["written"][name], written=True, created=created)
        result["cleaned_problems"] = compare(name, before, snaps["cleaned"][name], written=False, created=created)
        result["tagged"] = has_our_tags(snaps["written"][name])
        result["byte_identical_after_clean"] = ((states["before"] / name).read_bytes()
                                                == (states["cleaned"] / name).read_bytes())
    return {"files": results, "write_seconds": seconds / repeat}


def summarise(report: dict) -> dict:
    files = report["files"].values()

    def count(key: str, prefix: tuple[str, ...]) -> int:
        return sum(any(p.startswith(prefix) for p in f[key]) for f in files)

    return {
        "files": len(report["files"]),
        "written": sum(f["status"] == "written" for f in files),
        "not tagged (decodable)": sum(f["decodes"] and not f["tagged"] for f in files),
        "write: tags lost/changed/added": count("written_problems", ("tag ", "UserComment")),
        "write: new warnings": count("written_problems", ("new warning",)),
        "write: image data changed": count("written_problems", ("image data",)),
        "write: exiv2 differences": count("written_problems", ("exiv2",)),
        "clean: tags lost/changed/added": count("cleaned_problems", ("tag ", "UserComment")),
        "clean: new warnings": count("cleaned_problems", ("new warning",)),
        "clean: image data changed": count("cleaned_problems", ("image data",)),
        "clean: exiv2 differences": count("cleaned_problems", ("exiv2",)),
        "clean: byte-identical": sum(f["byte_identical_after_clean"] for f in files),
        "write seconds": round(report["write_seconds"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="folders of photos (default: the sdists' images)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the sdists are kept")
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--keep", type=Path, help="keep the three states' copies in this (new) folder")
    parser.add_argument("--repeat", type=int, default=1, help="write each file this many times (timing)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every file's differences")
    args = parser.parse_args()
    if shutil.which("exiftool") is None:
        parser.error("needs exiftool (apt-get install libimage-exiftool-perl)")
    files = photos(args.folders or fetch(args.cache))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp) / "work"
        report = run(files, work, args.repeat)
    report["summary"] = summarise(report)
    for name, f in report["files"].items():
        problems = f["written_problems"] + [f"after clean: {p}" for p in f["cleaned_problems"]]
        if not f["tagged"] and f["decodes"]:
            problems.insert(0, f"not tagged: {f['status']} {f['reason']}")
        if problems and (args.verbose or len(report["files"]) <= 400):
            print(f"{name}  [{f['status']}{': ' + f['reason'] if f['reason'] else ''}]")
            for p in problems[:40 if not args.verbose else None]:
                print(f"    {p}")
    for key, value in report["summary"].items():
        print(f"{key:32} {value}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
