/* rdfa-s6 viewer, part 1 of 3: the inlined data, constants, shared state and helpers.
   html.py inlines viewer-core.js, viewer-timeline.js and viewer.js, in this order, in one function scope
   ("use strict"): they share these variables. */
  var DATA = JSON.parse(document.getElementById("rdfa-data").textContent);
  var SCALE = DATA.scoreScale;
  var SVGNS = "http://www.w3.org/2000/svg";
  // each class's colour, computed in Python (rdfa_s6.viz.colors: a function of the class name, the figures' too)
  var COLORS = DATA.colors;

  var $ = function (id) { return document.getElementById(id); };
  var slider = $("threshold"), player = $("player"), svg = $("timeline"), tooltip = $("tooltip");
  var state = { thrInt: 0, current: -1, sortKey: "name", sortDir: 1, view: [0, 1], full: [0, 1],
                drawn: 0, lanes: [] };
  var hasGt = DATA.metrics !== null;

  function color(c) { return COLORS[c]; }
  /* "1 video", "2 videos": rdfa_s6.messages.plural */
  function plural(n, word, pluralWord) { return n + " " + (n === 1 ? word : pluralWord || word + "s"); }
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
