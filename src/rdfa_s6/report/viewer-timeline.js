/* rdfa-s6 viewer, part 2 of 3: the timeline of one video (SVG: one lane per class, ground truth above the
   detections, opacity = score), zoom and pan, hover details, the player and its playhead. */
  // layout in pixels: class-name gutter, right margin, time axis, ground-truth strip, detection strip, lane gap
  var GUTTER = 160, RIGHT = 12, AXIS = 24, GT_H = 9, DET_H = 16, LANE_PAD = 7;
  var LANE = GT_H + 2 + DET_H + LANE_PAD;
  var MIN_OPACITY = 0.12;
  function ticks(a, b, px) {
    var span = b - a, target = Math.max(2, Math.floor(px / 80));
    var raw = span / target, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).filter(function (s) { return s >= raw; })[0];
    var out = [];
    for (var t = Math.ceil(a / step) * step; t <= b + 1e-9; t += step) out.push(Math.round(t / step) * step);
    return { values: out, step: step };
  }

  /* lanes: the classes of the video's ground truth (in class order), then the classes with a detection at or
     above the threshold, by best score */
  function laneClasses(v, shown) {
    var seen = {}, lanes = [];
    v._gts.slice().sort(function (a, b) { return a.c - b.c; }).forEach(function (g) {
      if (!seen[g.c]) { seen[g.c] = 1; lanes.push(g.c); }
    });
    for (var i = 0; i < shown; i++) { var c = v._dets[i].c; if (!seen[c]) { seen[c] = 1; lanes.push(c); } }
    return lanes;
  }

  function drawTimeline() {
    if (state.current < 0) return;
    var v = DATA.videos[state.current], shown = countAbove(v, state.thrInt);
    var W = Math.max(320, $("timeline-box").clientWidth), lanes = laneClasses(v, shown);
    state.lanes = lanes;
    var H = AXIS + Math.max(1, lanes.length) * LANE + 4;
    var v0 = state.view[0], v1 = state.view[1], plotW = W - GUTTER - RIGHT;
    var x = function (t) { return GUTTER + (t - v0) / (v1 - v0) * plotW; };
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var defs = svg.appendChild(el("svg:defs"));
    var clip = defs.appendChild(el("svg:clipPath", { id: "plot-clip" }));
    clip.appendChild(el("svg:rect", { x: GUTTER, y: 0, width: plotW, height: H }));
    var laneY = {};
    lanes.forEach(function (c, r) {
      var y = AXIS + r * LANE;
      laneY[c] = y;
      if (r % 2 === 0) svg.appendChild(el("svg:rect", { "class": "lane-bg", x: 0, y: y, width: W, height: LANE }));
      var name = DATA.classes[c];
      var label = svg.appendChild(el("svg:text", { x: 6, y: y + LANE / 2 + 4 }, name.length > 22 ? name.slice(0, 21) + "\u2026" : name));
      label.appendChild(el("svg:title", null, name));
      svg.appendChild(el("svg:rect", { x: GUTTER - 12, y: y + LANE / 2 - 4, width: 8, height: 8, fill: color(c) }));
    });
    if (!lanes.length) {
      svg.appendChild(el("svg:text", { x: GUTTER, y: AXIS + 18 }, "no ground truth and no detection at or above the threshold"));
    }
    var axis = svg.appendChild(el("svg:g", { "class": "axis" }));
    var tk = ticks(v0, v1, plotW), digits = tk.step < 1 ? Math.min(3, Math.ceil(-Math.log10(tk.step))) : 0;
    tk.values.forEach(function (t) {
      axis.appendChild(el("svg:line", { "class": "grid", x1: x(t), x2: x(t), y1: AXIS - 4, y2: H }));
      axis.appendChild(el("svg:text", { x: x(t), y: AXIS - 8, "text-anchor": "middle" }, t.toFixed(digits) + "s"));
    });
    var plot = svg.appendChild(el("svg:g", { "clip-path": "url(#plot-clip)" }));
    v._gts.forEach(function (g) {
      if (g.e < v0 || g.s > v1) return;
      plot.appendChild(el("svg:rect", { "class": "gt", "data-k": g.k, x: x(g.s), y: laneY[g.c] + 2,
        width: Math.max(1, x(g.e) - x(g.s)), height: GT_H, fill: color(g.c) }));
    });
    var drawn = 0;
    for (var i = shown - 1; i >= 0; i--) {  // weakest first: the strongest are drawn on top
      var d = v._dets[i];
      if (d.e < v0 || d.s > v1) continue;
      plot.appendChild(el("svg:rect", { "class": "det", "data-k": d.k, x: x(d.s), y: laneY[d.c] + 2 + GT_H + 2,
        width: Math.max(1, x(d.e) - x(d.s)), height: DET_H, fill: color(d.c),
        "fill-opacity": Math.min(1, Math.max(MIN_OPACITY, d.score)).toFixed(3) }));
      drawn++;
    }
    state.drawn = drawn;
    svg.setAttribute("data-drawn", String(drawn));
    svg.setAttribute("data-shown", String(shown));
    state.x = x;
    state.playhead = plot.appendChild(el("svg:line", { "class": "playhead", y1: AXIS - 4, y2: H, visibility: "hidden" }));
    movePlayhead();
  }

  /* ---- player and playhead ---- */
  function movePlayhead() {
    if (!state.playhead || player.hidden || !player.getAttribute("src")) return;
    var t = player.currentTime, px = state.x(t);
    state.playhead.setAttribute("x1", px); state.playhead.setAttribute("x2", px);
    state.playhead.setAttribute("visibility", t >= state.view[0] && t <= state.view[1] ? "visible" : "hidden");
    svg.setAttribute("data-playhead", t.toFixed(3));
  }
  function playLoop() { movePlayhead(); if (!player.paused && !player.ended) requestAnimationFrame(playLoop); }
  ["timeupdate", "seeked", "loadedmetadata"].forEach(function (ev) { player.addEventListener(ev, movePlayhead); });
  player.addEventListener("play", function () { requestAnimationFrame(playLoop); });
  player.addEventListener("loadedmetadata", function () {
    if (isFinite(player.duration) && player.duration > state.full[1]) {
      var fit = state.view[0] === state.full[0] && state.view[1] === state.full[1];
      state.full[1] = player.duration;
      if (fit) state.view = state.full.slice();
      drawTimeline();
    }
  });
  function seek(t) {
    if (player.hidden || !player.getAttribute("src")) return;
    player.currentTime = Math.max(0, t);
    movePlayhead();
  }

  /* ---- zoom, pan, hover, click ---- */
  function zoom(factor, center) {
    var v0 = state.view[0], v1 = state.view[1], f = state.full, span = v1 - v0;
    if (center === undefined) center = (v0 + v1) / 2;
    var minSpan = Math.max((f[1] - f[0]) / 5000, 0.01);
    var ns = Math.min(f[1] - f[0], Math.max(minSpan, span * factor));
    var a = center - (center - v0) * ns / span;
    a = Math.min(Math.max(a, f[0]), f[1] - ns);
    state.view = [a, a + ns];
    drawTimeline();
  }
  function timeAt(clientX) {
    var r = svg.getBoundingClientRect(), W = r.width, plotW = W - GUTTER - RIGHT;
    return state.view[0] + (clientX - r.left - GUTTER) / plotW * (state.view[1] - state.view[0]);
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    zoom(Math.exp(ev.deltaY * 0.0015), timeAt(ev.clientX));
  }, { passive: false });
  svg.addEventListener("dblclick", function () { state.view = state.full.slice(); drawTimeline(); });
  $("zoom-in").addEventListener("click", function () { zoom(0.5); });
  $("zoom-out").addEventListener("click", function () { zoom(2); });
  $("zoom-reset").addEventListener("click", function () { state.view = state.full.slice(); drawTimeline(); });
  var drag = null;
  svg.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0) return;
    drag = { x: ev.clientX, view: state.view.slice(), moved: false };
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x;
    if (Math.abs(dx) > 3) drag.moved = true;
    if (!drag.moved) return;
    svg.classList.add("panning");
    var r = svg.getBoundingClientRect(), span = drag.view[1] - drag.view[0];
    var shift = -dx / (r.width - GUTTER - RIGHT) * span, f = state.full;
    var a = Math.min(Math.max(drag.view[0] + shift, f[0]), f[1] - span);
    state.view = [a, a + span];
    hideTip();
    drawTimeline();
  });
  window.addEventListener("mouseup", function (ev) {
    if (!drag) return;
    var moved = drag.moved;
    drag = null;
    svg.classList.remove("panning");
    if (moved) return;
    var target = ev.target;
    if (target.classList && target.classList.contains("det")) {
      seek(DATA.videos[state.current]._dets[+target.getAttribute("data-k")].s);
    } else if (svg.contains(target)) {
      var t = timeAt(ev.clientX);
      if (t >= state.full[0]) seek(t);
    }
  });
  function hideTip() { tooltip.hidden = true; }
  svg.addEventListener("mousemove", function (ev) {
    var t = ev.target, v = DATA.videos[state.current];
    if (drag && drag.moved) return;
    var text = null;
    if (t.classList.contains("det")) {
      var d = v._dets[+t.getAttribute("data-k")];
      text = DATA.classes[d.c] + "\n" + fmtTime(d.s) + " \u2013 " + fmtTime(d.e) + " (" + (d.e - d.s).toFixed(3) + " s)\nscore " + d.score.toFixed(4);
      if (hasGt && v.ingt) {
        var b = bestGt(v, d);
        text += b ? "\ntIoU " + b.tiou.toFixed(3) + " with ground truth " + fmtTime(b.gt.s) + " \u2013 " + fmtTime(b.gt.e)
                  : "\nno ground truth of this class in the video";
      }
    } else if (t.classList.contains("gt")) {
      var g = v._gts[+t.getAttribute("data-k")];
      text = "ground truth: " + DATA.classes[g.c] + "\n" + fmtTime(g.s) + " \u2013 " + fmtTime(g.e) + " (" + (g.e - g.s).toFixed(3) + " s)";
    }
    if (text === null) { hideTip(); return; }
    tooltip.textContent = text;
    tooltip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + tooltip.offsetWidth > window.innerWidth - 4) x = ev.clientX - tooltip.offsetWidth - 10;
    if (y + tooltip.offsetHeight > window.innerHeight - 4) y = ev.clientY - tooltip.offsetHeight - 10;
    tooltip.style.left = x + "px"; tooltip.style.top = y + "px";
  });
  svg.addEventListener("mouseleave", hideTip);
  window.addEventListener("resize", function () { drawTimeline(); });
