// The video player of the Videos tab and of Best of N, the browser side. A player is an element `.pl` holding
// one or more <video> (Best of N: one per candidate, driven together) and its bar (render.player_bar): play /
// pause, one-frame steps, playback speed, and for a group a shared scrubber. Videos open muted and looping and
// start at once; a redraw of the same item (an overlay layer ticked: a new src) keeps the position, the
// paused state and the speed. Keys (window, capture phase: before keys.js, so they win on these tabs):
// Space play/pause, `,` `.` one frame back/forward, `[` `]` slower/faster; while focus is inside a player the
// arrows seek ±1 s and never reach keys.js's previous/next (N / P move on the Videos tab instead).
(function () {
  if (window.advfxPlayer) return;
  const RATES = [0.25, 0.5, 1, 1.5, 2];
  const FALLBACK_FPS = 30;            // a video whose frame rate storage does not know: steps of 1/30 s
  const LAYERS_KEY = "advfx-video-layers";
  let rate = 1;                       // kept for the page's life: the next video plays at the chosen speed
  const last = new WeakMap();         // gr.HTML root -> {item, time, paused} of what it showed

  const vids = (pl) => (pl ? Array.from(pl.querySelectorAll("video")) : []);
  const fpsOf = (v) => (+v.dataset.fps > 0 ? +v.dataset.fps : FALLBACK_FPS);
  const quiet = (p) => { if (p && p.catch) p.catch(() => {}); };

  const typing = (el) => window.advfxTyping(el);   // keys.js: keys are off while typing
  const shown = (el) => el && el.offsetParent !== null;
  function visibleTab() {
    for (const t of ["bestof", "videos"]) if (shown(document.getElementById("tab-" + t + "-root"))) return t;
    return null;
  }
  function activePlayer() {
    const host = document.getElementById(visibleTab() === "bestof" ? "bo-view" : "vid-player");
    const pl = host && host.querySelector(".pl");
    return shown(pl) ? pl : null;
  }

  function paint(pl) {
    if (!pl) return;
    const vs = vids(pl), playing = vs.some((v) => !v.paused);
    pl.classList.toggle("playing", playing);
    for (const b of pl.querySelectorAll(".pl-rate")) b.classList.toggle("on", +b.dataset.rate === rate);
    const v = vs[0], scrub = pl.querySelector(".pl-scrub");
    if (v && scrub && document.activeElement !== scrub) {
      const d = Math.max(...vs.map((x) => x.duration || 0));
      scrub.value = d ? String(Math.round(1000 * v.currentTime / d)) : "0";
    }
  }

  function counter(pl) {
    // the frame counter is drawn here, not into the video: ticking it on or off costs no re-encoding
    const box = pl.querySelector(".pl-counter"), v = vids(pl)[0];
    if (!box || !v) return;
    const tick = () => {
      const fps = fpsOf(v), n = +v.dataset.frames || 0;
      const f = Math.min(Math.floor(v.currentTime * fps + 1e-3), n ? n - 1 : Infinity);
      box.textContent = "frame " + (f + 1) + (n ? " / " + n : "");
    };
    if (v.requestVideoFrameCallback) {
      const loop = () => { if (v.isConnected) { tick(); v.requestVideoFrameCallback(loop); } };
      v.requestVideoFrameCallback(loop);
    }
    for (const t of ["seeked", "loadeddata", "timeupdate"]) v.addEventListener(t, tick);
    tick();
  }

  const api = {
    RATES,
    play(pl) { vids(pl).forEach((v) => quiet(v.play())); },
    pause(pl) { vids(pl).forEach((v) => v.pause()); },
    toggle(pl) {
      const vs = vids(pl);
      if (!vs.length) return;
      if (vs.some((v) => !v.paused)) api.pause(pl); else api.play(pl);
    },
    // One frame of each video at its own frame rate; lands mid-frame so the shown frame is never ambiguous.
    step(pl, dir) {
      for (const v of vids(pl)) {
        v.pause();
        const fps = fpsOf(v), f = Math.floor(v.currentTime * fps + 1e-3) + dir;
        const end = (v.duration || Infinity) - 0.5 / fps;
        v.currentTime = Math.max(0, Math.min(end, (f + 0.5) / fps));
      }
    },
    seek(pl, t) {
      for (const v of vids(pl)) v.currentTime = Math.max(0, Math.min((v.duration || t) - 0.01, t));
    },
    nudge(pl, dt) { const v = vids(pl)[0]; if (v) api.seek(pl, v.currentTime + dt); },
    setRate(pl, r) {
      rate = r;
      vids(pl).forEach((v) => { v.playbackRate = r; });
      paint(pl);
    },
    faster(pl, dir) {
      const k = Math.max(0, Math.min(RATES.length - 1, RATES.indexOf(rate) + dir));
      api.setRate(pl, RATES[k]);
    },
    // The overlay layers ticked, remembered in this browser; the counter is shown or hidden here at once.
    setLayers(layers) {
      try { localStorage.setItem(LAYERS_KEY, JSON.stringify(layers || [])); } catch (e) { /* storage off */ }
      document.body.classList.toggle("pl-no-counter", !(layers || []).includes("Frame counter"));
    },
    storedLayers(fallback) {
      try {
        const v = JSON.parse(localStorage.getItem(LAYERS_KEY));
        if (Array.isArray(v)) { api.setLayers(v); return v; }
      } catch (e) { /* nothing stored */ }
      api.setLayers(fallback);
      return fallback;
    },
    // A gr.HTML that holds a player: the bar's buttons, the scrubber, and the video events repaint the bar.
    mount(root) {
      root.addEventListener("click", (e) => {
        const pl = e.target.closest(".pl");
        if (!pl) return;
        const b = e.target.closest("button");
        if (!b || !pl.contains(b)) return;
        if (b.classList.contains("pl-play")) api.toggle(pl);
        else if (b.dataset.step) api.step(pl, +b.dataset.step);
        else if (b.dataset.rate) api.setRate(pl, +b.dataset.rate);
      });
      root.addEventListener("input", (e) => {
        if (!e.target.classList.contains("pl-scrub")) return;
        const pl = e.target.closest(".pl");
        const d = Math.max(...vids(pl).map((v) => v.duration || 0));
        api.seek(pl, d * (+e.target.value) / 1000);
      });
      // videos of a group drift apart as they loop (their lengths differ): the others follow the first one
      // whenever it is at a time they have, and are off by more than a few frames
      root.addEventListener("timeupdate", (e) => {
        const pl = e.target.closest && e.target.closest(".pl");
        const vs = vids(pl);
        if (vs.length < 2 || e.target !== vs[0] || vs[0].paused || vs[0].seeking) return;
        const t = vs[0].currentTime;
        for (const v of vs.slice(1)) {
          if (!v.seeking && t < (v.duration || 0) - 0.1 && Math.abs(v.currentTime - t) > 0.25) v.currentTime = t;
        }
      }, true);
      for (const t of ["play", "pause", "timeupdate", "ratechange"]) {
        root.addEventListener(t, (e) => {
          const pl = e.target.closest && e.target.closest(".pl");
          paint(pl);
          const v = vids(pl)[0];
          if (v && e.target === v) last.set(root, {item: pl.dataset.item, time: v.currentTime, paused: v.paused});
        }, true);
      }
      api.rendered(root);
    },
    // The server redrew the player: the same item keeps its place and state, a new one starts playing.
    rendered(root) {
      const pl = root.querySelector(".pl");
      if (!pl) return;
      const prev = last.get(root), same = prev && prev.item === pl.dataset.item;
      const vs = vids(pl);
      vs.forEach((v) => { v.muted = true; v.loop = true; v.playbackRate = rate; });
      if (same) {
        const restore = () => {
          vs.forEach((v) => { v.currentTime = Math.min(prev.time, (v.duration || prev.time) - 0.01); v.playbackRate = rate; });
          if (!prev.paused) api.play(pl);
        };
        if (vs.every((v) => v.readyState >= 1)) restore();
        else vs[0] && vs[0].addEventListener("loadedmetadata", restore, {once: true});
      } else {
        last.set(root, {item: pl.dataset.item, time: 0, paused: false});
        if (vs.length < 2) api.play(pl);
        else {
          // a group starts together once every video can play (or after 3 s), not each as it arrives
          const ready = vs.map((v) => (v.readyState >= 3 ? Promise.resolve()
            : new Promise((r) => v.addEventListener("canplay", r, {once: true}))));
          Promise.race([Promise.all(ready), new Promise((r) => setTimeout(r, 3000))]).then(() => {
            if (!pl.isConnected) return;
            vs.forEach((v) => { v.currentTime = 0; });
            api.play(pl);
          });
        }
      }
      counter(pl);
      paint(pl);
    },
  };
  window.advfxPlayer = api;

  window.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target) || typing(document.activeElement)) return;
    const tab = visibleTab();
    if (!tab) return;
    const pl = activePlayer();
    const k = e.key.toLowerCase();
    const focused = pl && pl.contains(document.activeElement);
    let done = true;
    const box = document.activeElement && ["checkbox", "radio"].includes((document.activeElement.type || "").toLowerCase());
    if (k === " " && pl && !(box && !focused)) { if (!e.repeat) api.toggle(pl); }
    else if (k === "," && pl) api.step(pl, -1);
    else if (k === "." && pl) api.step(pl, +1);
    else if (k === "[" && pl) api.faster(pl, -1);
    else if (k === "]" && pl) api.faster(pl, +1);
    else if ((k === "arrowleft" || k === "arrowright") && focused) api.nudge(pl, k === "arrowleft" ? -1 : 1);
    else if ((k === "arrowup" || k === "arrowdown") && focused) { /* no scrolling away from the player */ }
    else if (tab === "videos" && (k === "n" || k === "p") && !e.repeat) {
      const el = document.getElementById(k === "n" ? "vid-next" : "vid-prev");
      const btn = el && (el.tagName === "BUTTON" ? el : el.querySelector("button"));
      if (btn) btn.click(); else done = false;
    } else done = false;
    if (done) { e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);
})();
