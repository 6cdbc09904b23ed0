"""The Videos tab: candidate video beside its source ad, overlays, motion curve, scorecard, accept/reject."""
from __future__ import annotations

import functools
from typing import Any

import gradio as gr

from curation import overlays as ovl
from curation import video_overlay_data as vod
from curation.executors import run_scoring
from media.motion_curve import motion_series, motion_svg
from storage import metric_results
from storage import review_store as rs

from . import explain, render
from .jobs import JobRunner, progress_md
from .service import VIDEO_REASONS, ReviewService
from .ui_common import JUMP_JS, QueueTab, counts_html, key_js, locked, nav_current, new_nav, session_of, shown_js

LAYERS = ["Product mask", "OCR boxes", "Frame counter"]
LAYER_KEYS = {"Product mask": "mask", "OCR boxes": "ocr", "Frame counter": "counter"}
LABEL_STATES = [("Unreviewed", "unlabelled"), ("Reviewed", "labelled"), ("Accepted", "accept"),
                ("Rejected", "reject"), ("All", "any")]
METRIC_CHOICES = [("(no metric filter)", "")] + [(name, m) for m, name in render.METRIC_NAMES.items()]

DEFAULT_LAYERS = ["Frame counter"]
# static/player.js: the player's controls and keys; the layers ticked are remembered in this browser
PLAYER_ON_LOAD = ("\nif (window.advfxPlayer) { window.advfxPlayer.mount(element); "
                  "watch('value', () => window.advfxPlayer.rendered(element)); }\n")
LAYERS_JS = "(st, layers) => { if (window.advfxPlayer) window.advfxPlayer.setLayers(layers); return [st, layers]; }"
# one output: its value wrapped in a list (a bare list would be read as one value per output)
RESTORE_LAYERS_JS = ("() => [window.advfxPlayer ? window.advfxPlayer.storedLayers(%s) : %s]"
                     % (repr(DEFAULT_LAYERS).replace("'", '"'), repr(DEFAULT_LAYERS).replace("'", '"')))

CURVE_JS = """
element.addEventListener('click', (e) => {
  const svg = element.querySelector('svg.motion-svg');
  if (!svg) return;
  const r = svg.getBoundingClientRect();
  const vb = svg.viewBox.baseVal;
  const x = (e.clientX - r.left) * vb.width / r.width;
  const padl = +svg.dataset.padl, pw = +svg.dataset.pw, n = +svg.dataset.n;
  let k = Math.round((x - padl) / pw * Math.max(n - 1, 1));
  k = Math.max(0, Math.min(n - 1, k));
  const cx = padl + k / Math.max(n - 1, 1) * pw;
  const cur = svg.querySelector('line.cursor');
  if (cur) { cur.setAttribute('x1', cx); cur.setAttribute('x2', cx); }
  // a point is a pair of 8 fps analysis samples: data-index names the source frame each one shows
  const idx = svg.dataset.index ? svg.dataset.index.split(',').map(Number) : null;
  const f = idx && k < idx.length ? idx[k] : k;
  const v = document.querySelector('#vid-player video');
  const fps = +svg.dataset.fps;
  if (v && fps) { v.pause(); v.currentTime = (f + 0.5) / fps; }
  trigger('frame_select', {frame: f});
});
"""


class VideosTab(QueueTab):
    kind = "video"
    n_view = 5

    def __init__(self, svc: ReviewService) -> None:
        super().__init__(svc)
        self.jobs = JobRunner()

    # -- data ----------------------------------------------------------------------------------
    def queue(self, **kw: Any) -> list[dict[str, Any]]:
        return self.svc.video_queue(**kw)

    def overlay_data(self, card: dict[str, Any], results: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
        """Per-frame overlay data from the traces; when there is none, what was computed for review."""
        size = (int(card["width"] or 0), int(card["height"] or 0))
        return vod.overlay_for_video(self.svc.root, card["sha256"], size, results)

    def ensure_overlay_data(self, card: dict[str, Any]):
        job = functools.partial(vod.compute_video_overlay_data, n=16, product=card.get("product"),
                                source_image=card.get("source_image_path"))
        return self.svc.worker.submit("v:" + card["sha256"], job, self.svc.root, card["sha256"], card["path"])

    def player(self, card: dict[str, Any], ov: dict[str, Any], key: str, layers: list[str] | None) -> str:
        # the frame counter is drawn by the page, under the video (static/player.js), so ticking it re-encodes
        # nothing, and a video opened with the default layers plays its own file at once
        want = {LAYER_KEYS[x] for x in (layers or []) if x in LAYER_KEYS} - {"counter"}
        missing = [k for k in ("mask", "ocr") if k in want and not ov[{"mask": "masks", "ocr": "ocr"}[k]]]
        if missing:
            self.ensure_overlay_data(card)
        src = ovl.render_video_overlay(self.svc.root, card["sha256"], card["path"], ov, want, key)
        return render.video_view(card["id"], src, missing, ov["sources"], fps=card.get("fps"),
                                 frames=card.get("frame_count"))

    def view(self, st: dict[str, Any], session: str, layers: list[str] | None):
        """-> player html, curve html, source html, scorecard html, progress html"""
        vid = nav_current(st)
        self.sessions.set(session, vid)
        progress = self.progress_html()
        if vid is None:
            msg = ("No videos match these filters." if not st["hist"] else
                   "Queue done — every video matching these filters has been reviewed.")
            return render.empty_state("Nothing to review", msg), "", "", "", progress
        card = rs.video_card(self.svc.ws, vid)
        if card is None:
            return render.empty_state("Video not found", f"video {vid}"), "", "", "", progress
        results = self.svc.video_results(vid)
        ov, key = self.overlay_data(card, results)
        player = self.player(card, ov, key, layers)
        series = motion_series(ov["motion"])
        n_frames = int(card.get("frame_count") or 0)
        curve = render.motion_curve(motion_svg(series, n_frames) if series else None, series, card.get("fps"))
        ranks = metric_results.value_ranks(self.svc.ws, vid, self.svc.current_keys())
        return player, curve, render.video_source(card), render.video_scorecard(results, ranks), progress

    def progress_html(self) -> str:
        prog = rs.label_progress_cached(self.svc.ws, "video", ttl=0.0)   # a few ms even at 10,000 videos: always fresh
        return render.progress_line(prog, "videos reviewed", {"accept": "accepted", "reject": "rejected"})

    # -- handlers ------------------------------------------------------------------------------
    def _filters(self, label_state, model, metric, mmin, mmax, order) -> dict[str, Any]:
        # metric vs designer needs a designer's label: on the unreviewed queue it would order nothing
        if order == "disagreement" and label_state in (None, "", "unlabelled"):
            label_state = "labelled"
        f: dict[str, Any] = {"label_state": label_state or "any", "model": model or None, "metric": metric or None,
                             "order": order or "id"}
        if metric:
            if mmin not in (None, "") and float(mmin) > 0:
                f["metric_min"] = float(mmin) / 100
            if mmax not in (None, "") and float(mmax) < 100:
                f["metric_max"] = float(mmax) / 100
        return f

    def h_load(self, label_state, model, metric, mmin, mmax, order, layers, request: gr.Request):
        st = new_nav(self._filters(label_state, model, metric, mmin, mmax, order))
        self.advance(st)
        return (st, *self.view(st, session_of(request), layers), self.queue_html(st))

    def queue_html(self, st: dict[str, Any]) -> str:
        """The current video and the next ones (ten in all): only those rows are read."""
        ids = (st["hist"][max(st["i"], 0):] + st["queue"])[:10]
        if not ids:
            return ""
        rows = {r["id"]: r for r in self.svc.video_queue(**{**st["filters"], "label_state": "any"}, ids=ids,
                                                         limit=len(ids))}
        return render.video_queue_list([rows[i] for i in ids if i in rows], nav_current(st))

    def h_accept(self, st, reasons, note, annotator, client_key, layers, request: gr.Request):
        return self._label("accept", st, reasons, note, annotator, client_key, layers, request)

    def h_reject(self, st, reasons, note, annotator, client_key, layers, request: gr.Request):
        return self._label("reject", st, reasons, note, annotator, client_key, layers, request)

    def h_layers(self, st, layers, request: gr.Request):
        """Redraw the player with the chosen overlay layers (rendered server-side, cached per combination)."""
        vid = nav_current(st)
        if vid is None:
            return gr.skip()
        card = rs.video_card(self.svc.ws, vid)
        results = self.svc.video_results(vid)
        ov, key = self.overlay_data(card, results)
        return self.player(card, ov, key, layers)

    def h_after(self, st, shown_for=None):
        """Once a video is on screen (the page asks, debounced, after drawing it: off the key-press path): the
        up-next list, the last message and the header counts; when it is another video than the one drawn
        before (`shown_for`), the selected frame and the scoring log of the previous one are cleared."""
        cur = nav_current(st) if st else None
        fresh = cur != shown_for
        clear = (None, "", "") if fresh else (gr.skip(), gr.skip(), gr.skip())
        return (self.queue_html(st or new_nav()), (st or {}).get("msg", ""), counts_html(self.svc.ws),
                *clear, cur)

    def h_wait_overlays(self, st, layers, request: gr.Request):
        """Off the review path: wait for computed overlay data (if it was needed), then redraw the player."""
        player = self._player_when_ready(st, layers, request)
        return gr.skip() if player is None else player

    def _player_when_ready(self, st, layers, request: gr.Request) -> str | None:
        vid = nav_current(st) if st else None
        if vid is None or not layers:
            return None
        card = rs.video_card(self.svc.ws, vid)
        key = "v:" + card["sha256"]
        if not self.svc.worker.pending(key):
            return None
        fut = self.ensure_overlay_data(card)
        try:
            fut.result(timeout=300)
        except Exception as exc:  # noqa: BLE001
            gr.Warning(f"Overlay data failed: {exc}")
            return None
        if self.sessions.get(session_of(request)) != vid:
            return None
        return self.h_layers(st, layers, request)

    def h_frame(self, st, layers, evt: gr.EventData, request: gr.Request):
        """A point on the motion curve was selected: that frame with its overlays."""
        vid = nav_current(st)
        frame = getattr(evt, "frame", None)       # the curve's trigger('frame_select', {frame: k})
        if vid is None or frame is None:
            return gr.skip(), gr.skip()
        return self.frame_image(vid, int(frame), layers)

    def frame_image(self, vid: int, frame: int, layers: list[str] | None):
        card = rs.video_card(self.svc.ws, vid)
        results = self.svc.video_results(vid)
        ov, key = self.overlay_data(card, results)
        want = {LAYER_KEYS[x] for x in (layers or []) if x in LAYER_KEYS}
        path = ovl.render_frame_png(self.svc.root, card["sha256"], card["path"], frame, ov, want, key)
        info = explain.frame_words(motion_series(ov["motion"]), frame, card.get("frame_count"))
        return str(path), info

    def h_frame_api(self, video_id: int, frame: int, layers: list[str] | None = None) -> tuple[str, str]:
        return self.frame_image(int(video_id), int(frame), layers or LAYERS)

    def h_score(self, st, layers, request: gr.Request):
        """Score this video with every metric (curation.scoring), showing progress; cancellable."""
        vid = nav_current(st)
        if vid is None:
            raise gr.Error("No video selected.")
        ws = self.svc.ws
        key = f"score:{session_of(request)}"

        def work(job):
            job.progress(0.0, f"scoring video {vid}…")
            out = run_scoring(ws, video_ids=[vid], progress=job.progress, cancel=job.cancel)
            if not out["fresh"]:
                job.progress(1.0, "every metric is already scored for this video (cached)")
            return out["fresh"]

        try:
            job = self.jobs.start(key, f"Scoring video {vid}", work)
        except RuntimeError as exc:
            raise gr.Error(str(exc)) from None
        for md in self.jobs.follow(job, progress_md):
            yield md, gr.skip(), gr.skip(), gr.skip()
        if job.error and job.error != "cancelled":
            gr.Warning(f"Scoring failed: {job.error}")
        if self.sessions.get(session_of(request)) == vid:
            player, curve, _src, card, _p = self.view(st, session_of(request), layers)
            yield progress_md(job), player, curve, card
        else:
            yield progress_md(job), gr.skip(), gr.skip(), gr.skip()

    def h_cancel(self, request: gr.Request):
        ok = self.jobs.cancel(f"score:{session_of(request)}")
        return "Cancelling… (stops after the metric in progress)" if ok else "Nothing is running."

    # -- layout --------------------------------------------------------------------------------
    def build(self, annotator: gr.Textbox, counts: gr.HTML) -> None:
        ws = self.svc.ws
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240, elem_classes=["sidebar"]):
                gr.Markdown("#### Queue")
                label_state = gr.Dropdown(LABEL_STATES, value="unlabelled", label="Review state")
                model = gr.Dropdown([("All models", "")] + [(m, m) for m in rs.video_models(ws)], value="",
                                    label="Generator model")
                metric = gr.Dropdown(METRIC_CHOICES, value="", label="Metric range filter", elem_id="vid-metric")
                with gr.Row():
                    mmin = gr.Number(value=0, minimum=0, maximum=100, label="≥ %", min_width=70, elem_id="vid-mmin")
                    mmax = gr.Number(value=100, minimum=0, maximum=100, label="≤ %", min_width=70, elem_id="vid-mmax")
                order = gr.Dropdown([("Catalogue order", "id"), ("Newest first", "newest"),
                                     ("Metric low → high", "metric"),
                                     ("Metric vs designer (reviewed: disagree most first)", "disagreement")],
                                    value="id", label="Order", elem_id="vid-order")
                apply = gr.Button("Apply filters", elem_id="vid-apply")
                gr.Markdown("#### Up next")
                upnext = gr.HTML(elem_id="vid-upnext", js_on_load=JUMP_JS)     # a click on a row opens it
            with gr.Column(scale=3, min_width=460):
                progress = gr.HTML()
                # the decision keys and reasons above the video: at 1600x900 and 1440x900 they stay in view with it
                with gr.Row(elem_classes=["actions"]):
                    prev = gr.Button("← Prev [P]", elem_id="vid-prev", size="lg", min_width=80)
                    acc = gr.Button("Accept  [A]", elem_id="vid-accept", size="lg", elem_classes=["btn-good"])
                    rej = gr.Button("Reject  [R]", elem_id="vid-reject", size="lg", elem_classes=["btn-bad"])
                    skip = gr.Button("Skip  [S]", elem_id="vid-skip", size="lg")
                    undo = gr.Button("Undo  [Z]", elem_id="vid-undo", size="lg")
                    nxt = gr.Button("Next [N] →", elem_id="vid-next", size="lg", min_width=80)
                reasons = gr.CheckboxGroup(VIDEO_REASONS, label="Reasons", elem_id="vid-reasons", show_label=False,
                                           elem_classes=["compact-reasons"])
                player = gr.HTML(render.empty_state("Open the Videos tab", "loading the queue…"),
                                 elem_id="vid-player", min_height=300,
                                 js_on_load=shown_js(".vid-wrap", ".ov-status") + PLAYER_ON_LOAD)
                layers = gr.CheckboxGroup(LAYERS, value=DEFAULT_LAYERS, label="Overlays (remembered in this browser)",
                                          elem_id="vid-layers")
                gr.HTML('<div class="muted keys-hint"><span class="kbd">Space</span> play / pause · '
                        '<span class="kbd">,</span> <span class="kbd">.</span> one frame · <span class="kbd">[</span> '
                        '<span class="kbd">]</span> speed · <span class="kbd">A</span> accept · <span class="kbd">R'
                        '</span> reject · <span class="kbd">S</span> skip · <span class="kbd">Z</span> undo · '
                        '<span class="kbd">N</span> / <span class="kbd">P</span> next / previous (arrows too, unless '
                        'the player has focus: there they seek)</div>')
                curve = gr.HTML(elem_id="vid-curve", js_on_load=CURVE_JS)
                with gr.Row():
                    frame_img = gr.Image(label="Selected frame", elem_id="vid-frame", height=260, interactive=False,
                                         buttons=[])
                    frame_info = gr.Markdown(elem_id="vid-frame-info")
                note = gr.Textbox(label="Note", lines=1, placeholder="optional (keys are off while typing)",
                                  elem_id="vid-note")
                status = gr.Markdown(elem_id="vid-status")
            with gr.Column(scale=2, min_width=300):
                source = gr.HTML(elem_id="vid-source")
                gr.Markdown("#### Scorecard")
                card = gr.HTML(elem_id="vid-scorecard")
                with gr.Row():
                    score_btn = gr.Button("Score this video", variant="primary", elem_id="vid-score")
                    cancel_btn = gr.Button("Cancel", elem_id="vid-score-cancel", variant="stop")
                score_status = gr.Markdown(elem_id="vid-score-status")
        st = gr.State(new_nav())
        client_key = gr.Textbox(visible=False)
        filt = [label_state, model, metric, mmin, mmax, order, layers]
        outs = [st, player, curve, source, card, progress]
        wait_kw = dict(fn=self.h_wait_overlays, inputs=[st, layers], outputs=[player], show_progress="hidden",
                       api_visibility="private", concurrency_limit=2, concurrency_id="video-overlays")
        # key presses: one direct request (queue=False) with what must change at once; the up-next list and
        # message follow when the page has drawn the video, the player again once overlay data still being
        # computed is ready (`shown_js`, as on Images)
        fast = dict(concurrency_limit=None, show_progress="hidden", queue=False)
        shown_for = gr.State(None)      # the video the page drew last: its frame and log belong to it
        player.shown(self.h_after, [st, shown_for], [upnext, status, counts, frame_img, frame_info, score_status,
                                                     shown_for], show_progress="hidden", api_visibility="private",
                     queue=False, trigger_mode="always_last")
        player.pending(trigger_mode="always_last", **wait_kw)
        apply.click(self.h_load, filt, outs + [upnext], api_name="videos_load")
        self.load_args = (self.h_load, filt, outs + [upnext])
        label_in = [st, reasons, note, annotator, client_key, layers]
        label_out = outs + [reasons, note]
        for btn, fn, name in ((acc, self.h_accept, "video_accept"), (rej, self.h_reject, "video_reject"),
                              (skip, self.h_skip, "video_skip")):
            btn.click(fn, label_in, label_out, api_name=name, js=key_js(4, len(label_in), "#vid-player .vid-wrap"),
                      trigger_mode="multiple", **fast)
        undo.click(locked(self.locks, self.h_undo), [st, annotator, client_key, layers], outs,
                   api_name="video_undo", js=key_js(2, 4), **fast)
        prev.click(locked(self.locks, self.h_prev), [st, layers], outs, api_name="video_prev", **fast)
        nxt.click(locked(self.locks, self.h_next), [st, layers], outs, api_name="video_next", **fast)
        upnext.jump(locked(self.locks, self.h_jump), [st, layers], outs, api_visibility="private", **fast)
        layers.change(self.h_layers, [st, layers], [player], api_name="video_layers", js=LAYERS_JS,
                      show_progress="minimal", concurrency_limit=2)
        self.layers = layers
        curve.frame_select(self.h_frame, [st, layers], [frame_img, frame_info], api_visibility="private",
                           show_progress="minimal")
        score_btn.click(self.h_score, [st, layers], [score_status, player, curve, card], api_name="video_score",
                        concurrency_limit=2)
        cancel_btn.click(self.h_cancel, None, [score_status], api_name="video_score_cancel", concurrency_limit=None)
        gr.api(self.h_frame_api, api_name="video_frame")

    def on_app_load(self, demo: gr.Blocks) -> None:
        """The overlay layers this browser chose last time first, then the queue (drawn with them)."""
        fn, inputs, outputs = self.load_args
        demo.load(None, None, [self.layers], js=RESTORE_LAYERS_JS).then(
            fn, inputs, outputs, api_visibility="private", show_progress="hidden")
