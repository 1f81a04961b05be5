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


  // The review basket: finding buttons and the keyboard (j/k move, r relabel or rename,
  // x exclude, a accept) fill the form's decisions; Preview asks the server for a dry run,
  // Apply submits the form (one fix commit). One decision per finding: a later one replaces it.
  function review(root) {
    var form = root.getElementById ? root.getElementById("review-form") : null;
    if (!form) return;
    var box = form.querySelector("textarea[name=decisions]");
    var list = form.querySelector(".basket-items");
    var preview = document.getElementById("review-preview");
    var basket = [];
    form.querySelector(".basket-json").hidden = true;

    function text(tag, value, cls) {
      var el = document.createElement(tag);
      el.textContent = value;
      if (cls) el.className = cls;
      return el;
    }
    function describe(d) {
      if (d.action === "rename") return "rename " + d.from + " \u2192 " + d.to;
      if (d.action === "relabel") return "relabel \u2192 " + d.to;
      return d.action;
    }
    function render() {
      box.value = JSON.stringify(basket);
      list.textContent = "";
      basket.forEach(function (d, i) {
        var li = text("li", describe(d) + " ", "basket-item");
        li.dataset.finding = d.finding;
        li.appendChild(text("code", d.finding.slice(0, 12)));
        var drop = text("button", "remove", "remove");
        drop.type = "button";
        drop.addEventListener("click", function () { basket.splice(i, 1); mark(d.finding, null); render(); });
        li.appendChild(document.createTextNode(" "));
        li.appendChild(drop);
        list.appendChild(li);
      });
    }
    function mark(finding, action) {
      var li = document.querySelector('li.finding[data-finding="' + CSS.escape(finding) + '"]');
      if (!li) return;
      if (action) li.dataset.decided = action; else delete li.dataset.decided;
    }
    function decide(btn) {
      var li = btn.closest("li.finding");
      var d = { finding: li.dataset.finding, action: btn.dataset.action };
      if (btn.dataset.to) d.to = btn.dataset.to;
      if (btn.dataset.from) d.from = btn.dataset.from;
      basket = basket.filter(function (x) { return x.finding !== d.finding; });
      basket.push(d);
      mark(d.finding, d.action);
      render();
    }
    document.querySelectorAll("li.finding[data-finding] .decide button").forEach(function (btn) {
      btn.addEventListener("click", function () { decide(btn); });
    });

    var current = -1;
    function findings() { return Array.prototype.slice.call(document.querySelectorAll("li.finding[data-finding]")); }
    function move(step) {
      var all = findings();
      if (!all.length) return;
      current = Math.max(0, Math.min(all.length - 1, current + step));
      all.forEach(function (li, i) { li.classList.toggle("current", i === current); });
      all[current].focus({ preventScroll: true });
      all[current].scrollIntoView({ block: "nearest" });
    }
    var KEYS = { r: "[data-action=relabel], [data-action=rename]", x: "[data-action=exclude]", a: "[data-action=accept]" };
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      var t = e.target;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      if (e.key === "j") { move(1); e.preventDefault(); return; }
      if (e.key === "k") { move(-1); e.preventDefault(); return; }
      if (!KEYS[e.key] || current < 0) return;
      var btn = findings()[current].querySelector(".decide " + KEYS[e.key].split(", ").join(", .decide "));
      if (btn) { decide(btn); e.preventDefault(); }
    });

    function showPreview(d) {
      preview.textContent = "";
      if (d.error) { preview.appendChild(text("p", d.error, "error")); return; }
      preview.appendChild(text("p", "Dry run, nothing changed: " + d.description, "description"));
      var ul = document.createElement("ul");
      ul.className = "review-moves";
      d.renamed.forEach(function (r) { ul.appendChild(text("li", (r.merge ? "merge /" : "rename /") + r.from + "/ \u2192 /" + r.to + "/: " + r.files + " files")); });
      d.moves.filter(function (m) { return m.reason === "relabel"; }).slice(0, 200).forEach(function (m) { ul.appendChild(text("li", "move " + m.from + " \u2192 " + m.to)); });
      d.excluded_files.slice(0, 200).forEach(function (p) { ul.appendChild(text("li", "exclude " + p)); });
      preview.appendChild(ul);
      var table = document.createElement("table");
      table.className = "review-classes";
      var before = d.classes.before, after = d.classes.after;
      var names = Object.keys(before).concat(Object.keys(after)).filter(function (n, i, a) { return a.indexOf(n) === i; }).sort();
      table.appendChild(text("tr", ""));
      ["class", "before", "after"].forEach(function (h) { table.firstChild.appendChild(text("th", h)); });
      names.forEach(function (n) {
        var tr = document.createElement("tr");
        [n, before[n] || 0, after[n] || 0].forEach(function (v) { tr.appendChild(text("td", String(v))); });
        table.appendChild(tr);
      });
      preview.appendChild(table);
    }
    form.addEventListener("submit", function (e) {
      var mode = e.submitter ? e.submitter.value : "apply";
      if (mode !== "preview") return;  // Apply: an ordinary POST, the page of the new commit
      e.preventDefault();
      var body = new FormData(form);
      body.set("mode", "preview");
      preview.textContent = "previewing\u2026";
      fetch(form.action, { method: "POST", body: body, headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(showPreview)
        .catch(function (err) { showPreview({ error: String(err) }); });
    });
    render();
  }

  function ready() { pickLegend(document); lineage(document); review(document); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
