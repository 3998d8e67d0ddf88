"""Benchmark decoding a RAW's embedded preview against decoding a JPEG of the same size.

Makes one camera-sized picture (default 6000 x 4000, a generated scene), writes it as a JPEG, as a
DNG (pidng) carrying that same JPEG as its full-size preview, as the same DNG without a preview
(demosaiced at half size) and as a HEIC, and times ``phototag.images.decode`` on each (median of
``--runs``, the file already in memory, the scan's default ``--decode-size``). Not a test; run it as

    python benchmarks/bench_raw.py
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "tests")]

from formats import camera_jpeg, dng_bytes, heic_bytes, with_preview  # noqa: E402
from photos import scene  # noqa: E402

from phototag.images import DEFAULT_DECODE_SIZE, decode  # noqa: E402


def timed(data: bytes, runs: int, raw: bool, decode_size: int) -> tuple[float, str, tuple[int, int]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        pixels, info = decode(data, decode_size, raw=raw)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, info.extra.get("decoded_from", info.format), pixels.shape[1::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--decode-size", type=int, default=DEFAULT_DECODE_SIZE)
    args = parser.parse_args()
    picture = scene(args.width, args.height, random.Random(1))
    jpeg = camera_jpeg(picture, orientation=6)
    raw = dng_bytes(picture, orientation=6)
    files = [("JPEG", jpeg, False), ("RAW (DNG) with full-size preview", with_preview(raw, jpeg), True),
             ("RAW (DNG) without preview", raw, True), ("HEIC", heic_bytes(picture, orientation=6), False)]
    print(f"{args.width} x {args.height}, decode size {args.decode_size}, median of {args.runs} runs")
    print(f"{'file':34} {'MB':>6} {'ms':>8}  decoded from, size")
    for name, data, is_raw in files:
        ms, source, size = timed(data, args.runs, is_raw, args.decode_size)
        print(f"{name:34} {len(data) / 1e6:6.1f} {ms:8.1f}  {source}, {size[0]} x {size[1]}")


if __name__ == "__main__":
    main()
