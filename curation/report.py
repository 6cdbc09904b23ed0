"""Renderers of the benchmark report: the leaderboard in the shape of the paper's Table 3 (Markdown, CSV,
HTML) and the radar chart of the six metrics per model (the paper's Figure 9, left; PNG and SVG).

Columns of metrics that are not one of the paper's six (`extra`, e.g. CLIPScore) come after them, headed with
the mark ("CLIPScore*") and footnoted, and are never drawn in the radar.

A `Leaderboard` holds model rows grouped by type (e.g. open-source / commercial), one value in % per metric
column (None where the metric has no value for that model, with a status such as "unavailable" and a
reason). Per column the best value is bold and the second best underlined; values are compared at the
displayed precision, so every model tied at the best is bold and every model tied at the second is
underlined (a column where all models tie has no second).
"""
from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metrics.registry import EXTRA_MARK, EXTRA_NOTE


@dataclass
class Row:
    model: str
    type: str
    values: list[float | None]                    # in %, per metric column
    status: list[str | None] = field(default_factory=list)   # per column: None when a value, else 'n/a' ...
    n: list[int] = field(default_factory=list)    # per column: number of cases averaged
    backends: list[str] = field(default_factory=list)   # per column: the stored backend id(s) of its values


@dataclass
class Leaderboard:
    metrics: list[str]                            # column titles (display names)
    rows: list[Row]
    type_order: list[str] = field(default_factory=list)
    decimals: int = 2
    notes: list[str] = field(default_factory=list)        # footnotes (reasons for missing values)
    title: str = "Leaderboard"
    backends: list[str] = field(default_factory=list)     # per column: "backend id, vN" that produced it
    mixed: list[bool] = field(default_factory=list)       # per column: models scored by different backends
    extra: list[bool] = field(default_factory=list)       # per column: not one of the paper's six metrics

    def is_extra(self, j: int) -> bool:
        return j < len(self.extra) and self.extra[j]

    def label(self, j: int) -> str:
        """The column's metric name, marked when it is not one of the paper's six ("CLIPScore*")."""
        return f"{self.metrics[j]}{EXTRA_MARK}" if self.is_extra(j) else self.metrics[j]

    def column_title(self, j: int) -> str:
        b = self.backends[j] if j < len(self.backends) else ""
        return f"{self.label(j)} ({b})" if b else self.label(j)

    def is_mixed(self, j: int) -> bool:
        return j < len(self.mixed) and self.mixed[j]

    def grouped(self) -> list[tuple[str, list[Row]]]:
        order = list(self.type_order) + sorted({r.type for r in self.rows} - set(self.type_order))
        return [(t, [r for r in self.rows if r.type == t]) for t in order if any(r.type == t for r in self.rows)]

    def ordered_rows(self) -> list[Row]:
        return [r for _, rows in self.grouped() for r in rows]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Leaderboard":
        """From {"metrics": [...], "type_order": [...], "models": [{"model", "type", "values": [...]}]}."""
        rows = [Row(model=m["model"], type=m.get("type", ""), values=[None if v is None else float(v)
                                                                       for v in m["values"]],
                    status=list(m.get("status") or []), n=list(m.get("n") or []),
                    backends=list(m.get("backends") or []))
                for m in d["models"]]
        return cls(metrics=list(d["metrics"]), rows=rows, type_order=list(d.get("type_order") or []),
                   decimals=int(d.get("decimals", 2)), notes=list(d.get("notes") or []),
                   title=d.get("title", "Leaderboard"), backends=list(d.get("backends") or []),
                   mixed=[bool(x) for x in d.get("mixed") or []], extra=[bool(x) for x in d.get("extra") or []])


def rank_marks(values: list[float | None], decimals: int = 2) -> list[str]:
    """'best' / 'second' / '' per value: best = every value equal to the column maximum at the displayed
    precision, second = every value equal to the largest value below it. None never ranks."""
    shown = [None if v is None else round(float(v), decimals) for v in values]
    distinct = sorted({v for v in shown if v is not None}, reverse=True)
    best = distinct[0] if distinct else None
    second = distinct[1] if len(distinct) > 1 else None
    return ["best" if v is not None and v == best else "second" if v is not None and v == second else ""
            for v in shown]


def column_marks(board: Leaderboard) -> dict[tuple[str, int], str]:
    """(model, column) -> 'best' | 'second' | ''."""
    rows = board.ordered_rows()
    marks: dict[tuple[str, int], str] = {}
    for j in range(len(board.metrics)):
        col = rank_marks([r.values[j] for r in rows], board.decimals)
        for r, mk in zip(rows, col):
            marks[(r.model, j)] = mk
    return marks


MIXED_MARK = "†"


def _cell_text(row: Row, j: int, decimals: int, mixed: bool = False) -> str:
    v = row.values[j]
    if v is None:
        return (row.status[j] if j < len(row.status) and row.status[j] else "not scored")
    return f"{v:.{decimals}f}" + (MIXED_MARK if mixed else "")


def _mixed_note(board: Leaderboard) -> list[str]:
    cols = [board.label(j) for j in range(len(board.metrics)) if board.is_mixed(j)]
    if not cols:
        return []
    return [f"{MIXED_MARK} {', '.join(cols)}: models were scored by different backends (allowed with "
            "--allow-mixed); each cell's backend is in the CSV. These values are not comparable."]


def _extra_note(board: Leaderboard) -> str:
    """The footnote of the marked columns ("* not one of InnoAds-Bench's six metrics ..."), or ""."""
    cols = [board.label(j) for j in range(len(board.metrics)) if board.is_extra(j)]
    if not cols:
        return ""
    return (f"{EXTRA_MARK} {EXTRA_NOTE} ({', '.join(cols)}): shown after them under its own name, not in the "
            "radar.")


def to_markdown(board: Leaderboard) -> str:
    marks = column_marks(board)
    head = ["Type", "Model"] + [board.column_title(j) for j in range(len(board.metrics))]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join([":--", ":--"] + [":-:"] * len(board.metrics)) + "|"]
    for gtype, rows in board.grouped():
        for i, r in enumerate(rows):
            cells = []
            for j in range(len(board.metrics)):
                t = _cell_text(r, j, board.decimals, board.is_mixed(j))
                mk = marks[(r.model, j)]
                cells.append(f"**{t}**" if mk == "best" else f"<u>{t}</u>" if mk == "second" else t)
            lines.append("| " + " | ".join([gtype if i == 0 else "", r.model] + cells) + " |")
    out = "\n".join(lines) + "\n"
    out += ("\nScores in %. **Bold**: best per column; <u>underlined</u>: second best (ties share the mark). "
            "Each column names the backend and metric version that produced it.\n")
    extra = _extra_note(board)
    if extra:      # its own paragraph, the mark escaped: "- *" would open a nested list
        out += "\n\\" + extra + "\n"
    notes = _mixed_note(board) + board.notes
    if notes:
        out += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return out


def to_csv(board: Leaderboard) -> str:
    """One row per model: type, model, each metric in % (empty when missing), its mark and status."""
    marks = column_marks(board)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = [board.label(j) for j in range(len(board.metrics))]     # extras marked: "CLIPScore*"
    w.writerow(["type", "model"] + names + [f"{m} mark" for m in names]
               + [f"{m} status" for m in names] + [f"{m} backend" for m in names])
    for r in board.ordered_rows():
        vals = ["" if v is None else f"{v:.{board.decimals}f}" for v in r.values]
        mk = [marks[(r.model, j)] for j in range(len(board.metrics))]
        st = [("ok" if r.values[j] is not None else (r.status[j] if j < len(r.status) and r.status[j]
                                                     else "not scored")) for j in range(len(board.metrics))]
        be = [r.backends[j] if j < len(r.backends) else "" for j in range(len(board.metrics))]
        w.writerow([r.type, r.model] + vals + mk + st + be)
    return buf.getvalue()


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2328}
table.lb{border-collapse:collapse;font-size:14px}
table.lb th,table.lb td{padding:6px 12px;border-bottom:1px solid #d0d7de;text-align:center}
table.lb td.model,table.lb td.type{text-align:left}
table.lb thead th{border-bottom:2px solid #1f2328}
table.lb tr.group-start td{border-top:2px solid #1f2328}
td.best{font-weight:700} td.second{text-decoration:underline}
td.missing{color:#8c959f;font-style:italic} .notes{color:#57606a;font-size:13px}"""


def to_html(board: Leaderboard, *, standalone: bool = True) -> str:
    marks = column_marks(board)
    e = html.escape
    backend = [board.backends[j] if j < len(board.backends) else "" for j in range(len(board.metrics))]
    # the backend and metric version that produced a column: its sub-header, and its header's tooltip
    parts = ['<table class="lb">', "<thead><tr><th>Type</th><th>Model</th>"
             + "".join((f'<th title="{e(board.label(j))}: {e(backend[j])}">' if backend[j] else "<th>")
                       + e(board.label(j))
                       + (f'<br><small class="backend">{e(backend[j])}</small>' if backend[j] else "") + "</th>"
                       for j in range(len(board.metrics))) + "</tr></thead><tbody>"]
    for gtype, rows in board.grouped():
        for i, r in enumerate(rows):
            tr = '<tr class="group-start">' if i == 0 else "<tr>"
            if i == 0:
                tr += f'<td class="type" rowspan="{len(rows)}">{e(gtype)}</td>'
            tr += f'<td class="model">{e(r.model)}</td>'
            for j in range(len(board.metrics)):
                t = e(_cell_text(r, j, board.decimals, board.is_mixed(j)))
                mk = marks[(r.model, j)]
                if r.values[j] is None:
                    tr += f'<td class="missing">{t}</td>'
                elif mk == "best":
                    tr += f'<td class="best"><b>{t}</b></td>'
                elif mk == "second":
                    tr += f'<td class="second"><u>{t}</u></td>'
                else:
                    tr += f"<td>{t}</td>"
            parts.append(tr + "</tr>")
    parts.append("</tbody></table>")
    parts.append('<p class="notes">Scores in %. <b>Bold</b>: best per column; <u>underlined</u>: second best '
                 "(ties share the mark).</p>")
    if _extra_note(board):
        parts.append(f'<p class="notes">{e(_extra_note(board))}</p>')
    notes = _mixed_note(board) + board.notes
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    body = "\n".join(parts)
    if not standalone:
        return body
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{e(board.title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{e(board.title)}</h1>\n{body}\n</body></html>\n")


def radar_figure(board: Leaderboard, *, title: str | None = None):
    """The radar's matplotlib figure (see render_radar). Laid out so that nothing is cut off at its edges: the
    axis labels sit outside the circle, aligned away from it, the legend (long model names wrapped) has its
    own room at the right, and the chart is shrunk until its labels and title fit (`_fit_radar`)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [j for j in range(len(board.metrics)) if not board.is_extra(j)]
    rows = board.ordered_rows()
    k = len(cols)
    angles = np.linspace(0, 2 * np.pi, k, endpoint=False)
    closed = np.concatenate([angles, angles[:1]])
    fig = plt.figure(figsize=(8.5, 6.5))
    ax = fig.add_axes((0.08, 0.06, 0.6, 0.8), projection="polar")
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    cmap = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")
    styles = ["-", "--"]
    vmax = max([r.values[j] for r in rows for j in cols if r.values[j] is not None] + [1.0])
    top = 100.0 if vmax > 60 else float(np.ceil(vmax / 10.0) * 10.0)
    for i, r in enumerate(rows):
        # a missing value is a gap in the series, never a 0 at the centre
        shown = [r.values[j] for j in cols]
        vals = np.array([np.nan if v is None else float(v) for v in shown + shown[:1]])
        ls = styles[0] if not board.type_order or r.type == board.type_order[0] else styles[1]
        (line,) = ax.plot(closed, vals, ls, color=cmap(i % cmap.N), linewidth=1.6,
                          label=textwrap.fill(r.model, 28), marker="o", markersize=3)
        line.set_gid(f"radar-series-{i}")
        if not np.isnan(vals).any():
            ax.fill(closed, vals, color=cmap(i % cmap.N), alpha=0.03)
    labels = []
    for j in cols:
        m = board.metrics[j]
        missing = [r for r in rows if r.values[j] is None]
        labels.append(m if not missing else (f"{m}\n(unavailable)" if len(missing) == len(rows)
                                             else f"{m}\n({len(missing)} missing)"))
    ax.set_xticks(angles, labels, fontsize=9)
    # each label grows away from the circle: left of the axis on the left half, right of it on the right half,
    # above at the top and below at the bottom (centred labels there ran into the circle and the series)
    ax.tick_params(axis="x", pad=4)
    for a, t in zip(angles, ax.get_xticklabels()):
        x, y = np.sin(a), np.cos(a)          # theta runs clockwise from the top
        t.set_horizontalalignment("center" if abs(x) < 0.1 else "left" if x > 0 else "right")
        t.set_verticalalignment("center" if abs(y) < 0.1 else "bottom" if y > 0 else "top")
    ax.set_ylim(0, top)
    ax.set_rlabel_position(90 / max(k, 1))
    ax.tick_params(axis="y", labelsize=7)
    legend = fig.legend(loc="upper right", fontsize=8, frameon=False) if rows else None
    ax.set_title(title or board.title, pad=24)
    _fit_radar(fig, ax, legend)
    return fig


def _fit_radar(fig, ax, legend, pad: float = 0.1) -> None:
    """Shrink the polar axes until its labels and title lie inside the figure and left of the legend, `pad`
    inches clear. Its outer labels stick out of the axes by their own length (a wrapped "(unavailable)", a long
    metric name), which no fixed margin fits for every board; matplotlib's constrained layout left them a few
    pixels outside (it sizes the box before the circle is fitted into it)."""
    w, h = fig.get_size_inches()
    for _ in range(6):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        box = ax.get_tightbbox(r).transformed(fig.dpi_scale_trans.inverted())      # in inches
        right = (legend.get_window_extent(r).x0 / fig.dpi if legend is not None else w) - pad
        over = [pad - box.x0, pad - box.y0, box.x1 - right, box.y1 - (h - pad)]     # past each edge
        if max(over) <= 0:
            return
        left, bottom, rgt, top = (max(0.0, o) + 0.02 if o > 0 else 0.0 for o in over)
        p = ax.get_position()
        ax.set_position((p.x0 + left / w, p.y0 + bottom / h, max(0.1, p.width - (left + rgt) / w),
                         max(0.1, p.height - (bottom + top) / h)))


def render_radar(board: Leaderboard, png: str | Path | None, svg: str | Path | None, *,
                 title: str | None = None) -> dict[str, Any]:
    """The radar of the six metrics per model (one closed series per model, values in %, 0 at the centre).
    A metric without a value for a model is a gap in its series and its axis label says so. Columns that are
    not one of the paper's six (`extra`, CLIPScore) are not drawn: the paper's Figure 9 has six axes. Each
    series line carries the SVG id `radar-series-<i>`. Returns {"series": n, "axes": [...], "png", "svg"}."""
    import matplotlib.pyplot as plt

    fig = radar_figure(board, title=title)
    out: dict[str, Any] = {"series": len(board.rows),
                           "axes": [m for j, m in enumerate(board.metrics) if not board.is_extra(j)]}
    # "tight" with a margin: whatever the layout could not fit is still in the file, never cut off at its edge
    if png:
        fig.savefig(png, dpi=120, bbox_inches="tight", pad_inches=0.15)
        out["png"] = str(png)
    if svg:
        fig.savefig(svg, bbox_inches="tight", pad_inches=0.15)
        out["svg"] = str(svg)
    plt.close(fig)
    return out


def write_leaderboard(board: Leaderboard, out_dir: str | Path, stem: str = "leaderboard",
                      radar_stem: str = "radar") -> dict[str, str]:
    """Write <stem>.md/.csv/.html/.json and <radar_stem>.png/.svg under out_dir; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for ext, text in (("md", to_markdown(board)), ("csv", to_csv(board)), ("html", to_html(board))):
        p = out / f"{stem}.{ext}"
        p.write_text(text, encoding="utf-8")
        files[ext] = str(p)
    marks = column_marks(board)
    data = {"title": board.title, "metrics": board.metrics, "type_order": board.type_order,
            "decimals": board.decimals, "notes": board.notes, "backends": board.backends, "mixed": board.mixed,
            "extra": [board.is_extra(j) for j in range(len(board.metrics))],
            "models": [{"model": r.model, "type": r.type, "values": r.values, "status": r.status, "n": r.n,
                        "backends": r.backends, "marks": [marks[(r.model, j)] for j in range(len(board.metrics))]}
                       for r in board.ordered_rows()]}
    p = out / f"{stem}.json"
    p.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    files["json"] = str(p)
    radar = render_radar(board, out / f"{radar_stem}.png", out / f"{radar_stem}.svg")
    files["radar_png"], files["radar_svg"] = radar["png"], radar["svg"]
    return files
