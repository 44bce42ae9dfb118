/* rdfa-s6 viewer: an index of videos, a timeline per video (one lane per class, ground truth above the
   detections, opacity = score), a live score threshold, zoom and pan, an optional HTML5 player, and the
   evaluation summary. Vanilla JS and SVG; reads only the JSON inlined in the page. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("rdfa-data").textContent);
  var SCALE = DATA.scoreScale;
  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#393b79", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#dbdb8d", "#9edae5", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
    "#756bb1", "#636363"];
  var GUTTER = 160, RIGHT = 12, AXIS = 24, GT_H = 9, DET_H = 16, LANE_PAD = 7;
  var LANE = GT_H + 2 + DET_H + LANE_PAD;
  var MIN_OPACITY = 0.12;

  var $ = function (id) { return document.getElementById(id); };
  var slider = $("threshold"), player = $("player"), svg = $("timeline"), tooltip = $("tooltip");
  var state = { thrInt: 0, current: -1, sortKey: "name", sortDir: 1, view: [0, 1], full: [0, 1],
                drawn: 0, lanes: [] };
  var hasGt = DATA.metrics !== null;

  function color(c) { return PALETTE[c % PALETTE.length]; }
  function fmtTime(t) { return t.toFixed(3) + " s"; }
  function fmtPct(v) { return (100 * v).toFixed(2); }
  function el(tag, attrs, text) {
    var node = tag.indexOf("svg:") === 0 ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]); } }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /* ---- data: flat integer arrays -> objects (seconds, score), once per video ---- */
  function decode(v) {
    if (v._dets) return v;
    var d = v.det, g = v.gt, i;
    v._dets = [];
    for (i = 0; i + 3 < d.length; i += 4) {
      v._dets.push({ s: d[i] / 1000, e: d[i + 1] / 1000, c: d[i + 2], si: d[i + 3], score: d[i + 3] / SCALE, k: i / 4 });
    }
    v._gts = [];
    for (i = 0; i + 2 < g.length; i += 3) v._gts.push({ s: g[i] / 1000, e: g[i + 1] / 1000, c: g[i + 2], k: i / 3 });
    return v;
  }
  /* detections are stored by decreasing score: the count above a threshold is a binary search */
  function countAbove(v, thrInt) {
    var d = v.det, lo = 0, hi = d.length / 4;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (d[4 * mid + 3] >= thrInt) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function tiou(a, b) {
    var inter = Math.max(0, Math.min(a.e, b.e) - Math.max(a.s, b.s));
    var union = (a.e - a.s) + (b.e - b.s) - inter;
    return union > 0 ? inter / union : (inter === 0 && a.s === b.s && a.e === b.e ? 1 : 0);
  }
  function bestGt(v, det) {
    var best = null, bt = -1;
    v._gts.forEach(function (g) { if (g.c === det.c) { var t = tiou(det, g); if (t > bt) { bt = t; best = g; } } });
    return best ? { gt: best, tiou: bt } : null;
  }

  /* ---- header: threshold ---- */
  function setThreshold(value) {
    state.thrInt = Math.round(parseFloat(value) * SCALE);
    $("threshold-value").textContent = parseFloat(value).toFixed(2);
    updateCounts();
    drawTimeline();
  }
  function initSlider() {
    var max = 1;
    DATA.videos.forEach(function (v) { if (v.det.length) max = Math.max(max, v.det[3] / SCALE); });
    slider.max = String(Math.ceil(max * 100) / 100);
    slider.value = String(Math.min(DATA.threshold, parseFloat(slider.max)));
    slider.addEventListener("input", function () { setThreshold(slider.value); });
  }

  /* ---- evaluation summary ---- */
  function table(head, rows) {
    var t = el("table"), tr = el("tr");
    head.forEach(function (h, i) { tr.appendChild(el("th", { "class": i ? "num" : null }, h)); });
    t.appendChild(el("thead")).appendChild(tr);
    var body = t.appendChild(el("tbody"));
    rows.forEach(function (r) { body.appendChild(r); });
    return t;
  }
  function cell(value, metric, asPct) {
    return el("td", { "class": "num", "data-metric": metric, "data-value": String(value) },
      asPct ? fmtPct(value) : String(value));
  }
  function buildSummary() {
    var m = DATA.metrics;
    if (!m) return;
    var box = $("summary-body");
    $("summary").hidden = false;
    var thr = m.tiou_thresholds;
    var sec = el("div");
    sec.appendChild(el("h3", null, "mAP (%) per tIoU threshold"));
    var row = el("tr");
    row.appendChild(el("td", null, "mAP"));
    thr.forEach(function (t, i) { row.appendChild(cell(m.mAP[i], "mAP." + i, true)); });
    row.appendChild(cell(m.average_mAP, "average_mAP", true));
    sec.appendChild(table(["tIoU"].concat(thr.map(function (t) { return t.toFixed(2); }), ["Avg"]), [row]));
    sec.appendChild(el("div", { "class": "muted" }, m.num_predictions + " detections, " + m.num_gt +
      " ground-truth events in " + m.num_videos + " videos of subset '" + m.subset + "' (gt policy " + m.gt_policy + ")"));
    (m.warnings || []).forEach(function (w) { sec.appendChild(el("div", { "class": "warn" }, w)); });
    box.appendChild(sec);

    var cls = el("div", { "class": "class-ap" });
    cls.appendChild(el("h3", null, "AP (%) per class"));
    var rows = Object.keys(m.per_class_AP).map(function (name) {
      var aps = m.per_class_AP[name], r = el("tr");
      var avg = aps.reduce(function (a, b) { return a + b; }, 0) / aps.length;
      r.appendChild(el("td", null, name));
      aps.forEach(function (v, i) { r.appendChild(cell(v, "per_class_AP." + name + "." + i, true)); });
      r.appendChild(el("td", { "class": "num" }, fmtPct(avg)));
      return r;
    });
    cls.appendChild(table(["class"].concat(thr.map(function (t) { return t.toFixed(2); }), ["Avg"]), rows));
    box.appendChild(cls);

    var err = m.errors, fp = el("div");
    fp.appendChild(el("h3", null, "False positives at tIoU " + err.tiou_threshold.toFixed(2)));
    rows = Object.keys(err.counts).map(function (k) {
      var r = el("tr");
      r.appendChild(el("td", null, k.replace(/_/g, " ")));
      r.appendChild(cell(err.counts[k], "errors.counts." + k, false));
      r.appendChild(cell(err.fractions[k], "errors.fractions." + k, true));
      return r;
    });
    fp.appendChild(table(["category", "count", "% of FP"], rows));
    fp.appendChild(el("div", { "class": "muted" }, err.num_true_positives + " true and " + err.num_false_positives +
      " false positives among the " + err.num_considered + " considered (the top-G detections of each class, " +
      "G = its number of ground-truth events)"));
    box.appendChild(fp);
  }

  /* ---- index of videos ---- */
  var rowsByVideo = [];
  function buildIndex() {
    var body = document.querySelector("#index tbody");
    if (!hasGt) $("ap-head").hidden = true;
    DATA.videos.forEach(function (v, i) {
      var tr = el("tr", { "data-video": String(i) });
      tr.appendChild(el("td", { title: v.id + (v.ingt ? "" : " (not in the ground truth)") }, v.id + (hasGt && !v.ingt ? " *" : "")));
      tr.appendChild(el("td", { "class": "num count" }));
      if (hasGt) tr.appendChild(el("td", { "class": "num" }, v.ap === null ? "-" : fmtPct(v.ap)));
      tr.addEventListener("click", function () { select(i); });
      rowsByVideo.push(tr);
      body.appendChild(tr);
    });
    document.querySelectorAll("#index th.sortable").forEach(function (th) {
      th.addEventListener("click", function () {
        var key = th.getAttribute("data-sort");
        state.sortDir = state.sortKey === key ? -state.sortDir : (key === "name" ? 1 : -1);
        state.sortKey = key;
        sortIndex();
      });
    });
  }
  function sortKeyOf(i) {
    var v = DATA.videos[i];
    if (state.sortKey === "count") return countAbove(v, state.thrInt);
    if (state.sortKey === "ap") return v.ap === null ? -1 : v.ap;
    return v.id;
  }
  function sortIndex() {
    var body = document.querySelector("#index tbody");
    var order = DATA.videos.map(function (v, i) { return i; });
    order.sort(function (a, b) {
      var ka = sortKeyOf(a), kb = sortKeyOf(b);
      var c = typeof ka === "string" ? ka.localeCompare(kb, undefined, { numeric: true }) : ka - kb;
      return c !== 0 ? state.sortDir * c : a - b;
    });
    order.forEach(function (i) { body.appendChild(rowsByVideo[i]); });
    document.querySelectorAll("#index th.sortable").forEach(function (th) {
      th.classList.remove("sorted-asc", "sorted-desc");
      if (th.getAttribute("data-sort") === state.sortKey) th.classList.add(state.sortDir > 0 ? "sorted-asc" : "sorted-desc");
    });
  }
  function updateCounts() {
    var total = 0, all = 0;
    DATA.videos.forEach(function (v, i) {
      var n = countAbove(v, state.thrInt);
      total += n; all += v.det.length / 4;
      rowsByVideo[i].querySelector(".count").textContent = n + " / " + v.det.length / 4;
    });
    var shown = $("shown-count");
    shown.setAttribute("data-total", String(total));
    shown.textContent = total + " of " + all + " detections in " + DATA.videos.length + " videos";
    if (state.sortKey === "count") sortIndex();
  }

  /* ---- one video ---- */
  function select(i) {
    if (i < 0 || i >= DATA.videos.length) return;
    var v = decode(DATA.videos[i]);
    if (state.current >= 0) rowsByVideo[state.current].classList.remove("selected");
    state.current = i;
    rowsByVideo[i].classList.add("selected");
    $("video-title").textContent = v.id;
    var info = v._dets.length + " detections";
    if (hasGt) info += ", " + (v.ingt ? v._gts.length + " ground-truth events" + (v.ap === null ? "" : ", AP " + fmtPct(v.ap) + "% (averaged over tIoU)") : "not in the ground-truth split");
    if (v.dur) info += ", duration " + fmtTime(v.dur);
    $("video-info").textContent = info;
    var end = v.dur || 0, start = 0;
    v._dets.concat(v._gts).forEach(function (x) { end = Math.max(end, x.e, x.s); start = Math.min(start, x.s, x.e); });
    state.full = [start, end > start ? end : start + 1];
    state.view = state.full.slice();
    if (v.src) {
      player.hidden = false;
      if (player.getAttribute("src") !== v.src) { player.setAttribute("src", v.src); }
    } else {
      player.hidden = true;
      player.removeAttribute("src");
      player.load();
    }
    var legend = $("legend");
    legend.textContent = "";
    legend.appendChild(document.createTextNode(hasGt ? "each lane: ground truth (upper strip, outlined) above detections (opacity = score)" : "opacity = score"));
    if (history.replaceState) history.replaceState(null, "", "#video=" + encodeURIComponent(v.id));
    drawTimeline();
  }

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

  /* ---- start ---- */
  document.title = DATA.title;
  $("title").textContent = DATA.title;
  initSlider();
  buildSummary();
  buildIndex();
  state.thrInt = Math.round(parseFloat(slider.value) * SCALE);
  $("threshold-value").textContent = parseFloat(slider.value).toFixed(2);
  updateCounts();
  sortIndex();
  var wanted = 0, m = /#video=(.*)$/.exec(location.hash);
  if (m) {
    var id = decodeURIComponent(m[1]);
    DATA.videos.forEach(function (v, i) { if (v.id === id) wanted = i; });
  }
  if (DATA.videos.length) select(wanted);
  else $("video-title").textContent = "no videos";
  window.rdfaViewer = { state: state, select: select, setThreshold: setThreshold };
  document.documentElement.setAttribute("data-ready", String(performance.now()));
})();
