"""A designer's day (issue 20) below the browser: the up-next jump keeps the items clicked past, the report view
draws the leaderboard as a table with report.md's marks, transparent pictures keep their alpha in thumbnails
and display copies, the frame counter is drawn in the player's bar."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image, ImageDraw

from curation import overlays as ovl
from curation import report
from labeling import render, render_report
from labeling.ui_common import nav_advance, nav_current, nav_jump, nav_prev, new_nav


def walk(queue: list[int]):
    """A nav state over `queue` and a fetch that serves it (labelled items are not removed: a plain list)."""
    st = new_nav({"label_state": "any"})
    return st, (lambda offset, limit: queue[offset:offset + limit])


def ahead(st) -> list[int]:
    return st["hist"][st["i"] + 1:] + st["queue"]


def test_jump_keeps_the_items_clicked_past_next():
    st, fetch = walk(list(range(1, 11)))
    nav_advance(st, fetch)
    assert nav_current(st) == 1 and ahead(st)[:4] == [2, 3, 4, 5]
    nav_jump(st, 4)
    assert nav_current(st) == 4 and ahead(st)[:3] == [2, 3, 5]
    nav_advance(st, fetch)                            # labelled or next: the first one clicked past
    assert nav_current(st) == 2
    nav_advance(st, fetch)
    assert nav_current(st) == 3


def test_jump_after_going_back_keeps_the_seen_items_ahead():
    """Back on an earlier item, the ones seen after it are ahead in the history; a jump past them (into the
    history or into the queue) left them behind the position before, out of the list."""
    st, fetch = walk(list(range(1, 11)))
    for _ in range(4):
        nav_advance(st, fetch)                        # 1, 2, 3, 4 seen; 4 on screen
    nav_prev(st)
    nav_prev(st)
    assert nav_current(st) == 2 and ahead(st)[:4] == [3, 4, 5, 6]
    nav_jump(st, 6)                                   # from the queue, past 3 and 4 (history) and 5 (queue)
    assert nav_current(st) == 6 and ahead(st)[:3] == [3, 4, 5]
    nav_jump(st, 4)                                   # from the history, past 3
    assert nav_current(st) == 4 and ahead(st)[:3] == [3, 5, 7]
    nav_advance(st, fetch)
    assert nav_current(st) == 3
    before = (list(st["hist"]), st["i"], list(st["queue"]))
    nav_jump(st, 2)                                   # behind: not in the list, ignored
    nav_jump(st, 99)                                  # not in the queue at all
    assert (st["hist"], st["i"], st["queue"]) == before


class Cells(HTMLParser):
    """(row, column) -> (text, class) of the leaderboard table's body cells, type column left out."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag == "td" and self.in_body and a.get("class") != "type":
            self.cell = ["", a.get("class") or ""]

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None
        elif tag == "tbody":
            self.in_body = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[0] += data


def hand_board() -> report.Leaderboard:
    return report.Leaderboard(
        metrics=["MotionXScore", "TSScore", "ProductScore"], type_order=["Open", "Closed"],
        rows=[report.Row("m1", "Open", [50.0, 80.0, None], ["", "", "unavailable"]),
              report.Row("m2", "Open", [40.0, 80.0, 30.0]),
              report.Row("m3", "Closed", [45.0, 70.004, 20.0])],
        backends=["opencv-dis, v2.1", "rapidocr, v1.3", "minisam, v1.3"], title="hand-made")


def test_report_view_draws_the_leaderboard_as_a_table_with_the_markdown_marks(tmp_path):
    board = hand_board()
    report.write_leaderboard(board, tmp_path)
    md = report.to_markdown(board)
    text = f"# hand-made\n\n## Leaderboard\n\n{md}\n![radar](radar.png)\n\n## Per-domain breakdown\n"
    shown = render_report.report_markdown(tmp_path, text)
    assert md not in shown and shown.startswith("# hand-made\n\n## Leaderboard\n")
    assert f"![radar](/gradio_api/file={tmp_path}/radar.png)" in shown and "## Per-domain breakdown" in shown
    block = shown[shown.index('<div class="lb-page">'):shown.index("</div>") + 6]
    assert "\n\n" not in block                         # one HTML block: Markdown would end it at a blank line
    parser = Cells()
    parser.feed(block)
    got = {(row[0][0], board.metrics[j]): tuple(c) for row in parser.rows for j, c in enumerate(row[1:])}
    assert [row[0][0] for row in parser.rows] == ["m1", "m2", "m3"]          # grouped: Open, then Closed
    assert got == {
        ("m1", "MotionXScore"): ("50.00", "best"), ("m2", "MotionXScore"): ("40.00", ""),
        ("m3", "MotionXScore"): ("45.00", "second"),
        ("m1", "TSScore"): ("80.00", "best"), ("m2", "TSScore"): ("80.00", "best"),      # a tie shares the mark
        ("m3", "TSScore"): ("70.00", "second"),
        ("m1", "ProductScore"): ("unavailable", "missing"), ("m2", "ProductScore"): ("30.00", "best"),
        ("m3", "ProductScore"): ("20.00", "second")}
    # the same cells are bold / underlined in report.md: one ranking rule
    md_cells = {ln.split("|")[2].strip(): [c.strip() for c in ln.split("|")[3:6]]
                for ln in md.splitlines() if re.match(r"\| \w* \| m\d", ln)}
    for (model, metric), (value, mark) in got.items():
        cell = md_cells[model][board.metrics.index(metric)]
        assert cell == {"best": f"**{value}**", "second": f"<u>{value}</u>"}.get(mark, value), (model, metric)
    for j, b in enumerate(board.backends):            # each column's backend: sub-header and tooltip
        assert f'<th title="{board.metrics[j]}: {b}">{board.metrics[j]}<br><small class="backend">{b}</small>' \
            in block
    # a report whose table was written otherwise (another version) is shown as written
    other = text.replace("| Type | Model |", "| Kind | Model |")
    assert render_report.leaderboard_table(tmp_path, other) == other
    assert render_report.leaderboard_table(tmp_path / "nowhere", text) == text


def rgba(path: Path, side: int, alpha: int = 0) -> None:
    im = Image.new("RGBA", (side, side), (0, 0, 0, alpha))
    ImageDraw.Draw(im).ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=(230, 60, 50, 255))
    im.save(path)


def test_thumbnails_and_display_copies_keep_transparency(tmp_path):
    rgba(tmp_path / "clear.png", 1800)
    rgba(tmp_path / "opaque.png", 1800, alpha=255)    # RGBA, but nothing transparent: a JPEG is fine
    for name, kind in (("clear", "PNG"), ("opaque", "JPEG")):
        src, sha = str(tmp_path / f"{name}.png"), name * 8
        thumb = ovl.thumbnail(tmp_path / "ws", sha, src)
        display = ovl.display_path(tmp_path / "ws", sha, src, 1800, 1800, 50_000)
        for out, side in ((thumb, ovl.THUMB_SIZE), (display, ovl.DISPLAY_MAX)):
            with Image.open(out) as im:
                assert im.format == kind and im.size == (side, side), (name, out)
                if kind == "PNG":
                    assert im.mode == "RGBA" and im.getpixel((2, 2))[3] == 0     # the corner stays clear
                    assert im.getpixel((side // 2, side // 2)) == (230, 60, 50, 255)
        assert ovl.thumbnail(tmp_path / "ws", sha, src) == thumb                  # made once, then cached


def test_frame_counter_is_in_the_bar_under_the_video(tmp_path):
    html = render.video_view(3, tmp_path / "v.mp4", [], {}, fps=16, frames=80)
    stage = re.search(r'<div class="pl-stage">(.*?)</div>', html).group(1)
    bar = re.search(r'<div class="pl-bar">(.*?)</div>', html).group(1)
    assert "pl-counter" not in stage and "<video" in stage
    assert bar.endswith('<span class="pl-counter" title="the frame shown"></span>')
    assert "pl-counter" not in render.player_bar(scrub=True)          # Best of N's bar has none
