"""A finished Benchmark or Export report as the page shows it: report.md with its figures served from the
report's folder, and the benchmark's leaderboard drawn as a real table (curation.report.to_html, the same
best / second-best marks as report.md's **bold** and <u>underline</u>: one ranking rule,
curation.report.column_marks). report.md itself is left as written; it is in the folder and its zip."""
from __future__ import annotations

import json
import re
from pathlib import Path

from curation import report

from .render import file_url


def leaderboard_table(folder: Path, text: str) -> str:
    """`text` with the leaderboard's Markdown table (report.to_markdown of the folder's leaderboard.json)
    replaced by its HTML table: one row per model, one column per metric headed with the backend and metric
    version that produced it. A report without a leaderboard, or one whose table was written differently
    (another version of the app), is returned as it is."""
    path = folder / "leaderboard.json"
    if not path.is_file():
        return text
    board = report.Leaderboard.from_dict(json.loads(path.read_text(encoding="utf-8")))
    md = report.to_markdown(board)
    if md not in text:
        return text
    # its own HTML block: blank lines around it, none inside (a blank line would end the block mid-table)
    table = "\n".join(ln for ln in report.to_html(board, standalone=False).splitlines() if ln.strip())
    return text.replace(md, f'\n<div class="lb-page">\n{table}\n</div>\n\n', 1)


def report_markdown(folder: Path, text: str) -> str:
    """What the report view shows: the leaderboard as a table, the report's images served from its folder."""
    text = leaderboard_table(folder, text)
    return re.sub(r"!\[([^\]]*)\]\(([^)/:]+)\)", lambda m: f"![{m.group(1)}]({file_url(folder / m.group(2))})", text)
