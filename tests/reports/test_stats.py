"""Dataset statistics (the paper's Figure 3) on the fixture workspace."""
from __future__ import annotations

import json

from PIL import Image

from curation.cli import main
from curation.stats import compute_stats, tokenize

from .conftest import IMAGES_PER_CATEGORY


def test_compute_stats_numbers_and_figures(fx, tmp_path):
    out = tmp_path / "stats"
    with fx.open() as ws:
        s = compute_stats(ws, out)
    assert s["unit"] == "triples" and s["totals"]["triples"] == len(fx.triples)
    assert len(s["domains"]) == 6
    assert sum(d["triples"] for d in s["domains"].values()) == len(fx.triples)
    assert sorted((d["images"] for d in s["domains"].values()), reverse=True) == sorted(IMAGES_PER_CATEGORY,
                                                                                         reverse=True)
    sub = sum(len(d["subcategories"]) for d in s["domains"].values())
    assert sub == 44
    mx = s["metrics"]["motionx"]
    assert mx["summary_pct"]["n"] == len(fx.triples) and sum(mx["hist_pct"]["counts"]) == len(fx.triples)
    assert s["metrics"]["aesscore"]["status_counts"] == {"unavailable": len(fx.triples)}
    assert s["metrics"]["crscore"]["missing"] == len(fx.triples)
    assert s["metrics"]["tsscore"]["status_counts"].get("n/a", 0) > 0
    # prompt lengths: words and punctuation
    sample = "The skincare product 0 turns slowly; fixed camera; the text stays sharp."
    assert len(tokenize(sample)) == 15
    assert s["prompt_length"]["summary"]["n"] == s["totals"]["prompts"]
    terms = dict(s["top_terms"])
    assert terms["product"] == s["totals"]["prompts"] and "the" not in terms
    assert s["labels"]["accepted"] == len(fx.accepted) and s["labels"]["rejected"] == len(fx.rejected)
    for name in ("domains", "metrics", "prompt_lengths", "top_terms"):
        with Image.open(s["files"][name]) as im:
            assert im.size[0] > 300
    saved = json.loads((out / "stats.json").read_text())
    assert saved["totals"] == s["totals"]


def test_stats_cli(fx, tmp_path, capsys):
    assert main(["stats", "-w", str(fx.root), "--out", str(tmp_path / "s"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["totals"]["images"] == sum(IMAGES_PER_CATEGORY)
