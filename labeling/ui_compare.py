"""The Compare tab (user study): two models' videos of one case side by side, in sync; pick the better one on
prompt following and on quality in the advertising context (keys 1 / 2 / 0 for each criterion)."""
from __future__ import annotations

import gradio as gr

from storage import review_store as rs

from . import render
from .service import LabelError, ReviewService
from .ui_common import annotator_of, key_js, session_of

CHOICES = [("Left  [1]", "left"), ("Right  [2]", "right"), ("Tie  [0]", "tie")]

SYNC_JS = """
const sync = (e) => {
  const vids = Array.from(element.querySelectorAll('video.cmp-v'));
  if (vids.length !== 2 || !vids.includes(e.target)) return;
  const other = vids[0] === e.target ? vids[1] : vids[0];
  if (element.__syncing) return;
  element.__syncing = true;
  try {
    if (e.type === 'play' && other.paused) other.play();
    if (e.type === 'pause' && !other.paused) other.pause();
    if ((e.type === 'seeked' || e.type === 'play') && Math.abs(other.currentTime - e.target.currentTime) > 0.08)
      other.currentTime = e.target.currentTime;
  } finally { setTimeout(() => { element.__syncing = false; }, 60); }
};
for (const t of ['play', 'pause', 'seeked']) element.addEventListener(t, sync, true);
"""

# keys 1 / 2 / 0 fill prompt following first, then ad quality; the second choice submits the pair
KEY_CHOICE_JS = """(pf, aq) => {
  const v = %s;
  if (!pf) return [v, aq];
  if (!aq) { setTimeout(() => { const b = document.querySelector('#cmp-submit'); (b.tagName === 'BUTTON' ? b : b.querySelector('button')).click(); }, 120); return [pf, v]; }
  return [pf, v];
}"""


class CompareTab:
    def __init__(self, svc: ReviewService) -> None:
        self.svc = svc

    def results_html(self) -> str:
        return render.compare_results(rs.pair_results(self.svc.ws))

    # -- handlers ------------------------------------------------------------------------------
    def h_next(self, annotator, request: gr.Request):
        ann = annotator_of(request, annotator) or "anonymous"
        pair = self.svc.next_pair(ann)
        vids, head = render.compare_pair(pair)
        return pair, vids, head, None, None, self.results_html()

    @staticmethod
    def tell(text: str, n_outputs: int) -> tuple:
        """Outputs of a choice or undo that changed nothing: a warning and the status line say why; the choices
        made stay, to be saved once fixed."""
        gr.Warning(text)
        return (*[gr.skip()] * (n_outputs - 1), text)

    def h_submit(self, pair, pf, aq, annotator, client_key, request: gr.Request):
        if not pair:
            return self.tell("No pair loaded.", 7)
        if not pf or not aq:
            return self.tell("Choose left, right or tie for both criteria (keys 1 / 2 / 0).", 7)
        try:
            ev = self.svc.judge_pair(left_triple=pair["left"]["triple_id"], right_triple=pair["right"]["triple_id"],
                                     prompt_following=pf, ad_quality=aq, annotator=annotator_of(request, annotator),
                                     client_key=client_key or None, session=session_of(request))
        except LabelError as exc:
            return self.tell(str(exc), 7)
        msg = (f"Saved (event {ev['event_id']}): prompt following → {pf}, ad quality → {aq}. "
               f"Left was {pair['left']['model']}, right was {pair['right']['model']}.")
        nxt = self.svc.next_pair(annotator_of(request, annotator))
        vids, head = render.compare_pair(nxt)
        return nxt, vids, head, None, None, self.results_html(), msg

    def h_undo(self, annotator, client_key, request: gr.Request):
        try:
            res = self.svc.undo(annotator=annotator_of(request, annotator), item_kinds=("pair",),
                                client_key=client_key or None, session=session_of(request))
        except LabelError as exc:
            return self.tell(str(exc), 2)
        return self.results_html(), ("Nothing to undo" if not res else f"Undone pair judgement {res['undone_event']}")

    def build(self, annotator: gr.Textbox) -> None:
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                head = gr.HTML(elem_id="cmp-head")
                vids = gr.HTML(render.empty_state("Loading…", "drawing a pair"), elem_id="cmp-videos",
                               js_on_load=SYNC_JS)
                with gr.Row():
                    pf = gr.Radio(CHOICES, label="Prompt following: which video follows the prompt better?",
                                  elem_id="cmp-pf")
                    aq = gr.Radio(CHOICES, label="Quality in the advertising context: which is the better ad?",
                                  elem_id="cmp-aq")
                with gr.Row(elem_classes=["actions"]):
                    submit = gr.Button("Save choice", variant="primary", elem_id="cmp-submit")
                    skip = gr.Button("Another pair", elem_id="cmp-next")
                    undo = gr.Button("Undo  [Z]", elem_id="cmp-undo")
                    k1 = gr.Button("1", elem_id="cmp-key-1", elem_classes=["hidden-key"])
                    k2 = gr.Button("2", elem_id="cmp-key-2", elem_classes=["hidden-key"])
                    k0 = gr.Button("0", elem_id="cmp-key-0", elem_classes=["hidden-key"])
                status = gr.Markdown(elem_id="cmp-status")
                gr.HTML('<div class="muted">Keys: <span class="kbd">1</span> left · <span class="kbd">2</span> right · '
                        '<span class="kbd">0</span> tie — first for prompt following, then for ad quality (the '
                        'second key saves). Playing, pausing or seeking one video moves the other.</div>')
            with gr.Column(scale=1, min_width=260):
                gr.Markdown("#### Results so far")
                results = gr.HTML(elem_id="cmp-results")
        pair = gr.State(None)
        client_key = gr.Textbox(visible=False)
        skip.click(self.h_next, [annotator], [pair, vids, head, pf, aq, results], api_name="compare_next")
        submit.click(self.h_submit, [pair, pf, aq, annotator, client_key], [pair, vids, head, pf, aq, results, status],
                     api_name="compare_choose", js=key_js(4, 5), concurrency_limit=None)
        undo.click(self.h_undo, [annotator, client_key], [results, status], api_name="compare_undo",
                   js=key_js(1, 2), concurrency_limit=None)
        for btn, v in ((k1, "'left'"), (k2, "'right'"), (k0, "'tie'")):
            btn.click(None, [pf, aq], [pf, aq], js=KEY_CHOICE_JS % v)
        self.load_args = (self.h_next, [annotator], [pair, vids, head, pf, aq, results])

    def on_app_load(self, demo: gr.Blocks, annotator: gr.Textbox) -> None:
        fn, inputs, outputs = self.load_args
        demo.load(fn, inputs, outputs, api_visibility="private", show_progress="hidden")
