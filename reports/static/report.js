/* bfrbench report: sortable tables and the per-image table. No libraries, no network.
   Data is only ever inserted with textContent, never as HTML. */
(function () {
  "use strict";

  function num(v) {
    if (v === null || v === undefined || v === "") return null;
    var f = Number(v);
    return isFinite(f) ? f : null;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "\u2014";
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(3);
    var digits = Math.max(0, 3 - Math.floor(Math.log10(a)));
    return v.toFixed(digits);
  }

  /* compare with missing values last whatever the direction */
  function cmp(a, b, dir) {
    var an = a === null, bn = b === null;
    if (an || bn) return an === bn ? 0 : (an ? 1 : -1);
    if (typeof a === "number" && typeof b === "number") return dir * (a - b);
    return dir * String(a).localeCompare(String(b));
  }

  function cellKey(td) {
    if (!td) return null;
    if (td.hasAttribute("data-v")) {
      var n = num(td.getAttribute("data-v"));
      return n;
    }
    var t = td.textContent.trim();
    return t === "" ? null : t;
  }

  function markSorted(ths, th, dir) {
    ths.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
  }

  function initSortable(table) {
    var head = table.tHead;
    if (!head) return;
    var ths = Array.prototype.slice.call(head.rows[head.rows.length - 1].cells);
    ths.forEach(function (th, idx) {
      th.classList.add("clickable");
      th.tabIndex = 0;
      var dir = 0;
      function go() {
        dir = dir === 1 ? -1 : 1;
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) { return cmp(cellKey(r1.cells[idx]), cellKey(r2.cells[idx]), dir); });
        rows.forEach(function (r) { body.appendChild(r); });
        markSorted(ths, th, dir);
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
    });
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function initPerImage(box) {
    var src = document.getElementById(box.getAttribute("data-src"));
    if (!src) return;
    var data = JSON.parse(src.textContent);
    var metrics = data.metrics, dirs = data.directions, rows = data.rows, page = data.page || 50;
    var state = { col: 0, dir: 1, method: "", filter: "", start: 0 };

    var controls = el("div", null, "pi-controls");
    var sel = el("select");
    sel.setAttribute("aria-label", "method");
    sel.appendChild(el("option", "all methods")).value = "";
    data.methods.forEach(function (m) { var o = el("option", m); o.value = m; sel.appendChild(o); });
    var search = el("input");
    search.type = "search";
    search.placeholder = "filter images\u2026";
    search.setAttribute("aria-label", "filter images");
    var prev = el("button", "\u2190 prev"), next = el("button", "next \u2192");
    prev.type = next.type = "button";
    var info = el("span", "", "pi-info");
    [sel, search, prev, next, info].forEach(function (c) { controls.appendChild(c); });

    var table = el("table", null, "data pi");
    var thead = table.createTHead().insertRow();
    var heads = ["image", "method", "status"].concat(metrics.map(function (m, i) {
      return m + (dirs[i] === true ? " \u2191" : dirs[i] === false ? " \u2193" : "");
    }));
    var ths = heads.map(function (h, i) {
      var th = el("th", h, "clickable");
      th.tabIndex = 0;
      if (i >= 3) {
        var d = dirs[i - 3] === true ? "higher is better" : dirs[i - 3] === false ? "lower is better" : "direction unknown";
        var p = (data.protocols || [])[i - 3];
        th.title = metrics[i - 3] + " \u00b7 " + d + (p ? " \u00b7 protocol: " + p : "");
      }
      function go() {
        if (state.col === i) state.dir = -state.dir; else { state.col = i; state.dir = 1; }
        state.start = 0;
        draw();
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
      thead.appendChild(th);
      return th;
    });
    var tbody = table.createTBody();

    function visible() {
      var f = state.filter.toLowerCase();
      var out = rows.filter(function (r) {
        return (!state.method || r[1] === state.method) && (!f || String(r[0]).toLowerCase().indexOf(f) >= 0);
      });
      var c = state.col;
      // stable sort: ties keep the server order (image, then methods in leaderboard order)
      out.sort(function (a, b) { return cmp(a[c], b[c], state.dir); });
      return out;
    }

    function draw() {
      var vis = visible();
      if (state.start >= vis.length) state.start = Math.max(0, vis.length - page);
      while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
      vis.slice(state.start, state.start + page).forEach(function (r) {
        var tr = tbody.insertRow();
        tr.appendChild(el("td", r[0], "name"));
        tr.appendChild(el("td", r[1], "name"));
        var st = el("td", r[2] === "ok" ? "ok" : "error", r[2] === "ok" ? "" : "bad");
        if (r[2] !== "ok") st.title = r[2];
        tr.appendChild(st);
        for (var i = 3; i < r.length; i++) {
          var td = el("td", fmt(r[i]), "num");
          if (r[i] !== null) td.setAttribute("data-v", String(r[i]));
          tr.appendChild(td);
        }
      });
      ths.forEach(function (h, i) {
        if (i === state.col) h.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
        else h.removeAttribute("aria-sort");
      });
      var end = Math.min(vis.length, state.start + page);
      info.textContent = vis.length ? (state.start + 1) + "\u2013" + end + " of " + vis.length + " rows" : "no rows";
      prev.disabled = state.start === 0;
      next.disabled = end >= vis.length;
    }

    sel.addEventListener("change", function () { state.method = sel.value; state.start = 0; draw(); });
    search.addEventListener("input", function () { state.filter = search.value; state.start = 0; draw(); });
    prev.addEventListener("click", function () { state.start = Math.max(0, state.start - page); draw(); });
    next.addEventListener("click", function () { state.start += page; draw(); });

    box.appendChild(controls);
    var wrap = el("div", null, "scroll");
    wrap.appendChild(table);
    box.appendChild(wrap);
    draw();
    box.setAttribute("data-ready", "1");
  }

  /* the before/after slider: two layers of one face, the right one clipped at the slider, both zoomed alike */
  function initCompare(box) {
    var layers = Array.prototype.slice.call(box.querySelectorAll(".cmp-layer"));
    var left = box.querySelector(".cmp-left"), right = box.querySelector(".cmp-right");
    var zoom = box.querySelector(".cmp-zoom"), pos = box.querySelector(".cmp-pos");
    var view = box.querySelector(".cmp-view"), line = box.querySelector(".cmp-line");
    var origin = "50% 50%";

    function draw() {
      var a = Number(left.value), b = Number(right.value), x = Number(pos.value), z = Number(zoom.value);
      layers.forEach(function (layer, i) {
        layer.hidden = i !== a && i !== b;
        layer.classList.toggle("cmp-a", i === a);
        layer.classList.toggle("cmp-b", i === b && i !== a);
        layer.style.clipPath = (i === b && i !== a) ? "inset(0 0 0 " + x + "%)" : "none";
        layer.style.zIndex = i === b ? "2" : "1";
        var img = layer.querySelector("img");
        img.style.transformOrigin = origin;
        img.style.transform = z > 1 ? "scale(" + z + ")" : "none";
      });
      line.style.left = x + "%";
      box.setAttribute("data-zoom", String(z));
    }

    view.addEventListener("pointermove", function (ev) {
      if (Number(zoom.value) <= 1) return;
      var r = view.getBoundingClientRect();
      var fx = Math.min(100, Math.max(0, 100 * (ev.clientX - r.left) / r.width));
      var fy = Math.min(100, Math.max(0, 100 * (ev.clientY - r.top) / r.height));
      origin = fx.toFixed(1) + "% " + fy.toFixed(1) + "%";
      draw();
    });
    [left, right, zoom].forEach(function (s) { s.addEventListener("change", draw); });
    pos.addEventListener("input", draw);
    draw();
    box.setAttribute("data-ready", "1");
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), initSortable);
    Array.prototype.forEach.call(document.querySelectorAll("div.pi-table"), initPerImage);
    Array.prototype.forEach.call(document.querySelectorAll("div.compare"), initCompare);
    document.documentElement.setAttribute("data-js", "ready");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
