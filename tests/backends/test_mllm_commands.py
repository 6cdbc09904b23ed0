"""`python -m curation prompts` and `captions` against a local chat-completions server."""
from __future__ import annotations

import json

from curation.cli import main
from storage import Workspace, backend_store, labels


def test_prompts_without_endpoint_say_so_and_write_nothing(demo_workspace, monkeypatch, capsys):
    for k in ("ADVFX_MLLM_BASE_URL", "ADVFX_MLLM_MODEL"):
        monkeypatch.delenv(k, raising=False)
    with Workspace.open(demo_workspace) as ws:
        before = ws.query_one("SELECT count(*) FROM prompts")[0]
    assert main(["prompts", "--workspace", str(demo_workspace)]) == 2
    err = capsys.readouterr().err
    assert "need an MLLM endpoint" in err and "ADVFX_MLLM_BASE_URL" in err
    assert main(["captions", "--workspace", str(demo_workspace)]) == 2
    with Workspace.open(demo_workspace) as ws:
        assert ws.query_one("SELECT count(*) FROM prompts")[0] == before


def test_prompts_written_once_with_model_and_template(demo_workspace, mllm_env, capsys):
    mllm_env.script = [{"content": '"The jar turns slowly while light glides over it; fixed camera; the text stays sharp."'}]
    with Workspace.open(demo_workspace) as ws:
        todo = backend_store.images_without_prompt(ws)
    assert todo
    mllm_env.script = [{"content": f'Prompt: The product number {i} sways gently; fixed camera; text stays still.'}
                       for i in range(len(todo))]
    assert main(["prompts", "--workspace", str(demo_workspace), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] == len(todo) and out["failed"] == 0 and out["template"] == "video-description-v2"
    req = mllm_env.requests[0]["body"]["messages"][0]["content"]
    assert "fixed" in req[0]["text"] and req[1]["image_url"]["url"].startswith("data:image/jpeg")
    # the C.5 description prompt: the ad is the first frame; dynamics, atmosphere and light; no static repetition
    for part in ("FIRST FRAME", "atmosphere and lighting", "rather than a static image", "text, logo and price"):
        assert part in req[0]["text"]
    with Workspace.open(demo_workspace) as ws:
        assert backend_store.images_without_prompt(ws) == []
        rows = ws.query_dicts("SELECT text, source, template FROM prompts WHERE source LIKE 'mllm:%'")
    assert len(rows) == len(todo)
    assert all(r["source"] == "mllm:test-vlm" and r["template"] == "video-description-v2" for r in rows)
    assert all(not r["text"].startswith("Prompt:") for r in rows)
    n = len(mllm_env.requests)
    assert main(["prompts", "--workspace", str(demo_workspace), "--json"]) == 0  # nothing left: no calls
    assert json.loads(capsys.readouterr().out)["written"] == 0 and len(mllm_env.requests) == n


def test_captions_for_accepted_videos_only(demo_workspace, mllm_env, capsys):
    with Workspace.open(demo_workspace) as ws:
        vids = [r[0] for r in ws.query("SELECT id FROM videos ORDER BY id")]
        labels.append_event(ws, item_kind="video", item_id=vids[0], value="accept", annotator="ann")
        labels.append_event(ws, item_kind="video", item_id=vids[1], value="reject", annotator="ann")
        ev = labels.append_event(ws, item_kind="video", item_id=vids[2], value="accept", annotator="ann")
        labels.append_event(ws, item_kind="video", item_id=vids[2], value="undo", annotator="ann", undoes=ev["id"])
        assert backend_store.accepted_video_ids(ws) == [vids[0]]
    mllm_env.script = [{"content": "A can rises slowly on a pastel set while the headline stays still."}]
    assert main(["captions", "--workspace", str(demo_workspace), "--frames", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] == 1 and out["template"] == "video-caption-v2"
    sent = mllm_env.requests[0]["body"]["messages"][0]["content"]
    assert len(sent) == 1 + 4  # text + 4 frames
    # the C.5 caption prompt's five subjects
    for part in ("appearance", "actions", "textual content", "background composition", "overall atmosphere"):
        assert part in sent[0]["text"]
    with Workspace.open(demo_workspace) as ws:
        caps = dict(ws.query("SELECT id, caption FROM videos WHERE caption IS NOT NULL"))
        assert caps == {vids[0]: "A can rises slowly on a pastel set while the headline stays still."}
        rec = backend_store.caption_record(ws, vids[0])
        assert rec["model"] == "test-vlm" and rec["template"] == "video-caption-v2"
    assert main(["captions", "--workspace", str(demo_workspace), "--json"]) == 0  # done: skipped
    assert json.loads(capsys.readouterr().out)["considered"] == 0


def test_captions_report_endpoint_failures(demo_workspace, mllm_env, monkeypatch, capsys):
    monkeypatch.setenv("ADVFX_MLLM_RETRIES", "0")
    with Workspace.open(demo_workspace) as ws:
        vid = ws.query_one("SELECT min(id) FROM videos")[0]
        labels.append_event(ws, item_kind="video", item_id=vid, value="accept", annotator="ann")
    mllm_env.script = [{"status": 500, "raw": b"down"}]
    assert main(["captions", "--workspace", str(demo_workspace), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == 1 and "HTTP 500" in out["errors"][0]["error"]
    with Workspace.open(demo_workspace) as ws:
        assert ws.query_one("SELECT caption FROM videos WHERE id = ?", [vid])[0] is None
