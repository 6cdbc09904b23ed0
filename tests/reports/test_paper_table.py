"""The paper-table fixture: Table 3's shape (ten models x six metrics, placeholder numbers) through the
table and radar renderers; bold/underline land on the per-column best and second best, ties included."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from curation import report

FIXTURE = Path(__file__).with_name("paper_table3.json")


def _board():
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data, report.Leaderboard.from_dict(data)


def test_marks_follow_column_max_and_second_with_ties():
    data, board = _board()
    assert len(board.rows) == 10 and len(board.metrics) == 6
    marks = report.column_marks(board)
    for j, metric in enumerate(board.metrics):
        exp = data["expected"][metric]
        best = sorted(m for (m, jj), mk in marks.items() if jj == j and mk == "best")
        second = sorted(m for (m, jj), mk in marks.items() if jj == j and mk == "second")
        assert best == sorted(exp["best"]), metric
        assert second == sorted(exp["second"]), metric


def test_rank_marks_edge_cases():
    assert report.rank_marks([1.0, 1.0, 1.0]) == ["best", "best", "best"]
    assert report.rank_marks([None, 2.0, 1.0]) == ["", "best", "second"]
    assert report.rank_marks([1.004, 1.0, 0.5]) == ["best", "best", "second"]  # equal at 2 decimals
    assert report.rank_marks([]) == []


def test_markdown_csv_html_render_the_marks(tmp_path):
    data, board = _board()
    files = report.write_leaderboard(board, tmp_path)
    md = Path(files["md"]).read_text(encoding="utf-8")
    rows = [line for line in md.splitlines() if line.startswith("| ") and "Model" not in line]
    assert len(rows) == 10
    # grouped by type in the order given: the six open-source models, then the four commercial ones
    assert rows[0].startswith("| Open-source | CogVideoX-5B-I2V")
    assert rows[6].startswith("| Commercial | Kling 2.1")
    by_model = {r.split("|")[2].strip(): [c.strip() for c in r.split("|")[3:9]] for r in rows}
    for j, metric in enumerate(board.metrics):
        exp = data["expected"][metric]
        for model, cells in by_model.items():
            cell = cells[j]
            if model in exp["best"]:
                assert re.fullmatch(r"\*\*\d+\.\d\d\*\*", cell), (metric, model, cell)
            elif model in exp["second"]:
                assert re.fullmatch(r"<u>\d+\.\d\d</u>", cell), (metric, model, cell)
            else:
                assert re.fullmatch(r"\d+\.\d\d", cell), (metric, model, cell)
    # the numbers are the fixture's
    assert by_model["Veo 3"][0] == "**53.06**"

    html = Path(files["html"]).read_text(encoding="utf-8")
    assert html.count('<td class="best">') == sum(len(v["best"]) for v in data["expected"].values())
    assert html.count('<td class="second">') == sum(len(v["second"]) for v in data["expected"].values())
    assert 'rowspan="6">Open-source' in html and 'rowspan="4">Commercial' in html

    got = list(csv.DictReader(io.StringIO(Path(files["csv"]).read_text(encoding="utf-8"))))
    assert len(got) == 10
    veo = next(r for r in got if r["model"] == "Veo 3")
    assert veo["MotionXScore"] == "53.06" and veo["MotionXScore mark"] == "best" and veo["type"] == "Commercial"
    kling = next(r for r in got if r["model"] == "Kling 2.1")
    assert kling["ProductScore mark"] == "second" and kling["TSScore mark"] == "best"


def test_radar_renders_ten_series(tmp_path):
    _, board = _board()
    out = report.render_radar(board, tmp_path / "radar.png", tmp_path / "radar.svg")
    assert out["series"] == 10
    svg = (tmp_path / "radar.svg").read_text(encoding="utf-8")
    assert sum(f'id="radar-series-{i}"' in svg for i in range(10)) == 10
    assert 'id="radar-series-10"' not in svg
    from PIL import Image

    with Image.open(tmp_path / "radar.png") as im:
        assert im.size[0] > 500 and im.size[1] > 400
    for m in board.metrics:
        assert m in svg or m.replace("Score", "") in svg  # axis labels rendered as text glyph ids or paths


def test_missing_values_are_shown_with_status(tmp_path):
    board = report.Leaderboard(metrics=["A", "B"], rows=[
        report.Row("m1", "x", [50.0, None], ["", "unavailable"]),
        report.Row("m2", "x", [40.0, None], ["", "unavailable"])], notes=["B unavailable: no weights"])
    md = report.to_markdown(board)
    assert "| x | m1 | **50.00** | unavailable |" in md
    assert "<u>40.00</u>" in md and "B unavailable: no weights" in md
    r = report.render_radar(board, None, tmp_path / "r.svg")
    assert r["series"] == 2
