"""Pack the train and validation faces small enough to travel to a GPU machine with the working tree.

The device tool copies the working tree plus git-ignored folders named in its ``carry`` list, 64 MiB
in all, so the faces are re-encoded (JPEG, long side at most ``size`` px, never enlarged) into a
git-ignored folder (``gpu_data/`` by default; never commit it: the images' terms forbid
redistribution). File names and layout are kept, so ``phototag train`` there reads the same train
and validation sides as here: UTKFace splits by file name, and the test files are simply not packed
(``test_samples_held_out`` is 0 there); folders with their own ``train/``/``val/`` keep them.

    python -m training.pack --data ../shared/data/utkface --data ../shared/data/celeba_gender --budget-mib 38
"""

from __future__ import annotations

import argparse
import csv
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
         limits: dict[str, int] | None = None, budget_mib: float | None = None) -> dict:
    """Re-encode the train and validation sides of ``sources`` into ``out/<source name>/...``.

    ``limits``: at most this many training faces of a source (by folder name), a seeded sample.
    Raises DataError when the packed files exceed ``budget_mib``; returns what was packed.
    """
    out = Path(out)
    report: dict = {"size": size, "quality": quality, "seed": seed, "sources": {}}
    total = 0
    for source in map(Path, sources):
        if not source.is_dir():
            raise data.DataError(f"{source}: only folders can be packed")
        train, val, test = data.splits(source, seed)
        limit = (limits or {}).get(source.name)
        if limit is not None and limit < len(train):
            train = train.take(np.sort(np.random.default_rng(seed).choice(len(train), limit, replace=False)))
        packed = data.Samples.concat([train, val])
        written = 0
        for path in packed.paths:
            relative = Path(path).relative_to(source)
            target = out / source.name / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_encode(path, size, quality))
            written += target.stat().st_size
        groups = source / "duplicate_groups.csv"
        if groups.exists():
            kept = {Path(p).relative_to(source).as_posix() for p in packed.paths}
            with open(groups, newline="") as fh, open(out / source.name / groups.name, "w", newline="") as dst:
                rows = [r for r in csv.DictReader(fh) if r["file"] in kept]
                writer = csv.DictWriter(dst, ["group", "file"])
                writer.writeheader()
                writer.writerows(rows)
        report["sources"][source.name] = {"train": len(train), "val": len(val), "test_not_packed": len(test),
                                          "bytes": written}
        total += written
    report["bytes"] = total
    (out / "PACKED.json").write_text(json.dumps(report, indent=2) + "\n")
    if budget_mib is not None and total > budget_mib * 2**20:
        raise data.DataError(f"{out}: packed {total / 2**20:.1f} MiB, over the budget of {budget_mib} MiB "
                             "(lower --size or --quality, or limit a source)")
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
    parser.add_argument("--budget-mib", type=float, help="fail when the packed files exceed this")
    args = parser.parse_args()
    limits = {k: int(v) for k, v in (item.split("=", 1) for item in args.limit)}
    report = pack(args.data, args.out, args.size, args.quality, args.seed, limits, args.budget_mib)
    for name, r in report["sources"].items():
        print(f"{name}: {r['train']} train + {r['val']} val faces, {r['bytes'] / 2**20:.1f} MiB "
              f"({r['test_not_packed']} test faces not packed)")
    print(f"total {report['bytes'] / 2**20:.1f} MiB in {args.out}")


if __name__ == "__main__":
    main()
