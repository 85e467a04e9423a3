"""The written rule that makes a model a default. A model is eligible only if, on every condition of its benchmark
(each CRF and bitrate of `benchmarks/compressed_video.py` for video; Set5, Set14 and JPEG'd photos for images), its
mean gain is at least every other candidate's minus `MARGIN_DB`, and, where the benchmark measures it, its error
flickers at most `MAX_FLICKER` times as much as bicubic's (issue 27's stability goal: a model that sharpens each
frame differently is no default for video). Among the eligible, the one whose worst clip (or image) is best wins.
A model that is not measured on a condition cannot be eligible. Where none is eligible, the margin gives way but
steadiness does not: the steady model that trails least wins.

The rule only compares numbers; `srstream.defaults` decides which models are candidates (what the hardware runs)
and reads their measured rows from the cards.
"""

from __future__ import annotations

from dataclasses import dataclass

MARGIN_DB = 0.05  # a default may trail the best model on a condition by this much, no more
MAX_FLICKER = 1.05  # and its error may change from frame to frame at most 5 % more than bicubic's
TOLERANCE = 1e-9  # cards round to 0.001 dB; this only absorbs float error


@dataclass(frozen=True)
class Standing:
    """One model on one condition: its mean gain over the baseline, its gain on the worst clip or image, and (video)
    the flicker of its error against bicubic's."""

    mean: float
    worst: float | None = None
    flicker: float | None = None


Table = dict[str, dict[str, Standing]]  # model -> condition -> standing


def best_means(table: Table) -> dict[str, tuple[str, float]]:
    """Per condition: the model with the highest mean gain and that gain."""
    out: dict[str, tuple[str, float]] = {}
    for model, row in table.items():
        for condition, standing in row.items():
            if condition not in out or standing.mean > out[condition][1]:
                out[condition] = (model, standing.mean)
    return out


def shortfalls(table: Table, model: str, margin: float = MARGIN_DB) -> list[str]:
    """Where `model` loses under the rule, one phrase a condition ('crf18: +0.60 dB, 0.26 below fast-x4'); empty
    where it is eligible."""
    out = []
    for condition, (leader, best) in sorted(best_means(table).items()):
        standing = table[model].get(condition)
        if standing is None:
            out.append(f"{condition}: not measured")
        elif standing.mean < best - margin - TOLERANCE:
            out.append(f"{condition}: {standing.mean:.2f} dB, {best - standing.mean:.2f} below {leader}")
        elif standing.flicker is not None and standing.flicker > MAX_FLICKER + TOLERANCE:
            out.append(f"{condition}: its error flickers {standing.flicker:.2f}x bicubic's")
    return out


def eligible(table: Table, margin: float = MARGIN_DB) -> list[str]:
    """The models within `margin` of the best mean gain on every condition, their error steady, in table order."""
    return [model for model in table if not shortfalls(table, model, margin)]


def worst_case(row: dict[str, Standing]) -> float:
    """A model's worst clip over all conditions; -inf where some condition has no worst-clip figure."""
    worst = [s.worst for s in row.values() if s.worst is not None]
    return min(worst) if worst and len(worst) == len(row) else float("-inf")


def largest_deficit(table: Table, model: str) -> float:
    """How far `model` trails the best mean gain on its worst condition (inf where a condition is not measured)."""
    return max(
        (
            best - table[model][c].mean if c in table[model] else float("inf")
            for c, (_, best) in best_means(table).items()
        ),
        default=0.0,
    )


def steady(row: dict[str, Standing]) -> bool:
    """Whether a model's error flickers at most `MAX_FLICKER` times bicubic's wherever that is measured."""
    return all(s.flicker is None or s.flicker <= MAX_FLICKER + TOLERANCE for s in row.values())


def pick(table: Table, margin: float = MARGIN_DB) -> str | None:
    """The default under the rule: among the eligible, the best worst clip (ties: the higher mean gain summed over
    conditions). Where no model is eligible (each leads somewhere by more than the margin), the steady model (any
    model, if none is steady) that trails least on its worst condition; None for an empty table."""
    if not table:
        return None
    fallback = [m for m in table if steady(table[m])] or list(table)
    candidates = eligible(table, margin) or [min(fallback, key=lambda m: largest_deficit(table, m))]
    return max(candidates, key=lambda m: (worst_case(table[m]), sum(s.mean for s in table[m].values())))
