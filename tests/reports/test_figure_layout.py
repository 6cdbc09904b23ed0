"""The report figures keep everything inside their edges: the Benchmark tab's radar (the paper's Figure 9) and
the Statistics tab's Figure-3 panels, drawn with the hardest inputs the app meets (long model and domain names,
metrics missing for some or all models, long "why no values" reasons). Measured with matplotlib's own renderer:
the union of everything drawn (titles, tick and axis labels, legends, notes) lies inside the figure."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from curation import report  # noqa: E402

FIXTURE = Path(__file__).with_name("paper_table3.json")
LONG_MODEL = "A very long generator model name v2.1-preview (480p, 5 s)"


def drawn_extent(fig):
    """(everything drawn, in inches; the figure's size in inches), after a draw at the figure's own dpi."""
    fig.canvas.draw()
    return fig.get_tightbbox(fig.canvas.get_renderer()), fig.get_size_inches()


def assert_inside(fig, name: str) -> None:
    box, (w, h) = drawn_extent(fig)
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= w and box.y1 <= h, (name, box.extents, (w, h))


def hard_board() -> report.Leaderboard:
    board = report.Leaderboard.from_dict(json.loads(FIXTURE.read_text(encoding="utf-8")))
    board.rows[2].model = LONG_MODEL
    board.rows[0].values[3] = None                # AesScore: one model missing ("(1 missing)" on two lines)
    for r in board.rows:                          # GmeScore: unavailable for every model
        r.values[4] = None
    board.title = "InnoAds-Bench: a benchmark set with a rather long name"
    return board


def test_radar_labels_and_legend_stay_inside_the_figure():
    board = hard_board()
    fig = report.radar_figure(board)
    try:
        assert_inside(fig, "radar")
        r = fig.canvas.get_renderer()
        fb = fig.bbox
        labels = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
        assert [t.get_text().split("\n")[0] for t in labels] == board.metrics     # the six axes, each named
        assert "GmeScore\n(unavailable)" in [t.get_text() for t in labels]
        for t in labels:                          # each axis label on its own, in pixels
            e = t.get_window_extent(r)
            assert fb.x0 <= e.x0 and e.x1 <= fb.x1 and fb.y0 <= e.y0 and e.y1 <= fb.y1, (t.get_text(), e.bounds)
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert len(legend) == 10 and LONG_MODEL not in legend                     # the long name is wrapped
        assert any(t.replace("\n", " ") == LONG_MODEL for t in legend)
    finally:
        plt.close(fig)


def test_radar_png_holds_the_whole_figure(tmp_path):
    """The saved file is not smaller than the drawing: nothing was cut off when it was written."""
    from PIL import Image

    board = hard_board()
    out = report.render_radar(board, tmp_path / "radar.png", None)
    fig = report.radar_figure(board)
    box, _ = drawn_extent(fig)
    plt.close(fig)
    with Image.open(out["png"]) as im:
        assert im.size[0] >= box.width * 120 - 2 and im.size[1] >= box.height * 120 - 2


def test_statistics_figures_stay_inside_and_notes_inside_their_panel(demo_workspace, tmp_path):
    from curation import stats
    from storage import Workspace

    with Workspace.open(demo_workspace) as ws:
        st = stats.compute_stats(ws, tmp_path / "stats")
    hard = copy.deepcopy(st)
    first = next(iter(st["domains"].values()))
    for k in range(6):                            # twelve domains: a legend of six rows under the pie
        hard["domains"][f"Extra domain number {k} with a long name"] = copy.deepcopy(first)
    reason = ("aesthetic head improved-l14: weights not found (looked for /root/.cache/advfx/models/aesthetic/"
              "sac+logos+ava1-l14-linearMSE.pth); get them with python -m curation models download")
    for m in hard["metrics"].values():
        m["summary_pct"] = {"n": 0}
        m["status_counts"], m["reasons"] = {"unavailable": 12}, {reason: 12}
    figs = stats.stats_figures(hard)
    try:
        assert set(figs) == {"domains", "metrics", "prompt_lengths", "top_terms"}
        for name, fig in figs.items():
            assert_inside(fig, name)
        r = figs["metrics"].canvas.get_renderer()
        notes = 0
        for ax in figs["metrics"].axes:           # the "no values" note stays inside its own panel
            for t in ax.findobj(Text):
                if t.get_text().startswith("no values"):
                    notes += 1
                    e, a = t.get_window_extent(r), ax.get_window_extent(r)
                    assert a.x0 <= e.x0 and e.x1 <= a.x1, (t.get_text(), e.bounds, a.bounds)
        assert notes == 6
    finally:
        for fig in figs.values():
            plt.close(fig)
