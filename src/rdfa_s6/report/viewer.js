/* rdfa-s6 viewer, part 3 of 3: the score threshold, the evaluation summary, the index of videos, selecting a
   video, and start-up. The page: an index of videos, a timeline per video, a live score threshold, zoom and
   pan, an optional HTML5 player and the evaluation summary; vanilla JS and SVG, reading only the JSON
   inlined in the page. */
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
    sec.appendChild(el("div", { "class": "muted" }, plural(m.num_predictions, "detection") + ", " +
      plural(m.num_gt, "ground-truth event") + " in " + plural(m.num_videos, "video") + " of subset '" + m.subset +
      "' (gt policy " + m.gt_policy + ")"));
    if (m.computed_with) {  // how the detections were computed, as every mAP table says (rdfa-s6 test, demo)
      sec.appendChild(el("div", { "class": "muted computed-with" }, "detections computed in " +
        m.computed_with.precision + " on " + m.computed_with.device));
    }
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
    fp.appendChild(el("div", { "class": "muted" }, plural(err.num_true_positives, "true positive") + " and " +
      plural(err.num_false_positives, "false positive") + " among the " + plural(err.num_considered, "detection") +
      " considered: the G best-scored detections of each class, G = the class's number of ground-truth events"));
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
    shown.textContent = total + " of " + plural(all, "detection") + " in " + plural(DATA.videos.length, "video");
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
    var info = plural(v._dets.length, "detection");
    if (hasGt) info += ", " + (v.ingt ? plural(v._gts.length, "ground-truth event") + (v.ap === null ? "" : ", AP " + fmtPct(v.ap) + "% (averaged over tIoU)") : "not in the ground-truth split");
    if (v.dur) info += ", duration " + fmtTime(v.dur);
    $("video-info").textContent = info;
    var end = v.dur || 0, start = 0;
    v._dets.concat(v._gts).forEach(function (x) { end = Math.max(end, x.e, x.s); start = Math.min(start, x.s, x.e); });
    state.full = [start, end > start ? end : start + 1];
    state.view = state.full.slice();
    $("seek-hint").hidden = !v.src;
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
