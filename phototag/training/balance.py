"""How evenly the gender decision is right: accuracy per (data set, gender, age decade) cell, the
reliability of P(female), and the decision threshold chosen by the worst cell.

A cell with fewer than ``min_cell`` faces is shown but does not rank (worst, best, spread, the
threshold choice): one face is 5 points of a 20-face cell. Faces without an age (CelebA) form one
cell per gender, decade ``all``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phototag.ages import LAST_DECADE, decade_label, decades

ALL = "all"  # the decade of faces without an age
MIN_CELL = 20
RELIABILITY_BINS = 10
MAX_OVERALL_DROP = 0.005  # a threshold may cost each data set at most this much overall accuracy
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
SWEEP_SHOWN = np.round(np.arange(0.3, 0.701, 0.05), 2)  # thresholds listed in the report


def decade_names(age: np.ndarray) -> np.ndarray:
    """``0-9`` ... ``80-89``, ``90+`` for each age (:func:`phototag.ages.decades`); ``all`` where it
    is unknown (NaN)."""
    return np.array([ALL if d < 0 else decade_label(d, LAST_DECADE) for d in decades(age)], dtype=object)


def _decade_order(name: str) -> int:
    return -1 if name == ALL else int(name.split("-")[0].rstrip("+"))


def cell_report(source: np.ndarray, female: np.ndarray, age: np.ndarray, p_female: np.ndarray,
                threshold: float | np.ndarray = 0.5, min_cell: int = MIN_CELL) -> dict:
    """Per data set: overall, women's and men's accuracy, every gender x decade cell, the worst and
    best ranked cell and their spread (best - worst), all at ``threshold`` on P(female) (one, or
    one per face)."""
    right = (p_female >= threshold) == female
    decade = decade_names(age)
    report = {}
    for src in dict.fromkeys(source):
        m = source == src
        r = {"n": int(m.sum()), "accuracy": round(float(right[m].mean()), 4)}
        for name, g in (("women", True), ("men", False)):
            mg = m & (female == g)
            if mg.any():
                r[name] = round(float(right[mg].mean()), 4)
        cells = {}
        for g, letter in ((True, "f"), (False, "m")):
            for d in sorted(set(decade[m & (female == g)]), key=_decade_order):
                mc = m & (female == g) & (decade == d)
                cells[f"{letter} {d}"] = {"n": int(mc.sum()), "accuracy": round(float(right[mc].mean()), 4)}
        r["cells"] = cells
        ranked = {k: c["accuracy"] for k, c in cells.items() if c["n"] >= min_cell}
        if ranked:
            worst, best = min(ranked, key=ranked.get), max(ranked, key=ranked.get)
            r["worst"] = {"cell": worst, "accuracy": ranked[worst]}
            r["best"] = {"cell": best, "accuracy": ranked[best]}
            r["spread"] = round(ranked[best] - ranked[worst], 4)
        report[str(src)] = r
    return report


def reliability(female: np.ndarray, p_female: np.ndarray, bins: int = RELIABILITY_BINS) -> dict:
    """Reliability table of P(female): per equal-width bin the count, mean predicted P(female) and
    observed share of women; ECE = sum over bins of count/N * |mean predicted - observed|."""
    index = np.minimum((p_female * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = index == b
        if not m.any():
            continue
        mean_p, share = float(p_female[m].mean()), float(female[m].mean())
        ece += m.sum() / len(p_female) * abs(mean_p - share)
        rows.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int(m.sum()),
                     "mean_p_female": round(mean_p, 4), "female_share": round(share, 4)})
    return {"bins": rows, "ece": round(ece, 4)}


def _worst(cells: dict, min_cell: int) -> float:
    ranked = [c["accuracy"] for r in cells.values() for c in r["cells"].values() if c["n"] >= min_cell]
    return min(ranked, default=float("nan"))


def choose_threshold(source: np.ndarray, female: np.ndarray, age: np.ndarray, p_female: np.ndarray,
                     current: float = 0.5, min_cell: int = MIN_CELL, max_drop: float = MAX_OVERALL_DROP,
                     grid: np.ndarray = THRESHOLD_GRID,
                     thresholds_at: Callable[[float], np.ndarray] | None = None) -> dict:
    """The threshold on P(female) whose worst ranked cell over all data sets is best, among those
    that raise the worst cell and cost no data set more than ``max_drop`` of its overall accuracy at
    ``current`` (ties: the higher mean overall accuracy, then the nearer to ``current``); ``current``
    when none does. ``thresholds_at(t)``: the per-face thresholds when the swept one is ``t`` (faces
    with a threshold of their own, by estimated age, keep it); default ``t`` for every face."""
    at = thresholds_at or (lambda t: t)
    before = cell_report(source, female, age, p_female, at(current), min_cell)
    worst_before = _worst(before, min_cell)
    chosen, chosen_key, sweep = current, None, []
    for t in grid:
        cells = cell_report(source, female, age, p_female, at(float(t)), min_cell)
        worst = _worst(cells, min_cell)
        if np.isclose(SWEEP_SHOWN, t).any():
            sweep.append({"threshold": float(t), "worst": worst, "accuracy": {s: r["accuracy"] for s, r in cells.items()}})
        if not worst > worst_before or any(cells[s]["accuracy"] < before[s]["accuracy"] - max_drop for s in cells):
            continue
        key = (worst, np.mean([r["accuracy"] for r in cells.values()]), -abs(t - current))
        if chosen_key is None or key > chosen_key:
            chosen, chosen_key = float(t), key
    after = cell_report(source, female, age, p_female, at(chosen), min_cell)
    return {"current": current, "chosen": chosen, "min_cell": min_cell, "max_overall_drop": max_drop,
            "worst_before": worst_before, "worst_after": _worst(after, min_cell), "cells_after": after,
            "sweep": sweep}
