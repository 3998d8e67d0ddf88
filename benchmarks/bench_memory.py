"""Peak memory (RSS) of ``phototag scan`` on huge files and on ordinary photos (issue 16, case 15).

Three libraries are generated in a temporary folder and each is scanned by ``phototag scan`` (shipped
models, default options) in a child process whose own peak RSS is read from ``os.wait4``:

* huge: three panoramas of 169 megapixels (13000 x 13000; a JPEG, a PNG and an uncompressed TIFF,
  under the 200-megapixel limit) and a 3 GB file named ``.jpg`` that is no image (sparse, zeros);
* ordinary: ``--photos`` photos of 24 megapixels (6000 x 4000 JPEGs; with faces pasted in when
  ``../shared`` has UTKFace);
* big: one 144-megapixel photo whose tags are written (12000 x 12000, noise, so the JPEG is about
  160 MB; with faces pasted in when ``../shared`` has UTKFace).

Targets: huge <= 1.5 GiB, ordinary <= 600 MiB, big <= 800 MiB. The files are written by a child
process too, so that this one stays small (a child's peak counts the parent's memory it was
started from). Run as

    python benchmarks/bench_memory.py               # every set
    python benchmarks/bench_memory.py --set huge --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = "from phototag.cli import main; main()"
PANORAMA = 13000  # pixels a side: 169 megapixels
TARGETS_MIB = {"huge": 1536, "ordinary": 600, "big": 800}


def generate(folder: Path, which: str, photos: int) -> None:
    """Write the ``which`` library into ``folder`` (runs in a child process)."""
    sys.path[:0] = [str(ROOT)]
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if which == "huge":
        grey = Image.linear_gradient("L").resize((PANORAMA, PANORAMA))
        panorama = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.ROTATE_90), grey.point(lambda v: 255 - v)))
        del grey
        panorama.save(folder / "panorama.jpg", quality=90)
        panorama.save(folder / "panorama.png", compress_level=1)
        panorama.save(folder / "panorama.tif")
        with open(folder / "not_an_image.jpg", "wb") as f:
            f.truncate(3 << 30)
        return
    from phototag.testing.photos import face_files, paste_face, scene

    rng = random.Random(5)
    faces = face_files()
    if which == "big":
        import numpy as np

        tile = np.random.default_rng(5).integers(0, 256, (3000, 3000, 3), dtype=np.uint8)
        image = Image.fromarray(np.tile(tile, (4, 4, 1)))
        for k in range(3 if faces else 0):
            paste_face(image, rng.choice(faces), (2500 + 3500 * k, 6000), 2400)
        image.save(folder / "big.jpg", quality=95)
        return
    for i in range(photos):
        image = scene(6000, 4000, rng)
        for k in range(3 if faces else 0):
            paste_face(image, rng.choice(faces), (1200 + 1800 * k, 2000), 600)
        image.save(folder / f"photo_{i:02d}.jpg", quality=92)


def peak_rss_of_scan(folder: Path, db: Path) -> tuple[int, float, dict]:
    """(peak RSS in bytes, seconds, the scan's --json summary) of one ``phototag scan`` child."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = db.with_suffix(".json")
    start = time.perf_counter()
    with open(out, "w") as stdout:
        child = subprocess.Popen([sys.executable, "-c", CLI, "scan", str(folder), "--db", str(db), "--json"],
                                 stdout=stdout, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"phototag scan {folder} failed (exit {os.waitstatus_to_exitcode(status)})")
    return usage.ru_maxrss * 1024, seconds, json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=["huge", "ordinary", "big", "all"], default="all")
    parser.add_argument("--photos", type=int, default=8, help="photos in the ordinary set")
    parser.add_argument("--keep", type=Path, help="generate into (and keep) this folder")
    parser.add_argument("--generate", nargs=2, metavar=("FOLDER", "SET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(Path(args.generate[0]), args.generate[1], args.photos)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_memory."))
    failed = False
    for which in (["huge", "ordinary", "big"] if args.set == "all" else [args.set]):
        folder = work / which
        if not folder.is_dir():
            subprocess.run([sys.executable, __file__, "--generate", str(folder), which, "--photos", str(args.photos)],
                           check=True)
        db = work / f"{which}.db"
        db.unlink(missing_ok=True)
        peak, seconds, summary = peak_rss_of_scan(folder, db)
        mib = peak / (1 << 20)
        files = ", ".join(f"{p.name} {p.stat().st_size / 1e6:,.0f} MB" for p in sorted(folder.iterdir()))
        print(f"{which}: peak RSS {mib:,.0f} MiB (target {TARGETS_MIB[which]:,} MiB), {seconds:.1f} s; "
              f"scanned {summary['scanned']}, faces {summary['faces']}, failed {len(summary['failed'])}, "
              f"not scanned {sum(len(v) for v in summary['skipped_counts'].values())}; {files}")
        for item in summary["failed"]:
            print(f"  failed {Path(item['path']).name}: {item['reason']}")
        failed |= mib > TARGETS_MIB[which]
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
