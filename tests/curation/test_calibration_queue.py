"""The video queue's "Metric vs designer" order: labelled videos whose designer label the newest calibration's
P(accept) contradicts most come first (an accept with a low P, a reject with a high P)."""
from __future__ import annotations

import numpy as np

from storage import Workspace, calibrations, labels, videos
from storage.review_store import video_queue


def _record(ws: Workspace, p: dict[int, float]) -> int:
    rec = {"version": "test", "item_kind": "video", "n_labels": 0, "label_hash": "h", "label_counts": {},
           "metric_keys": {}, "thresholds": {}, "model": {}, "cv_metrics": {}}
    ids = sorted(p)
    out = calibrations.record(ws, rec, {"video_id": np.array(ids), "p_accept": np.array([p[i] for i in ids]),
                                        "out_of_fold": np.array([True] * len(ids))})
    assert out["n_scores"] == len(ids)
    return out["id"]


def test_metric_vs_designer_puts_the_sharpest_disagreements_first(workspace):
    v = {n: videos.add_video(workspace, {"sha256": f"{n:064x}", "path": f"/nowhere/{n}.mp4", "bytes": 1})[0]
         for n in range(1, 8)}
    for n, value, who in ((1, "accept", "alice"), (2, "reject", "alice"), (3, "accept", "bob"),
                          (4, "reject", "bob"), (5, "accept", "rule:1"), (6, "accept", "alice")):
        labels.append_event(workspace, item_kind="video", item_id=v[n], value=value, annotator=who)
    # an older calibration that would put video 3 first (accept at P 0.0): the newest one's scores count
    _record(workspace, {v[3]: 0.0})
    newest = _record(workspace, {v[1]: 0.10, v[2]: 0.80, v[3]: 0.95, v[4]: 0.30, v[5]: 0.0, v[7]: 0.5})
    assert calibrations.scores(workspace, newest)[v[2]] == {"p_accept": 0.80, "out_of_fold": True}
    q = video_queue(workspace, order="disagreement", label_state="labelled", limit=10)
    # disagreement: 1 accept at 0.10 -> 0.90, 2 reject at 0.80 -> 0.80, 4 reject at 0.30 -> 0.30, 3 accept at
    # 0.95 -> 0.05; 5 was decided by a rule's label (no designer's), 6 has no P: last, in id order
    assert [r["id"] for r in q] == [v[1], v[2], v[4], v[3], v[5], v[6]]
    assert [r["p_accept"] for r in q] == [0.10, 0.80, 0.30, 0.95, 0.0, None]
    assert [r["label"] for r in q] == ["accept", "reject", "reject", "accept", "accept", "accept"]
    # every video, the unlabelled one (P 0.5, no label to disagree with) after the labelled ones
    assert [r["id"] for r in video_queue(workspace, order="disagreement", label_state="any", limit=10)] == \
        [v[1], v[2], v[4], v[3], v[5], v[6], v[7]]
    # a person's label on the rule-decided video makes it a designer's disagreement: accept at P 0.0 -> 1.0
    labels.append_event(workspace, item_kind="video", item_id=v[5], value="accept", annotator="carol")
    assert [r["id"] for r in video_queue(workspace, order="disagreement", label_state="labelled", limit=2)] == \
        [v[5], v[1]]


def test_without_a_calibration_the_order_is_the_catalogue_order(workspace):
    ids = [videos.add_video(workspace, {"sha256": f"{n:064x}", "path": f"/n/{n}.mp4", "bytes": 1})[0]
           for n in range(3)]
    labels.append_event(workspace, item_kind="video", item_id=ids[2], value="reject", annotator="alice")
    q = video_queue(workspace, order="disagreement", label_state="any", limit=10)
    assert [r["id"] for r in q] == ids and all(r["p_accept"] is None for r in q)
