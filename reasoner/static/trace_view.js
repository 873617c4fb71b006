// Draws a reasoner trace page from its embedded JSON: totals, a legend, the layered graph as
// inline SVG, and the details of the selected segment. Model text only ever goes through
// textContent, never markup. Written for reasoner; SPDX-License-Identifier: Apache-2.0
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var DX = 24, DY = 60, R = 8, PAD = 24;
  var KINDS = ["prompt", "think", "answer", "latent", "eval", "child", "step", "estimate", "other"];
  var data = JSON.parse(document.getElementById("trace-data").textContent);
  var scale = 1;

  function element(name, parent, className, text) {
    var made = document.createElement(name);
    if (className) { made.className = className; }
    if (text !== undefined) { made.textContent = String(text); }
    if (parent) { parent.appendChild(made); }
    return made;
  }

  function svgElement(name, parent, attributes) {
    var made = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { made.setAttribute(key, attributes[key]); });
    parent.appendChild(made);
    return made;
  }

  function show(value) {
    return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : String(value);
  }

  document.title = "reasoner trace: " + data.title;
  var header = element("header", document.body);
  element("h1", header, "", "reasoner trace: " + data.title);
  var totals = element("dl", header);
  totals.id = "totals";
  data.totals.forEach(function (pair) {
    var item = element("div", totals);
    element("dt", item, "", pair[0]);
    element("dd", item, "", pair[1] === null ? "none" : show(pair[1]));
  });
  var legend = element("div", header);
  legend.id = "legend";
  KINDS.forEach(function (kind) {
    var entry = element("span", legend);
    var swatch = svgElement("svg", entry, { width: 14, height: 14 });
    svgElement("circle", swatch, { cx: 7, cy: 7, r: 6, "class": "kind-" + kind });
    entry.appendChild(document.createTextNode(" " + kind));
  });
  element("span", legend, "", "red outline: the chosen path; faded: aborted, pruned or cancelled");
  var tools = element("div", header);
  tools.id = "tools";
  var main = element("main", document.body);
  var graph = element("div", main);
  graph.id = "graph";
  var details = element("section", main);
  details.id = "details";

  var width = PAD * 2, height = PAD * 2;
  data.nodes.forEach(function (node) {
    width = Math.max(width, PAD * 2 + node.x * DX);
    height = Math.max(height, PAD * 2 + node.y * DY);
  });
  var canvas = svgElement("svg", graph, { viewBox: "0 0 " + width + " " + height, id: "trace-graph" });
  function zoom(factor) {
    scale = factor === 0 ? Math.min(1, graph.clientWidth / width) : scale * factor;
    canvas.setAttribute("width", width * scale);
    canvas.setAttribute("height", height * scale);
  }
  [["zoom in", 1.25], ["zoom out", 0.8], ["fit", 0]].forEach(function (button) {
    element("button", tools, "", button[0]).addEventListener("click", function () { zoom(button[1]); });
  });
  element("span", tools, "", " " + data.nodes.length + " segments, " + data.edges.length + " edges");

  function position(node) { return [PAD + node.x * DX, PAD + node.y * DY]; }
  var edgeLayer = svgElement("g", canvas, {});
  data.edges.forEach(function (edge) {
    var from = position(data.nodes[edge[0]]), to = position(data.nodes[edge[1]]);
    var middle = (from[1] + to[1]) / 2;
    svgElement("path", edgeLayer, {
      d: "M" + from[0] + "," + from[1] + " C" + from[0] + "," + middle + " " + to[0] + "," + middle + " " + to[0] + "," + to[1],
      "class": "edge edge-" + edge[2] + (edge[3] ? " on-path" : "")
    });
  });
  var selected = null;
  var nodeLayer = svgElement("g", canvas, {});
  data.nodes.forEach(function (node, index) {
    var classes = ["node"].concat(node.path ? ["on-path"] : [], node.flags.map(function (flag) { return "flag-" + flag; }));
    var group = svgElement("g", nodeLayer, { "class": classes.join(" "), "data-index": index });
    var at = position(node);
    svgElement("circle", group, { cx: at[0], cy: at[1], r: R, "class": "kind-" + node.kind });
    svgElement("title", group, {}).textContent = "#" + node.id + " " + node.kind + ", " + (node.shown.tokens || 0) + " tokens";
    group.addEventListener("click", function () { select(index, group); });
    if (node.path && node.flags.indexOf("chosen") >= 0) { selected = [index, group]; }
  });

  function select(index, group) {
    var node = data.nodes[index];
    Array.prototype.forEach.call(canvas.querySelectorAll(".selected"), function (item) { item.classList.remove("selected"); });
    group.classList.add("selected");
    details.textContent = "";
    element("h2", details, "", "#" + node.id + " " + node.kind + (node.flags.length ? " (" + node.flags.join(", ") + ")" : ""));
    var table = element("table", details);
    [node.shown, node.other].forEach(function (values) {
      Object.keys(values).forEach(function (name) {
        var row = element("tr", table);
        element("td", row, "", name);
        element("td", row, "", values[name] === null ? "none" : show(values[name]));
      });
    });
    element("pre", details, "segment-text", node.text);
  }

  // A small graph fits the pane; a large one opens at full size, scrolled to the chosen segment.
  zoom(graph.clientWidth / width < 0.4 ? 1 : 0);
  if (selected === null && data.nodes.length) {
    var last = -1;
    data.nodes.forEach(function (node, index) { if (node.path && (last < 0 || node.y >= data.nodes[last].y)) { last = index; } });
    if (last >= 0) { selected = [last, nodeLayer.childNodes[last]]; }
  }
  if (selected !== null) {
    select(selected[0], selected[1]);
    var at = position(data.nodes[selected[0]]);
    graph.scrollLeft = at[0] * scale - graph.clientWidth / 2;
    graph.scrollTop = at[1] * scale - graph.clientHeight / 2;
  }
  document.body.setAttribute("data-rendered", data.nodes.length);
})();
