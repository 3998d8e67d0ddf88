"""Pack the train and validation faces small enough to travel to a GPU machine with the working tree.

The device tool copies the working tree plus git-ignored folders named in its ``carry`` list, 64 MiB
in all, so the faces are re-encoded (JPEG, long side at most ``size`` px, never enlarged) into a
git-ignored folder (``gpu_data/`` by default; never commit it: the images' terms forbid
redistribution), split into parts of at most ``--part-mib`` that travel one per call (the device
keeps what earlier calls carried while it stays warm). File names and layout are kept, so
``phototag train --data gpu_data/part1/utkface --data gpu_data/part2/utkface ...`` there reads the
same train and validation sides as here: UTKFace splits by file name (and a data set's parts are
one source, by folder name), the test files are simply not packed (``test_samples_held_out`` is
0 there), and folders with their own ``train/``/``val/`` keep them; each part carries the rows of its
files from ``duplicate_groups.csv`` and ``labels.csv``. See models/README.md.

    python -m phototag.training.pack --data ../shared/data/utkface --data ../shared/data/celeba_gender --part-mib 16
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from . import data


def _encode(path: str, size: int, quality: int) -> bytes:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if max(im.size) > size:
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, "JPEG", quality=quality)
        return out.getvalue()


def pack(sources: list[str | Path], out: str | Path, size: int = 128, quality: int = 85, seed: int = 1337,
         limits: dict[str, int] | None = None, part_mib: float | None = None) -> dict:
    """Re-encode the train and validation sides of ``sources`` into ``out/part<k>/<source name>/...``.

    A part is closed when it would exceed ``part_mib`` (None: one part), so that each part fits one
    transfer. ``limits``: at most this many training faces of a source (by folder name), a seeded
    sample. Returns what was packed, also written to ``out/PACKED.json``.
    """
    out = Path(out)
    report: dict = {"size": size, "quality": quality, "seed": seed, "sources": {}, "parts": [0]}
    budget = part_mib * 2**20 if part_mib else None
    for source in map(Path, sources):
        if not source.is_dir():
            raise data.DataError(f"{source}: only folders can be packed")
        train, val, test = data.splits(source, seed)
        limit = (limits or {}).get(source.name)
        if limit is not None and limit < len(train):
            train = train.take(np.sort(np.random.default_rng(seed).choice(len(train), limit, replace=False)))
        packed = data.Samples.concat([train, val])
        in_part: dict[int, set[str]] = {}
        for path in packed.paths:
            encoded = _encode(path, size, quality)
            if budget and report["parts"][-1] and report["parts"][-1] + len(encoded) > budget:
                report["parts"].append(0)
            part = len(report["parts"])
            relative = Path(path).relative_to(source)
            target = out / f"part{part}" / source.name / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encoded)
            report["parts"][-1] += len(encoded)
            in_part.setdefault(part, set()).add(relative.as_posix())
        for part, kept in in_part.items():  # each part lists its own files; a side depends only on the name
            data.copy_label_files(source, out / f"part{part}" / source.name, kept)
        report["sources"][source.name] = {"train": len(train), "val": len(val), "test_not_packed": len(test),
                                          "parts": sorted(in_part)}
    report["bytes"] = sum(report["parts"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "PACKED.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="a data source (repeatable)")
    parser.add_argument("--out", default="gpu_data", help="git-ignored output folder (default gpu_data)")
    parser.add_argument("--size", type=int, default=128, help="long side in pixels (never enlarged)")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality")
    parser.add_argument("--seed", type=int, default=1337, help="split seed (as phototag train)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=N",
                        help="at most N training faces of the source folder NAME (e.g. celeba_gender=8000)")
    parser.add_argument("--part-mib", type=float, help="start a new part folder before one exceeds this many MiB")
    args = parser.parse_args()
    limits = {k: int(v) for k, v in (item.split("=", 1) for item in args.limit)}
    report = pack(args.data, args.out, args.size, args.quality, args.seed, limits, args.part_mib)
    for name, r in report["sources"].items():
        print(f"{name}: {r['train']} train + {r['val']} val faces in parts {r['parts']} "
              f"({r['test_not_packed']} test faces not packed)")
    for k, size in enumerate(report["parts"], start=1):
        print(f"{args.out}/part{k}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
