"""Benchmark a rescan that finds nothing to do: ``phototag scan DIR`` over an indexed library.

Writes ``--photos`` small JPEGs in 100 folders, records each in a fresh index as ``phototag scan``
would (same file state, the shipped models' version, no faces), then times ``phototag scan DIR
--json`` in a new process, start-up included, and says whether it imported TensorFlow. Not a test:

    python benchmarks/bench_rescan.py [--photos 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag import index  # noqa: E402
from phototag.models import model_version, shipped_model_dir  # noqa: E402
from phototag.records import PhotoInfo  # noqa: E402

SCAN = """
import sys
from phototag.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    print("tensorflow imported:", "tensorflow" in sys.modules, file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=10_000)
    args = parser.parse_args()
    from PIL import Image
    import io

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 140, 160)).save(out, "JPEG")
    data = out.getvalue()
    version = model_version(shipped_model_dir())
    with tempfile.TemporaryDirectory() as tmp:
        root, db_path = Path(tmp) / "photos", Path(tmp) / "index.db"
        db = index.open_index(db_path)
        info = PhotoInfo(width=64, height=48, stored_width=64, stored_height=48, format="JPEG")
        for i in range(args.photos):
            folder = root / f"{i // 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"IMG_{i:05d}.jpg"
            path.write_bytes(data)
            index.record_photo(db, os.fsencode(path), os.stat(path), None, info, [], version)
        db.close()
        t = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", SCAN, "scan", str(root), "--db", str(db_path), "--json"],
                                capture_output=True, text=True, check=True,
                                env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])})
        seconds = time.perf_counter() - t
    summary = json.loads(result.stdout)
    print(f"{summary['found']} photos indexed, {summary['unchanged']} unchanged, {summary['scanned']} scanned: "
          f"{seconds:.2f} s in all, of which the scan itself {summary['timings']['total']:.2f} s (walk and change "
          f"detection {summary['timings']['walk']:.2f} s); "
          f"{result.stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
