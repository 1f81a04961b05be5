/* Tulip reports: small progressive enhancements. Every page works without this file.
   Data never comes from HTML strings: labels are read from attributes via dataset, and
   embedded JSON (if any) only via JSON.parse of a script block of type application/json. */
(function () {
  "use strict";

  function pickLegend(root) {
    root.querySelectorAll(".scatter-wrap").forEach(function (wrap) {
      var svg = wrap.querySelector("svg.scatter");
      var picked = null;
      wrap.querySelectorAll(".legend-item").forEach(function (btn) {
        btn.addEventListener("click", function () {
          var label = btn.dataset.label;
          picked = picked === label ? null : label;
          wrap.querySelectorAll(".legend-item").forEach(function (b) {
            b.classList.toggle("picked", b.dataset.label === picked);
          });
          svg.classList.toggle("picking", picked !== null);
          svg.querySelectorAll("circle, path.series").forEach(function (c) {
            c.classList.toggle("picked", c.dataset.label === picked);
          });
        });
      });
    });
  }

  function lineage(root) {
    var frame = root.querySelector(".lineage-frame");
    if (!frame) return;
    var svg = frame.querySelector("svg.lineage");
    var full = svg.viewBox.baseVal;
    var view = { x: full.x, y: full.y, w: full.width, h: full.height };
    var centre = svg.querySelector('[data-node="' + CSS.escape(frame.dataset.center || "") + '"]');
    if (centre) centre.classList.add("center");

    function apply() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); }
    svg.addEventListener("wheel", function (e) {
      e.preventDefault();
      var r = svg.getBoundingClientRect();
      var k = e.deltaY > 0 ? 1.15 : 1 / 1.15;
      var px = view.x + (e.clientX - r.left) / r.width * view.w;
      var py = view.y + (e.clientY - r.top) / r.height * view.h;
      view.w *= k; view.h *= k;
      view.x = px - (px - view.x) * k; view.y = py - (py - view.y) * k;
      apply();
    }, { passive: false });
    var drag = null;
    svg.addEventListener("mousedown", function (e) {
      if (e.target.closest("a")) return;
      drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
    });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var r = svg.getBoundingClientRect();
      view.x = drag.vx - (e.clientX - drag.x) / r.width * view.w;
      view.y = drag.vy - (e.clientY - drag.y) / r.height * view.h;
      apply();
    });
    window.addEventListener("mouseup", function () { drag = null; });

    // Hover: trace everything upstream and downstream of a node.
    var edges = Array.prototype.slice.call(svg.querySelectorAll("path.edge"));
    function walk(start, forward) {
      var seen = {}; var stack = [start]; seen[start] = true;
      while (stack.length) {
        var n = stack.pop();
        edges.forEach(function (e) {
          var from = forward ? e.dataset.source : e.dataset.target;
          var to = forward ? e.dataset.target : e.dataset.source;
          if (from === n) { e.classList.add("traced"); if (!seen[to]) { seen[to] = true; stack.push(to); } }
        });
      }
      return seen;
    }
    svg.querySelectorAll("g.node").forEach(function (g) {
      g.addEventListener("mouseenter", function () {
        var id = g.dataset.node;
        var all = Object.assign({}, walk(id, true), walk(id, false));
        svg.classList.add("tracing");
        svg.querySelectorAll("g.node").forEach(function (m) {
          if (all[m.dataset.node]) m.classList.add("traced");
        });
      });
      g.addEventListener("mouseleave", function () {
        svg.classList.remove("tracing");
        svg.querySelectorAll(".traced").forEach(function (m) { m.classList.remove("traced"); });
      });
    });
  }

  function ready() { pickLegend(document); lineage(document); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
