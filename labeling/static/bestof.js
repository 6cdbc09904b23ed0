// Best of N, the browser side: which candidate tile is selected (keys 1-9, a click), kept here so that choosing
// costs no request. A label action (labeling/ui_bestof.py, TAKE_JS) sends the case on screen, the selected tile
// and a fresh key; the tiles it labels are marked pending at once, and the server's redraw, which names the key
// it answers (data-done), replaces the marks with the stored labels. Keys act only on the Best of N tab.
(function () {
  if (window.advfxBestof) return;
  let root = null, sel = -1, caseKey = null;
  const pending = new Map();        // client key -> {ids, value}: sent, not yet answered
  const KEYS = {a: "bo-accept", r: "bo-reject", enter: "bo-decide", n: "bo-next", p: "bo-prev", z: "bo-undo"};

  const tiles = () => (root ? Array.from(root.querySelectorAll(".bo-tile")) : []);
  const caseEl = () => (root ? root.querySelector(".bo-case") : null);
  const newKey = () => (window.advfxKey ? window.advfxKey()
                                        : Date.now().toString(36) + Math.random().toString(36).slice(2));

  function paint() {
    const marks = new Map();
    for (const p of pending.values()) for (const [id, v] of Object.entries(p)) marks.set(id, v);
    tiles().forEach((t, i) => {
      t.classList.toggle("selected", i === sel);
      const m = marks.get(t.dataset.tile);
      if (m) t.dataset.pending = m; else delete t.dataset.pending;
    });
  }

  const typing = (el) => window.advfxTyping(el);   // keys.js: keys are off while typing

  function press(id) {
    const el = document.getElementById(id);
    const btn = el && (el.tagName === "BUTTON" ? el : el.querySelector("button"));
    if (!btn || btn.disabled) return false;
    btn.click();
    btn.classList.add("key-flash");
    setTimeout(() => btn.classList.remove("key-flash"), 180);
    return true;
  }

  const api = {
    mount(element) {
      root = element;
      element.addEventListener("click", (e) => {
        const t = e.target.closest(".bo-tile");
        if (!t) return;
        api.select(tiles().indexOf(t));
        const c = caseEl();
        if (c) c.focus({preventScroll: true});      // keys (and the player's arrows) act here now
      });
      api.rendered();
    },
    // The server redrew the case: a new case (or a new load) starts with nothing selected; the answer to a label
    // request drops that request's pending marks.
    rendered() {
      const c = caseEl() || (root && root.querySelector(".bo-empty"));
      if (!c) return;
      if (c.dataset.done) pending.delete(c.dataset.done);
      const key = (c.dataset.case || "") + "@" + (c.dataset.gen || "");
      if (key !== caseKey) { sel = -1; caseKey = key; }
      if (sel >= tiles().length) sel = -1;
      paint();
    },
    select(i) {
      if (i < 0 || i >= tiles().length) return;
      sel = i;
      paint();
    },
    // What an action sends ({"case", "ids", "key"}): for accept / reject the selected tile, which moves on to the
    // next tile; for "decide" the selected tile is the one accepted and every other tile of the case is rejected.
    take(value) {
      const c = caseEl(), ts = tiles(), key = newKey();
      const chosen = sel >= 0 && ts[sel] ? ts[sel].dataset.tile : null;
      const marks = {};
      if (chosen && value === "decide") ts.forEach((t) => { marks[t.dataset.tile] = t === ts[sel] ? "accept" : "reject"; });
      else if (chosen) marks[chosen] = value;
      if (Object.keys(marks).length) pending.set(key, marks);
      if (chosen && value !== "decide" && sel < ts.length - 1) sel += 1;
      paint();
      return JSON.stringify({case: c ? c.dataset.case : "", ids: chosen ? [Number(chosen)] : [], key});
    },
  };
  window.advfxBestof = api;

  window.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    if (typing(e.target) || typing(document.activeElement)) return;
    const tab = document.getElementById("tab-bestof-root");
    if (!tab || tab.offsetParent === null) return;
    const k = e.key.toLowerCase();
    let done = false;
    if (/^[1-9]$/.test(k)) { api.select(Number(k) - 1); done = true; }
    else if (KEYS[k]) done = press(KEYS[k]);
    if (done) { e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);
})();
