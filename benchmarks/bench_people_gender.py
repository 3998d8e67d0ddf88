"""People (issue 23): the tags' gender through ``phototag scan`` on celebrity faces, undated.

    python benchmarks/bench_people_gender.py [--work DIR] [--keep]

CelebA's validation crops (``../shared/data/celeba_gender/val``, 1,000 women and 1,000 men; never
trained on) are each pasted into the middle of a 256 x 256 grey photo (YuNet wants some room around
a face) and written as JPEG files into a temporary folder (outside the repository; removed at the
end unless ``--keep``). ``phototag scan FOLDER --db TMP.db --no-exif`` runs in a subprocess (the
shipped models, the real path), and the index is read, each photo's largest face:

* gender accuracy of the face alone (``faces.face_gender``) and of the tags (``faces.gender``, the
  person's pooled gender where the face belongs to a person of several faces), women and men;
* the faces the pooling changed: how many it set right and how many it set wrong;
* the people of several faces, and those whose faces' labels disagree (a woman and a man in one
  person: a wrong merge, for certain; merges of two people of one gender are not seen).

CelebA's crops carry no identity, so the grouping's own precision and recall cannot be measured
here (LAG's are in ``bench_people.py``); about a tenth of these crops are of a celebrity with
another crop in the set. The data is research-only: nothing of it is written into the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_people_cli  # noqa: E402

CELEBA = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_gender" / "val"
CANVAS = 256


def prepare(folder: Path) -> dict[str, str]:
    """The photos, named by their label and CelebA number; returns file name -> "f" or "m"."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = {}
    for gender, sub in (("f", "female"), ("m", "male")):
        for path in sorted((CELEBA / sub).glob("*.jpg")):
            face = Image.open(path).convert("RGB")
            photo = Image.new("RGB", (CANVAS, CANVAS), (128, 128, 128))
            photo.paste(face, ((CANVAS - face.width) // 2, (CANVAS - face.height) // 2))
            name = f"{sub}-{path.name.split('.')[0]}.jpg"
            photo.save(folder / name, quality=95)
            labels[name] = gender
    return labels


def measure(db: Path, labels: dict[str, str]) -> dict:
    con = sqlite3.connect(str(db))
    rows = con.execute("select p.path, f.w * f.h, f.person_id, f.face_gender, f.gender from faces f"
                       " join photos p on p.id = f.photo_id").fetchall()
    size = dict(con.execute("select person_id, count(*) from faces where person_id is not null group by person_id"))
    con.close()
    largest: dict[str, tuple] = {}
    for path, area, person, alone, tagged in rows:
        name = Path(path).name
        if name not in largest or area > largest[name][0]:
            largest[name] = (area, person, alone, tagged)
    out: dict = {"photos": len(labels), "no_face": len(labels) - len(largest)}
    right = {"alone": defaultdict(int), "tags": defaultdict(int)}
    total: dict[str, int] = defaultdict(int)
    fixed = broken = 0
    members: dict[int, set] = defaultdict(set)
    for name, (_, person, alone, tagged) in largest.items():
        truth = labels[name]
        total[truth] += 1
        right["alone"][truth] += alone == truth
        right["tags"][truth] += tagged == truth
        fixed += alone != truth and tagged == truth
        broken += alone == truth and tagged != truth
        if person is not None and size.get(person, 0) > 1:
            members[person].add(truth)
    for what in ("alone", "tags"):
        out[what] = {"accuracy": round(sum(right[what].values()) / max(sum(total.values()), 1), 4),
                     "women": round(right[what]["f"] / max(total["f"], 1), 4),
                     "men": round(right[what]["m"] / max(total["m"], 1), 4)}
    several = [p for p, n in size.items() if n > 1]
    out.update({"set_right_by_the_person": fixed, "set_wrong_by_the_person": broken,
                "people_of_several_faces": len(several),
                "faces_in_them": sum(size[p] for p in several),
                "people_with_a_woman_and_a_man": sum(1 for p in several if len(members[p]) > 1)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="phototag-people-gender-"))
    try:
        labels = prepare(work / "celeba")
        ran = bench_people_cli.scan(work / "celeba", work / "index.db", work / "scan.log")
        print(json.dumps({"command": ran["command"], "scan_wall_s": ran["wall_s"],
                          **measure(work / "index.db", labels)}))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
