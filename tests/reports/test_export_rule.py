"""The triple export selects by a rule's labels (`calibrate --apply`): a triple only the rule decided is exported
as the rule decided it, or, with `--rule-labels ignore`, as not labelled; a person's label is never outranked."""
from __future__ import annotations

import json
from pathlib import Path

from curation.calibrate import apply, calibrate
from curation.cli import main
from storage import labels


def _exported(capsys, fx, out: str, *flags: str) -> set[int]:
    assert main(["export", "-w", str(fx.root), "--out", out, "--formats", "jsonl", "--json", *flags]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["verify"]["ok"], s["verify"]
    return {json.loads(line)["triple_id"] for line in (Path(s["out_dir"]) / "manifest.jsonl").read_text().splitlines()}


def test_the_export_selects_by_the_rule_or_ignores_it(fx, capsys, monkeypatch):
    monkeypatch.setenv("ADVFX_DEVICE", "cpu")
    ok = sorted((t for t in fx.triples if t["image_id"] not in fx.bad_images), key=lambda t: t["quality"])
    best, worst = ok[-1], ok[0]                     # the designer accepted the best video and rejected the worst
    assert best["triple_id"] in fx.accepted and worst["triple_id"] in fx.rejected
    with fx.open() as ws:
        for t in (best, worst):                     # the designer's labels undone: only the rule will decide these
            ev = ws.query_one("SELECT id FROM label_events WHERE item_kind = 'video' AND item_id = ?",
                              [t["video_id"]])[0]
            labels.append_event(ws, item_kind="video", item_id=t["video_id"], value="undo", annotator="dana",
                                undoes=ev)
        cal = calibrate(ws)
        rep = apply(ws)
    decided = {d: {e["video_id"] for e in rep["videos"][d]} for d in ("accept", "reject")}
    # every other video has a designer's label: the rule decides exactly the two, each the designer's way
    assert decided == {"accept": {best["video_id"]}, "reject": {worst["video_id"]}} and rep["written"] == 2
    good_image = {t["triple_id"] for t in ok}
    people = (fx.accepted - {best["triple_id"]}) & good_image

    assert _exported(capsys, fx, "by_rule") == people | {best["triple_id"]}
    assert _exported(capsys, fx, "people_only", "--rule-labels", "ignore") == people
    # ignored, the rule's reject is no reject either: the worst video is "not labelled" and kept by not_rejected
    got = _exported(capsys, fx, "not_rejected_ignore", "--labels", "not_rejected", "--rule-labels", "ignore")
    assert got == people | {best["triple_id"], worst["triple_id"]}
    assert _exported(capsys, fx, "not_rejected", "--labels", "not_rejected") == people | {best["triple_id"]}
    card = (fx.root / "exports" / "people_only" / "README.md").read_text()
    assert "a rule's labels" in card and "ignored (such a triple counts as not labelled)" in card
    # the rule's labels are rule:<id> votes in the rows
    rows = [json.loads(x) for x in (fx.root / "exports" / "by_rule" / "manifest.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["triple_id"] == best["triple_id"])
    assert [(x["annotator"], x["value"]) for x in row["labels"]] == [(f"rule:{cal['id']}", "accept")]
