// One-key review. Keys never fire while typing in a text field, and only on the visible tab.
(function () {
  if (window.__advfxKeys) return;
  window.__advfxKeys = true;
  // Run history is off (labeling/ui.py), but Gradio only deletes the history of the current server process
  // (its app_id is random per start): drop what earlier runs of the app left here, notes and names included.
  try {
    for (const k of Object.keys(localStorage)) if (k.startsWith("gradio:run-history:")) localStorage.removeItem(k);
  } catch (e) { /* storage disabled */ }
  window.advfxKey = function () {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  };
  const MAP = {
    images: {g: "img-good", b: "img-bad", s: "img-skip", z: "img-undo", arrowleft: "img-prev", arrowright: "img-next"},
    videos: {a: "vid-accept", r: "vid-reject", s: "vid-skip", z: "vid-undo", arrowleft: "vid-prev", arrowright: "vid-next"},
    compare: {"1": "cmp-key-1", "2": "cmp-key-2", "0": "cmp-key-0", z: "cmp-undo"},
    // Images → Grid; arrows, Space and Esc move the cursor or change the selection in grid.js first
    grid: {g: "grid-good", b: "grid-bad", s: "grid-skip", z: "grid-undo", a: "grid-all", n: "grid-next",
           p: "grid-prev"},
  };
  function typing(el) {
    if (!el) return false;
    const tag = (el.tagName || "").toLowerCase();
    if (tag === "textarea" || tag === "select" || el.isContentEditable) return true;
    if (tag === "input") {
      const t = (el.type || "text").toLowerCase();
      return !["checkbox", "radio", "button", "submit", "range", "reset"].includes(t);
    }
    return false;
  }
  // the one rule for "keys are off while typing", shared with player.js and bestof.js (loaded after this)
  window.advfxTyping = typing;
  function visible(id) {
    const el = document.getElementById(id);
    return el && el.offsetParent !== null ? el : null;
  }
  function activeTab() {
    if (visible("tab-img-grid-root")) return "grid";   // inside the Images tab: before "images"
    for (const t of ["images", "videos", "compare"]) if (visible("tab-" + t + "-root")) return t;
    return null;
  }
  function press(id) {
    const el = document.getElementById(id);
    if (!el) return false;
    const btn = el.tagName === "BUTTON" ? el : el.querySelector("button");
    if (!btn || btn.disabled) return false;
    btn.click();
    btn.classList.add("key-flash");
    setTimeout(() => btn.classList.remove("key-flash"), 180);
    return true;
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    if (typing(e.target) || typing(document.activeElement)) return;
    const tab = activeTab();
    if (!tab) return;
    const k = e.key.toLowerCase();
    if (tab === "grid" && window.advfxGrid && window.advfxGrid.key(k)) { e.preventDefault(); return; }
    const id = MAP[tab][k];
    if (id && press(id)) e.preventDefault();
  }, true);
})();
