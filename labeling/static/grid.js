// Images → Grid, the browser side: a cursor and a selection over the page's tiles, kept here so that moving
// and selecting cost no request. A label action (labeling/ui_grid.py, TAKE_JS) takes the selection (else the
// cursor's tile) with a fresh key, marks those tiles pending at once, and the server's redraw, which names the
// key it answers (data-done), replaces the marks with the stored labels.
(function () {
  if (window.advfxGrid) return;
  let root = null, cursor = 0, anchor = null, pageKey = null;
  const sel = new Set();            // selected item ids (strings, as in data-tile)
  const pending = new Map();        // client key -> {ids, value}: sent, not yet answered

  const tiles = () => (root ? Array.from(root.querySelectorAll(".tile")) : []);

  function columns(ts) {
    if (ts.length < 2) return 1;
    const top = ts[0].offsetTop;
    let n = 0;
    while (n < ts.length && ts[n].offsetTop === top) n++;
    return Math.max(1, n);
  }

  function paint(scroll) {
    const ts = tiles();
    if (!ts.length) return;
    cursor = Math.max(0, Math.min(cursor, ts.length - 1));
    const marks = new Map();
    for (const p of pending.values()) for (const id of p.ids) marks.set(id, p.value);
    ts.forEach((t, i) => {
      t.classList.toggle("cursor", i === cursor);
      t.classList.toggle("selected", sel.has(t.dataset.tile));
      const m = marks.get(t.dataset.tile);
      if (m) t.dataset.pending = m; else delete t.dataset.pending;
    });
    if (scroll) ts[cursor].scrollIntoView({block: "nearest"});
  }

  function clickTile(e) {
    const t = e.target.closest(".tile");
    if (!t) return;
    const ts = tiles(), i = ts.indexOf(t);
    if (e.shiftKey && anchor !== null) {
      const [a, b] = anchor < i ? [anchor, i] : [i, anchor];
      for (let k = a; k <= b; k++) sel.add(ts[k].dataset.tile);
    } else {
      const id = t.dataset.tile;
      if (sel.has(id)) sel.delete(id); else sel.add(id);
      anchor = i;
    }
    cursor = i;
    paint(false);
  }

  window.advfxGrid = {
    mount(element) {
      root = element;
      element.addEventListener("click", clickTile);
      element.addEventListener("mousedown", (e) => { if (e.shiftKey) e.preventDefault(); });  // no text selection
      this.rendered();
    },
    // The server redrew the grid: a new page (or a new load) starts a fresh cursor and selection; an answer to a
    // label request drops that request's pending marks; an undo's answer puts the cursor on the undone item.
    rendered() {
      const page = root && root.querySelector(".grid-page");
      if (!page) return;
      if (page.dataset.done) pending.delete(page.dataset.done);
      const key = (page.dataset.gen || "") + ":" + (page.dataset.page || "");
      if (key !== pageKey) { sel.clear(); cursor = 0; anchor = null; pageKey = key; }
      const ts = tiles(), ids = new Set(ts.map((t) => t.dataset.tile));
      for (const id of Array.from(sel)) if (!ids.has(id)) sel.delete(id);
      if (page.dataset.focus) {
        const i = ts.findIndex((t) => t.dataset.tile === page.dataset.focus);
        if (i >= 0) cursor = i;
      }
      paint(false);
    },
    // The ids a label action applies to (the selection in page order, else the cursor's tile) and a fresh key,
    // as the JSON the server's handler reads. A labelled selection is cleared; a labelled cursor moves on.
    take(value) {
      const ts = tiles();
      let ids = [];
      if (sel.size) ids = ts.map((t) => t.dataset.tile).filter((id) => sel.has(id));
      else if (ts[cursor]) ids = [ts[cursor].dataset.tile];
      const key = window.advfxKey ? window.advfxKey() : Date.now().toString(36) + Math.random().toString(36).slice(2);
      if (ids.length) pending.set(key, {ids, value});
      if (sel.size) { sel.clear(); anchor = null; } else if (ids.length) cursor = Math.min(cursor + 1, ts.length - 1);
      paint(true);
      return JSON.stringify({ids: ids.map(Number), key});
    },
    selectAll() {
      const ts = tiles();
      const all = ts.length > 0 && ts.every((t) => sel.has(t.dataset.tile));
      sel.clear();
      if (!all) ts.forEach((t) => sel.add(t.dataset.tile));
      anchor = null;
      paint(false);
    },
    // Keys that only move the cursor or change the selection (keys.js asks first, on the Grid tab only).
    key(k) {
      const ts = tiles();
      if (!ts.length) return false;
      const cols = columns(ts);
      const step = {arrowleft: -1, arrowright: 1, arrowup: -cols, arrowdown: cols}[k];
      if (step !== undefined) {
        const next = cursor + step;
        if (next >= 0 && next < ts.length) cursor = next;
        paint(true);
        return true;
      }
      if (k === " ") {
        const id = ts[cursor].dataset.tile;
        if (sel.has(id)) sel.delete(id); else sel.add(id);
        anchor = cursor;
        paint(false);
        return true;
      }
      if (k === "escape") { sel.clear(); anchor = null; paint(false); return true; }
      return false;
    },
  };
})();
