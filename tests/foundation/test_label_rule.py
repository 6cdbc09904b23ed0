"""One label rule (issue 16): every reader of labels gives the same current label for every item.

The workspace holds a multi-annotator history with undos, skips, ties and triple-level labels; the expected
decision of each item is worked out by hand below (docs/benchmark.md: each annotator's latest non-undone
label counts once, on a triple the annotator's triple label wins over their video label, the majority
decides, a tie goes to the most recent vote). Several items are chosen so that "the newest label by anyone"
(the old rule of the review queue, the progress line and captions) gives a different answer.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from storage import Workspace, images, labels, prompts, taxonomy, triples, videos

# image name -> expected decision (None: no decision)
IMAGES = {
    "i_majority_bad": "bad",     # bob bad, cat bad, then ann good: 2-1 bad (newest by anyone: good)
    "i_tie_good": "good",        # ann bad, then bob good: tie, the newest vote wins
    "i_undo": "good",            # ann good undone; bob bad; cat good, cat bad undone: bob bad vs cat good, newest
    "i_skip": "bad",             # ann good, bob bad, ann skip (no label): tie, the newest vote (bob) wins
    "i_all_undone": None,        # ann good, undone
    "i_never": None,
    "i_majority_good": "good",   # ann good, bob good, then cat bad: 2-1 good (newest by anyone: bad)
}
# video name -> expected decision of the video itself
VIDEOS = {"v1": "reject", "v2": "reject", "v3": "accept", "v4": None}
# triple name -> (video, image, expected decision)
TRIPLES = {
    "t1": ("v1", "i_majority_bad", "reject"),   # video votes only: bob reject, cat reject, ann accept
    "t2a": ("v2", "i_tie_good", "accept"),      # ann accept (video), bob reject (video), cat accept (triple)
    "t2b": ("v2", "i_undo", "reject"),          # ann reject (triple wins over her video accept), bob reject
    "t3": ("v3", "i_skip", "accept"),           # video: bob accept then reject, cat accept (newest): tie -> accept
    "t4": ("v4", "i_majority_good", "accept"),  # no video label; ann accepts the triple
}


def _file(folder: Path, name: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    payload = f"media {name}".encode() * 50
    p = folder / name
    p.write_bytes(payload)
    return {"sha256": hashlib.sha256(payload).hexdigest(), "path": str(p), "bytes": len(payload)}


@pytest.fixture()
def history(tmp_path):
    media = tmp_path / "media"
    ids: dict[str, int] = {}
    with Workspace.open(tmp_path / "ws") as ws:
        cat = taxonomy.taxonomy(ws)[0]["id"]
        for n, name in enumerate(IMAGES):
            rec = _file(media, f"{name}.png") | {"format": "PNG", "width": 64, "height": 64, "mode": "RGB",
                                                 "has_alpha": False, "category_id": cat, "product": name}
            ids[name], _ = images.add_image(ws, rec)
        for name in VIDEOS:
            rec = _file(media, f"{name}.mp4") | {"container": "mp4", "codec": "h264", "fps": 16.0, "frame_count": 16,
                                                 "width": 64, "height": 64, "duration": 1.0, "model": f"M-{name}"}
            ids[name], _ = videos.add_video(ws, rec)
        for name, (v, i, _) in TRIPLES.items():
            pid, _ = prompts.add_prompt(ws, f"prompt of {name}", image_id=ids[i])
            ids[name], _ = triples.add_triple(ws, video_id=ids[v], image_id=ids[i], prompt_id=pid,
                                              model=f"M-{name}", category_id=cat, product=name)

        def ev(kind: str, item: str, value: str, who: str) -> int:
            return labels.append_event(ws, item_kind=kind, item_id=ids[item], value=value, annotator=who)["id"]

        def undo(kind: str, item: str, who: str, event_id: int) -> None:
            labels.append_event(ws, item_kind=kind, item_id=ids[item], value="undo", annotator=who, undoes=event_id)

        ev("image", "i_majority_bad", "bad", "bob")
        ev("image", "i_majority_bad", "bad", "cat")
        ev("image", "i_majority_bad", "good", "ann")
        ev("image", "i_tie_good", "bad", "ann")
        ev("image", "i_tie_good", "good", "bob")
        undo("image", "i_undo", "ann", ev("image", "i_undo", "good", "ann"))
        ev("image", "i_undo", "bad", "bob")
        ev("image", "i_undo", "good", "cat")
        undo("image", "i_undo", "cat", ev("image", "i_undo", "bad", "cat"))
        ev("image", "i_skip", "good", "ann")
        ev("image", "i_skip", "bad", "bob")
        ev("image", "i_skip", "skip", "ann")
        undo("image", "i_all_undone", "ann", ev("image", "i_all_undone", "good", "ann"))
        ev("image", "i_majority_good", "good", "ann")
        ev("image", "i_majority_good", "good", "bob")
        ev("image", "i_majority_good", "bad", "cat")

        ev("video", "v1", "reject", "bob")
        ev("video", "v1", "reject", "cat")
        ev("video", "v1", "accept", "ann")
        ev("video", "v2", "accept", "ann")
        ev("video", "v2", "reject", "bob")
        ev("triple", "t2a", "accept", "cat")
        ev("triple", "t2b", "reject", "ann")
        undo("video", "v3", "ann", ev("video", "v3", "accept", "ann"))
        ev("video", "v3", "accept", "bob")
        ev("video", "v3", "reject", "bob")
        ev("video", "v3", "accept", "cat")
        ev("triple", "t4", "accept", "ann")
        # a pair judgement that was undone counts nowhere
        pair = {"left_triple": ids["t1"], "right_triple": ids["t3"], "left_model": "M-t1", "right_model": "M-t3",
                "prompt_following": "left", "ad_quality": "left"}
        pe = labels.append_event(ws, item_kind="pair", item_id=ids["t1"], value="left/left", annotator="ann",
                                 payload=pair)["id"]
        undo("pair", "t1", "ann", pe)
    return tmp_path / "ws", media, ids


def _expected(ids: dict[str, int], table: dict) -> dict[int, str | None]:
    return {ids[name]: (exp[-1] if isinstance(exp, tuple) else exp) for name, exp in table.items()}


def test_the_accessor_and_the_view_give_the_hand_worked_labels(history):
    root, _, ids = history
    with Workspace.open(root) as ws:
        for kind, table in (("image", IMAGES), ("video", VIDEOS), ("triple", TRIPLES)):
            want = {i: v for i, v in _expected(ids, table).items() if v is not None}
            got = {i: d["label"] for i, d in labels.resolved_labels(ws, kind).items()}
            assert got == want, kind
            view = dict(ws.query("SELECT item_id, label FROM resolved_labels WHERE item_kind = ?", [kind]))
            assert view == want, kind
        assert labels.resolved_label(ws, "image", ids["i_majority_bad"])["n_pos"] == 1
        assert labels.resolved_label(ws, "triple", ids["t2a"])["annotators"] == ["ann", "bob", "cat"]
        # the undone event is gone; the label before it is current again
        assert labels.current_label(ws, "image", ids["i_undo"], "cat")["value"] == "good"
        assert labels.current_label(ws, "image", ids["i_undo"], "ann") is None


def test_review_screens_queues_and_progress_agree(history):
    from curation.queue import image_queue
    from labeling.service import ReviewService
    from storage import review_store as rs
    from storage.curation_store import ORDERS

    root, _, ids = history
    want_img = _expected(ids, IMAGES)
    want_vid = _expected(ids, VIDEOS)
    with Workspace.open(root) as ws:
        svc = ReviewService(ws, seed=0)
        for order in ORDERS:      # the queue shows the same labels whichever order is chosen
            for rows in (image_queue(ws, order=order, label_state="any", limit=100),
                         svc.image_queue(order=order, label_state="any", limit=100)):
                assert {r["id"]: r["label"] for r in rows} == want_img, order
        for state, keep in (("good", {"good"}), ("bad", {"bad"}), ("labelled", {"good", "bad"}),
                            ("unlabelled", {None})):
            got = {r["id"] for r in svc.image_queue(order="id", label_state=state, limit=100)}
            assert got == {i for i, v in want_img.items() if v in keep}, state
        for iid, v in want_img.items():
            card = rs.image_card(ws, iid)
            assert (card["label"] or {}).get("label") == v
            assert (labels.label_summary(ws, "image", iid) or {}).get("value") == v     # the /current_label API
        assert {r["id"]: r["label"] for r in svc.video_queue(label_state="any", limit=100)} == want_vid
        for state in ("accept", "reject"):
            assert {r["id"] for r in svc.video_queue(label_state=state, limit=100)} == \
                {i for i, v in want_vid.items() if v == state}
        for vid, v in want_vid.items():
            assert (rs.video_card(ws, vid)["label"] or {}).get("label") == v
        n_good = sum(v == "good" for v in want_img.values())
        n_bad = sum(v == "bad" for v in want_img.values())
        want_prog = {"total": len(IMAGES), "good": n_good, "bad": n_bad, "labelled": n_good + n_bad}
        assert rs.label_progress(ws, "image") == want_prog
        assert rs.label_progress_live(ws, "image") == want_prog
        assert rs.label_progress_cached(ws, "image", ttl=0.0) == want_prog
        assert rs.label_progress(ws, "video") == {"total": 4, "accept": 1, "reject": 2, "labelled": 3}
        # the undone pair judgement counts nowhere
        assert rs.pair_counts(ws) == {} and rs.judged_pairs(ws, "ann") == set() and rs.pair_results(ws) == []


def test_status_counts_follow_the_rule(history, capsys):
    from curation.commands import status

    root, _, ids = history
    assert status.run(argparse.Namespace(workspace=str(root), json=True)) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["images_good"], out["images_bad"]) == (3, 2)
    assert (out["videos_accept"], out["videos_reject"]) == (1, 2)
    assert (out["triples_accept"], out["triples_reject"]) == (3, 2)


def test_reports_export_captions_and_classifier_agree(history, tmp_path):
    from curation import classifier, stats
    from curation.benchmark import designer_agreement
    from curation.benchset import make_set
    from curation.export import export_splits
    from storage import backend_store

    root, _, ids = history
    want_img = _expected(ids, IMAGES)
    want_tri = _expected(ids, TRIPLES)
    word = {1: "accept", 0: "reject", None: None}
    with Workspace.open(root) as ws:
        records = stats.triple_records(ws)
        assert {r["triple_id"]: word[r["decision"]] for r in records} == want_tri
        assert {r["triple_id"]: {1: "good", 0: "bad", None: None}[r["image_decision"]] for r in records} == \
            {ids[t]: want_img[ids[i]] for t, (_, i, _) in TRIPLES.items()}
        t2a = next(r for r in records if r["triple_id"] == ids["t2a"])
        kinds = {(x["annotator"], x["kind"]) for x in t2a["label"]["labels"]}
        assert kinds == {("ann", "video"), ("bob", "video"), ("cat", "triple")}
        assert {i: {1: "good", 0: "bad"}[d["decision"]] for i, d in stats.image_decisions(ws).items()
                if d["decision"] is not None} == {i: v for i, v in want_img.items() if v}
        agree = designer_agreement(records, ["motionx"], n_boot=10, seed=0)
        assert (agree["accepted"], agree["rejected"]) == (3, 2)
        st = stats.compute_stats(ws, tmp_path / "stats")
        assert st["labels"] == {"accepted": 3, "rejected": 2, "unlabelled": 0}
        # captions: accepted videos by the rule (v1's newest label is an accept, but the majority rejects it)
        assert backend_store.accepted_video_ids(ws) == [ids["v3"]]
        assert [r["id"] for r in backend_store.videos_needing_caption(ws)] == [ids["v3"]]
        snap = classifier.label_snapshot(ws)
        assert dict(zip(snap["ids"].tolist(), snap["y"].tolist())) == \
            {i: int(v == "good") for i, v in want_img.items() if v}
        drafted = make_set(ws, tmp_path / "set.json", per_category=50)
        chosen = {c["product"] for c in json.loads((tmp_path / "set.json").read_text())["cases"]}
        assert drafted["cases"] == len(chosen) and chosen == {n for n, v in IMAGES.items() if v != "bad"}
        every = export_splits(ws, ws.path("exports", "all"), {"label_state": "any", "exclude_bad_images": False,
                                                               "formats": ["jsonl"]})
        rows = [json.loads(x) for x in (Path(every["out_dir"]) / "manifest.jsonl").read_text().splitlines()]
        assert {r["triple_id"]: r["label"] for r in rows} == want_tri
        assert {r["triple_id"]: r["image_label"] for r in rows} == \
            {ids[t]: want_img[ids[i]] for t, (_, i, _) in TRIPLES.items()}
        acc = export_splits(ws, ws.path("exports", "accepted"), {"formats": ["jsonl"]})
        rows = [json.loads(x) for x in (Path(acc["out_dir"]) / "manifest.jsonl").read_text().splitlines()]
        # the default export: accepted triples (t2a, t3, t4) minus those whose source image is decided bad (t3)
        assert {r["triple_id"] for r in rows} == {ids["t2a"], ids["t4"]}


def test_a_run_is_written_with_its_predictions_or_not_at_all(workspace):
    from storage import classifier_runs as runs

    rec = {"version": "t", "n_labels": 2, "label_hash": "h", "label_counts": {"good": 1}, "features": "f",
           "estimator": "logreg", "threshold": 0.4, "cv_metrics": {}, "model_path": None}
    first = runs.reserve_run_id(workspace)
    assert runs.record_run(workspace, first, rec, np.array([1, 2]), np.array([0.2, 0.9])) == 2
    assert runs.latest_run_id(workspace) == first and runs.predictions(workspace) == {1: 0.2, 2: 0.9}
    broken = runs.reserve_run_id(workspace)
    with pytest.raises(Exception):   # a duplicate image id breaks the predictions' key: nothing of the run stays
        runs.record_run(workspace, broken, rec, np.array([3, 3]), np.array([0.1, 0.2]))
    assert runs.get_run(workspace, broken) is None and runs.latest_run_id(workspace) == first
    # a run row without predictions (what an older version left after a crash) is never the latest run
    workspace.execute("INSERT INTO classifier_runs (version, n_labels, label_hash, features) "
                      "VALUES ('old', 0, '-', 'f')")
    assert runs.latest_run_id(workspace) == first
    assert runs.get_run(workspace)["id"] == first and runs.image_score(workspace, 2)["score"] == 0.9
    assert runs.kept_count(workspace, 0.5) == {"kept": 1, "scored": 2}
