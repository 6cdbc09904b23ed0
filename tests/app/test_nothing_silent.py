"""Nothing silent: a labelling action with a blank annotator says why it did nothing, training with too few
labels is a message (and the requirement shows before Train is pressed), and undo after a skip brings the
skipped item back instead of cancelling the label before it."""
from __future__ import annotations

import re

import pytest

from curation.classifier import MIN_PER_CLASS
from labeling.service import NO_ANNOTATOR
from storage import labels

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(app_server):
    return gradio_client.Client(app_server[0], verbose=False)


def n_events(ws) -> int:
    return ws.query_one("SELECT count(*) FROM label_events")[0]


def shown(view: str, kind: str) -> int:
    return int(re.search(rf'data-{kind}-id="(\d+)"', view).group(1))


def test_blank_annotator_is_told_and_nothing_is_written(app_server, client, capfd):
    _, ws = app_server
    before = n_events(ws)
    img = shown(client.predict("id", "any", 0, 0, 100, "", "", False, [], api_name="/images_load")[0], "image")
    for name in ("/image_good", "/image_bad", "/image_skip"):
        # outputs: view, info, progress, reasons, note; the notice is in the line above the item
        out = client.predict(["blurry"], "kept", "  ", f"blank{name}@{img}", [], api_name=name)
        assert NO_ANNOTATOR in out[2], name
        assert "of 24 images labelled" in out[2]                     # the progress line stays beneath it
    assert NO_ANNOTATOR in client.predict("", "blank-undo-i", [], api_name="/image_undo")[2]
    # the same item is still the one to label: a real name now labels it
    out = client.predict([], "", "named", f"named@{img}", [], api_name="/image_good")
    assert NO_ANNOTATOR not in out[2]
    assert ws.query("SELECT item_id, value FROM label_events WHERE annotator = 'named'") == [(img, "good")]
    before += 1

    client.predict("any", "", "", 0, 100, "id", [], api_name="/videos_load")
    for name in ("/video_accept", "/video_skip"):
        out = client.predict([], "", "", f"blank{name}", [], api_name=name)   # player, curve, source, card, progress
        assert NO_ANNOTATOR in out[4], name
    assert NO_ANNOTATOR in client.predict("", "blank-undo-v", [], api_name="/video_undo")[4]

    client.predict("cmp-blank", api_name="/compare_next")
    assert client.predict("left", "tie", "", "blank-cmp", api_name="/compare_choose")[-1] == NO_ANNOTATOR
    assert client.predict("", "blank-cmp-undo", api_name="/compare_undo")[-1] == NO_ANNOTATOR
    with pytest.raises(Exception, match=NO_ANNOTATOR):
        client.predict(item_kind="image", item_id=img, value="good", annotator=" ", api_name="/label")

    assert n_events(ws) == before
    assert "Traceback" not in capfd.readouterr().err                  # refusals are answers, not crashes


def test_too_few_labels_is_a_message_shown_before_train_is_pressed(app_server, client):
    _, ws = app_server
    for iid in (2, 3, 4):
        client.predict(item_kind="image", item_id=iid, value="good", annotator="few", client_key=f"few-{iid}",
                       api_name="/label")
    counts = labels.label_counts(ws, "image")
    good, bad = counts.get("good", 0), counts.get("bad", 0)
    assert good >= 3 and bad < MIN_PER_CLASS
    hint = client.predict(api_name="/classifier_requirement")        # the Classifier tab is opened
    assert hint.startswith(f"Needs at least {MIN_PER_CLASS} good and {MIN_PER_CLASS} bad image labels; "
                           f"the workspace has {good} good, {bad} bad")
    prog, result, figs = client.predict("classical", api_name="/classifier_train")
    assert f"have {good} good and {bad} bad image labels" in prog, prog
    assert not re.search("Traceback|NotEnoughLabels|failed", prog), prog
    assert result == "" and ws.query_one("SELECT count(*) FROM classifier_runs")[0] == 0
    # the hint follows the labels: enough of each class and it says so
    for iid in range(10, 10 + MIN_PER_CLASS):
        client.predict(item_kind="image", item_id=iid, value="bad", annotator="few", client_key=f"few-{iid}",
                       api_name="/label")
    for iid in range(16, 16 + MIN_PER_CLASS - good):
        client.predict(item_kind="image", item_id=iid, value="good", annotator="few", client_key=f"few-{iid}",
                       api_name="/label")
    assert client.predict(api_name="/classifier_requirement").startswith("Ready: the workspace has")


@pytest.mark.parametrize("kind, load, label, skip, undo", [
    ("image", ("id", "unlabelled", 0, 0, 100, "", "", False, [], "/images_load"), "/image_good", "/image_skip",
     "/image_undo"),
    ("video", ("unlabelled", "", "", 0, 100, "id", [], "/videos_load"), "/video_accept", "/video_skip",
     "/video_undo"),
])
def test_undo_after_skip_brings_the_skipped_item_back(app_server, kind, load, label, skip, undo):
    _, ws = app_server
    c = gradio_client.Client(app_server[0], verbose=False)           # a session of its own
    who = f"skipper-{kind}"
    first = shown(c.predict(*load[:-1], api_name=load[-1])[0], kind)
    skipped = shown(c.predict([], "", who, f"{who}-1@{first}", [], api_name=label)[0], kind)
    after = shown(c.predict([], "", who, f"{who}-2@{skipped}", [], api_name=skip)[0], kind)
    assert after not in (first, skipped)
    assert shown(c.predict(who, f"{who}-3", [], api_name=undo)[0], kind) == skipped   # Z: the skipped item is back
    rows = ws.query_dicts("SELECT id, item_id, value, undoes FROM label_events WHERE annotator = ? ORDER BY id",
                          [who])
    assert [(r["item_id"], r["value"]) for r in rows] == [(first, rows[0]["value"]), (skipped, "skip"),
                                                          (skipped, "undo")]
    assert rows[2]["undoes"] == rows[1]["id"]                         # the undo points at the skip
    live = ws.query("SELECT item_id, value FROM live_label_events WHERE annotator = ?", [who])
    assert live == [(first, rows[0]["value"])]                        # the label before the skip still stands
    assert labels.current_label(ws, kind, first, who)["value"] == rows[0]["value"]
