"""The written rule that picks the default models, on made-up tables and on the shipped benchmark's JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from srstream import defaults
from srstream.default_rule import Standing, eligible, pick, shortfalls
from training.weights import shipped_models

ROOT = Path(__file__).resolve().parent.parent


def _table(**rows: dict[str, tuple[float, float | None]]):
    return {m: {c: Standing(*v) for c, v in r.items()} for m, r in rows.items()}


def test_a_model_more_than_the_margin_below_the_best_anywhere_is_not_eligible():
    table = _table(a={"crf18": (1.00, 0.2), "crf35": (0.00, -0.1)},
                   b={"crf18": (0.96, 0.3), "crf35": (0.30, 0.1)},
                   c={"crf18": (0.50, 0.4), "crf35": (0.31, 0.2)})
    assert eligible(table) == ["b"]  # a trails at crf35 by 0.30, c at crf18 by 0.50
    assert shortfalls(table, "a") == ["crf35: 0.00 dB, 0.31 below c"]
    assert pick(table) == "b"


def test_among_the_eligible_the_best_worst_clip_wins():
    table = _table(a={"crf28": (0.50, -0.3)}, b={"crf28": (0.47, 0.05)}, c={"crf28": (0.40, 0.9)})
    assert eligible(table) == ["a", "b"] and pick(table) == "b"


def test_a_condition_not_measured_makes_a_model_ineligible():
    table = _table(a={"crf18": (0.5, 0.1), "crf28": (0.5, 0.1)}, b={"crf18": (0.9, 0.5)})
    assert shortfalls(table, "b") == ["crf28: not measured"] and pick(table) == "a"


def test_a_model_whose_error_flickers_more_than_5_percent_over_bicubics_is_not_eligible():
    table = {"steady": {"crf28": Standing(0.70, 0.2, 0.98)}, "jittery": {"crf28": Standing(0.73, 0.3, 1.12)}}
    assert eligible(table) == ["steady"] and pick(table) == "steady"
    assert shortfalls(table, "jittery") == ["crf28: its error flickers 1.12x bicubic's"]


def test_where_no_model_is_eligible_the_one_trailing_least_is_picked():
    table = _table(a={"crf18": (1.0, 0.0), "crf35": (0.0, 0.0)}, b={"crf18": (0.8, 0.0), "crf35": (0.1, 0.0)})
    assert eligible(table) == [] and pick(table) == "a"  # a trails by 0.10, b by 0.20


def test_where_no_model_is_eligible_a_flickering_one_does_not_win_on_the_margin_alone():
    """As the x2 CPU candidates measured: the QP model leads at CRF 35 by 0.08 dB but its error flickers 1.12x
    bicubic's; the steady model trailing by 0.08 is the default, not the jittery one trailing by 0.01."""
    table = {"steady": {"crf18": Standing(2.06, 0.05, 0.94), "crf35": Standing(0.37, 0.05, 0.99)},
             "jittery": {"crf18": Standing(2.07, 0.08, 1.02), "crf35": Standing(0.45, 0.08, 1.12)}}
    assert eligible(table) == [] and pick(table) == "steady"
    del table["steady"]
    assert pick(table) == "jittery"  # none steady: the margin alone decides


def test_a_cpu_default_costs_at_most_1_3_times_the_cheapest_measured_model():
    assert defaults.affordable({"fast": 30.0, "fast-ish": 24.0, "big": 2.5, "unmeasured": None}) == {"fast",
                                                                                                      "fast-ish"}
    assert defaults.affordable({"a": None, "b": None}) == {"a", "b"}  # nothing measured: nothing to exclude


def _report_table(report: dict, accelerator: bool) -> dict:
    """The rule's table straight from a compressed_video.py report: mean and worst-clip gain per condition."""
    shipped = shipped_models()
    models = [m for m in report["models"] if m in shipped]
    summary = report["summary"]
    if not accelerator:
        keep = defaults.affordable({m: sum(r[m]["fps"] for r in summary.values()) / len(summary) for m in models})
        models = [m for m in models if m in keep]
    return {m: {cond: Standing(row[m]["gain_db"], min(c["conditions"][cond][m]["gain_db"] for c in report["clips"]),
                               row[m]["flicker_ratio"])
                for cond, row in summary.items()} for m in models}


def _default_report(scale: int = 4) -> dict:
    """The report the video default at `scale` was chosen on: the one its card names."""
    prefix = "compressed_" if scale == 4 else f"compressed_x{scale}_"
    row = shipped_models()[defaults.video_model("cpu", scale=scale)].card["evaluation"][prefix + "crf28"]
    return json.loads((ROOT / row["report"]).read_text())


@pytest.mark.parametrize("scale", [4, 2])
def test_the_shipped_video_defaults_are_the_rules_pick_on_the_benchmarks_json(scale):
    report = _default_report(scale)
    assert report["scale"] == scale and report["split"] == "heldout" and len(report["clips"]) >= 10
    assert len({c["group"] for c in report["clips"]}) >= 4
    for accelerator in (False, True):
        assert pick(_report_table(report, accelerator)) == pick(defaults.video_table(scale, accelerator))
    assert defaults.video_model("cpu", scale=scale) == pick(_report_table(report, False))


@pytest.mark.parametrize("scale", [4, 2])
def test_the_cards_carry_the_benchmarks_figures_for_every_model_it_measured(scale):
    report = _default_report(scale)
    prefix = "compressed_" if scale == 4 else f"compressed_x{scale}_"
    shipped = shipped_models()
    for model in (m for m in report["models"] if m in shipped):
        for cond, row in report["summary"].items():
            card = shipped[model].card["evaluation"][prefix + cond]
            worst = min(c["conditions"][cond][model]["gain_db"] for c in report["clips"])
            assert abs(card["gain_db"] - row[model]["gain_db"]) < 2e-3 and abs(card["worst_gain_db"] - worst) < 1e-3


def test_the_image_default_is_the_rules_pick_on_set5_set14_and_jpeg_photos():
    table = defaults.image_table()
    assert set(next(iter(table.values()))) == {"Set5_gain", "Set14_gain", "jpeg_q75", "jpeg_q50"}
    report = json.loads((ROOT / "benchmarks" / "results" / "images_cpu.json").read_text())
    from_json = {m: {c: Standing(rows[m]["gain_db"], rows[m]["worst_gain_db"]) for c, rows in
                     report["conditions"].items()} for m in table}
    assert defaults.image_model() == pick(table) == pick(from_json) == "srresnet-x4"


def test_srstream_models_names_each_default_and_where_the_others_lose(capsys):
    from srstream.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"default for video on a CPU: {defaults.video_model('cpu')}" in out
    assert "default for images: srresnet-x4" in out and "default for x2 video on a CPU: " in out
    assert "camera-fast-x4 is not the default for video on a CPU: crf18" in out


@pytest.mark.parametrize("option, scale", [(["--outscale", "2"], 2), (["--size", "640x-1"], 2),
                                           (["--outscale", "3"], 4), ([], 4)])
def test_the_output_size_picks_the_default_of_its_scale(tmp_path, capsys, option, scale):
    from srstream.cli import main

    clip = ROOT / "tests" / "data" / "video" / "vtest_320x180_2s.mp4"
    assert main(["upscale", str(clip), str(tmp_path / "o.mp4"), "-t", "0.2", *option]) == 0
    model = defaults.video_model("cpu", scale=scale)
    err = capsys.readouterr().err
    assert f"srstream: {model} x{shipped_models()[model].scale} on cpu" in err
    assert ("(the x2 video default on a CPU" in err) == (scale == 2)
