"""Benchmark decoding a RAW's embedded preview against decoding a JPEG of the same size.

Makes one camera-sized picture (default 6000 x 4000, a generated scene), writes it as a JPEG, as a
DNG (pidng) carrying that same JPEG as its full-size preview, as the same DNG without a preview
(demosaiced at half size) and as a HEIC, and times ``phototag.images.decode`` on each (median of
``--runs``, the file already in memory, the scan's default ``--decode-size``). Then times how long
decompression bombs take to be refused. Not a test; run it as

    python benchmarks/bench_raw.py            # formats and bombs
    python benchmarks/bench_raw.py --bombs    # bombs only
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1])]

from phototag.images import DEFAULT_DECODE_SIZE, TooLarge, decode  # noqa: E402
from phototag.testing.formats import (camera_jpeg, dng_bytes, heic_bytes, jpeg_bomb, png_bomb,  # noqa: E402
                                      with_claimed_size, with_preview)
from phototag.testing.photos import scene  # noqa: E402


def timed(data: bytes, runs: int, raw: bool, decode_size: int) -> tuple[float, str, tuple[int, int]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        pixels, info = decode(data, decode_size, raw=raw)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, info.extra.get("decoded_from", info.format), pixels.shape[1::-1]


def bombs(runs: int) -> None:
    """Print how long each bomb takes to be refused (median)."""
    print(f"\n{'bomb':34} {'KB':>6} {'ms':>8}  refused as")
    for name, data, raw in [("PNG claiming 30000 x 30000", png_bomb(30000, 30000), False),
                            ("JPEG claiming 65000 x 65000", jpeg_bomb(65000, 65000), False),
                            ("DNG claiming 60000 x 60000", with_claimed_size(dng_bytes(scene(64, 48, random.Random(2))),
                                                                             60000, 60000), True)]:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            try:
                decode(data, raw=raw)
            except TooLarge as e:
                reason = str(e).split(" (")[0]
            times.append(time.perf_counter() - start)
        print(f"{name:34} {len(data) / 1e3:6.1f} {statistics.median(times) * 1000:8.2f}  {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--decode-size", type=int, default=DEFAULT_DECODE_SIZE)
    parser.add_argument("--bombs", action="store_true", help="Only time the decompression bombs.")
    args = parser.parse_args()
    if args.bombs:
        return bombs(args.runs)
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
    bombs(args.runs)


if __name__ == "__main__":
    main()
