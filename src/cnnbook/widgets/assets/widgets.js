/* cnnbook teaching widgets: the kernel-free front end of the static HTML book.
 *
 * Each widget's output holds a JSON payload (script.cnnbook-data) with its controls and, for every value
 * the controls can take, the display computed in Python by cnnbook.calc. This script builds the controls
 * and, on every change, looks the display up and draws it (HTML and SVG). It computes no number itself:
 * the Python calculators stay the one source of truth. No dependency, no network access.
 *
 * Contract with the tests: controls carry data-key (and data-values), displayed numbers data-out.
 *
 * Accessibility: every control is a native <input type="range"> or <select> with a visible <label>
 * (Tab reaches it, the arrow keys change it); each widget (each panel of the cost widget) has one
 * role="status" region (aria-live polite) that states the result in a sentence after every change; the
 * outputs one can point at with the mouse are also focusable, and focusing one selects it.
 */
(function () {
  "use strict";
  if (window.cnnbookWidgets) {
    return;
  }
  var SVGNS = "http://www.w3.org/2000/svg";
  var nextId = 0;

  // ---- small DOM helpers ------------------------------------------------------------------------
  function setAttrs(node, attrs) {
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] !== null && attrs[name] !== undefined) {
        node.setAttribute(name, String(attrs[name]));
      }
    });
    return node;
  }
  function append(node, children) {
    if (children === null || children === undefined) {
      return node;
    }
    (Array.isArray(children) ? children : [children]).forEach(function (child) {
      if (child === null || child === undefined) {
        return;
      }
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    });
    return node;
  }
  function h(tag, attrs, children) {
    return append(setAttrs(document.createElement(tag), attrs), children);
  }
  function s(tag, attrs, children) {
    return append(setAttrs(document.createElementNS(SVGNS, tag), attrs), children);
  }
  function svgText(x, y, text, cls, anchor, size) {
    return s("text", {
      x: x, y: y, "text-anchor": anchor || "middle", "dominant-baseline": "central",
      "font-size": size || 12, "class": cls || null
    }, text);
  }
  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
    return node;
  }
  // A smaller font for values longer than two characters ("1.67" in a small cell), as _live.cell_font.
  function cellFont(text, size) {
    return String(text).length <= 2 ? size : Math.max(7, size - 3);
  }
  // Thousands separators, as Python's f"{n:,}" (formatting only).
  function fmtInt(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  // One sentence stating the current result, announced by screen readers when it changes (role="status"
  // is an aria-live="polite" region); persistent, so that only its text changes.
  function statusRegion(container) {
    var node = h("div", {"class": "cnnbook-status", role: "status", "aria-live": "polite", "aria-atomic": "true", "data-out": "status"});
    container.appendChild(node);
    return node;
  }
  // Focusable SVG shapes that select what they show on focus (as pointing at them does), and keep the
  // keyboard focus across the redraw that follows.
  function focusable(node, label, select) {
    setAttrs(node, {tabindex: 0, role: "button", "aria-label": label});
    node.addEventListener("focus", function () { select(true); });
    return node;
  }

  // ---- controls ---------------------------------------------------------------------------------
  // specs: [{key, label, kind: "slider" | "select", values, labels, index}], as Control.as_json() writes.
  function Controls(container, specs, onChange) {
    this.row = h("div", {"class": "cnnbook-controls"});
    this.inputs = {};
    this.specs = {};
    this.order = [];
    this.onChange = onChange;
    var self = this;
    specs.forEach(function (spec) {
      self.add(spec);
    });
    container.appendChild(this.row);
  }
  Controls.prototype.add = function (spec) {
    var id = "cnnbook-control-" + (nextId += 1);
    var wrap = h("div", {"class": "cnnbook-control", "data-control": spec.key});
    wrap.appendChild(h("label", {"for": id}, spec.label));
    this.row.appendChild(wrap);
    this.specs[spec.key] = spec;
    this.order.push(spec.key);
    this.wraps = this.wraps || {};
    this.wraps[spec.key] = wrap;
    this.build(spec, id);
  };
  Controls.prototype.build = function (spec, id) {
    var wrap = this.wraps[spec.key];
    var self = this;
    var input;
    if (spec.kind === "select") {
      input = h("select", {id: id, "data-key": spec.key});
      spec.values.forEach(function (value, i) {
        input.appendChild(h("option", {value: String(value)}, spec.labels[i]));
      });
      input.selectedIndex = spec.index;
      wrap.appendChild(input);
    } else {
      input = h("input", {
        id: id, type: "range", min: 0, max: spec.values.length - 1, step: 1, value: spec.index,
        "data-key": spec.key, "aria-valuetext": spec.labels[spec.index]
      });
      wrap.appendChild(input);
      wrap.appendChild(h("output", {"for": id, "data-readout": spec.key}, spec.labels[spec.index]));
    }
    input.setAttribute("data-values", JSON.stringify(spec.values));
    input.addEventListener("input", function () {
      self.changed(spec.key);
    });
    input.addEventListener("change", function () {
      self.changed(spec.key);
    });
    this.inputs[spec.key] = input;
  };
  // Replace a control's values (the receptive-field widget's layer list depends on the network).
  Controls.prototype.reset = function (spec) {
    var old = this.inputs[spec.key];
    var wrap = this.wraps[spec.key];
    var id = old.id;
    wrap.removeChild(old);
    var readout = wrap.querySelector("output");
    if (readout) {
      wrap.removeChild(readout);
    }
    this.specs[spec.key] = spec;
    this.build(spec, id);
  };
  Controls.prototype.index = function (key) {
    var input = this.inputs[key];
    return this.specs[key].kind === "select" ? input.selectedIndex : parseInt(input.value, 10);
  };
  Controls.prototype.value = function (key) {
    return String(this.specs[key].values[this.index(key)]);
  };
  Controls.prototype.key = function (keys) {
    var self = this;
    return (keys || this.order).map(function (key) {
      return self.value(key);
    }).join("|");
  };
  Controls.prototype.changed = function (key) {
    var spec = this.specs[key];
    var i = this.index(key);
    if (spec.kind !== "select") {
      this.inputs[key].setAttribute("aria-valuetext", spec.labels[i]);
      this.wraps[key].querySelector("output").textContent = spec.labels[i];
    }
    this.onChange(key);
  };

  // ---- pooling overlap ----------------------------------------------------------------------------
  var CELL = 30;
  var MARGIN = 78;

  function pooling(root, ui, data) {
    var view = h("div", {"class": "cnnbook-view"});
    var chosen1d = 0;
    var chosen2d = [0, 0];
    var controls = new Controls(ui, data.controls, function () {
      chosen1d = 0;
      chosen2d = [0, 0];
      draw();
    });
    var status = statusRegion(ui);
    ui.appendChild(view);

    function draw1d(st) {
      var n = data.signal.length;
      var lanes = Math.max.apply(null, st.lanes.concat([0])) + 1;
      var yLanes = 84;
      var yOut = yLanes + lanes * 14 + 24;
      var width = MARGIN + n * CELL + 4;
      var height = yOut + CELL + 4;
      var svg = s("svg", {"class": "cnnbook-svg", width: width, height: height, viewBox: "0 0 " + width + " " + height, "data-out": "svg1d"});
      var win = st.windows[chosen1d] || [0, 0];
      svg.appendChild(svgText(4, 35, "input", null, "start"));
      svg.appendChild(svgText(4, 62, "seen by", "cnnbook-muted", "start", 10));
      data.signal.forEach(function (v, x) {
        var hl = x >= win[0] && x < win[1];
        svg.appendChild(s("rect", {"class": "cnnbook-cell" + (hl ? " cnnbook-hl" : ""), x: MARGIN + x * CELL, y: 20, width: CELL, height: CELL}));
        svg.appendChild(svgText(MARGIN + x * CELL + CELL / 2, 35, v, null, null, cellFont(v, 12)));
        svg.appendChild(svgText(MARGIN + x * CELL + CELL / 2, 62, "x" + st.coverage[x], "cnnbook-muted", null, 10));
      });
      svg.appendChild(svgText(4, yLanes + 5, "windows", null, "start"));
      st.windows.forEach(function (w, j) {
        var y = yLanes + st.lanes[j] * 14;
        var x0 = MARGIN + w[0] * CELL + 3;
        var x1 = MARGIN + w[1] * CELL - 3;
        var color = " cnnbook-c" + (j % 6);
        var bar = s("rect", {"class": "cnnbook-bar" + color + (j === chosen1d ? " cnnbook-active" : ""), x: x0, y: y, width: x1 - x0, height: 9, "data-window": j},
          s("title", null, "output " + j + " sees inputs " + w[0] + " to " + (w[1] - 1)));
        bar.addEventListener("mouseenter", function () { choose1d(j); });
        bar.addEventListener("click", function () { choose1d(j); });
        svg.appendChild(bar);
        svg.appendChild(s("line", {"class": "cnnbook-link" + color, x1: (x0 + x1) / 2, y1: y + 9, x2: MARGIN + j * CELL + CELL / 2, y2: yOut}));
      });
      svg.appendChild(svgText(4, yOut + CELL / 2, "output", null, "start"));
      st.output.forEach(function (v, j) {
        var cell = s("rect", {"class": "cnnbook-cell cnnbook-out cnnbook-clickable" + (j === chosen1d ? " cnnbook-selected" : ""), x: MARGIN + j * CELL, y: yOut, width: CELL, height: CELL, "data-output": j});
        cell.addEventListener("mouseenter", function () { choose1d(j); });
        cell.addEventListener("click", function () { choose1d(j); });
        focusable(cell, "1D output " + j + ": " + v, function (keyboard) { choose1d(j, keyboard); });
        svg.appendChild(cell);
        svg.appendChild(svgText(MARGIN + j * CELL + CELL / 2, yOut + CELL / 2, v, null, null, cellFont(v, 12)));
      });
      return svg;
    }

    function draw2d(st) {
      var cell = 24;
      var rows = data.image.length;
      var cols = data.image[0].length;
      var ox = cols * cell + 40;
      var width = ox + Math.max(st.output2d[0].length, 4) * cell + 4;
      var height = 20 + rows * cell + 4;
      var svg = s("svg", {"class": "cnnbook-svg", width: width, height: height, viewBox: "0 0 " + width + " " + height, "data-out": "svg2d"});
      data.image.forEach(function (row, r) {
        row.forEach(function (v, c) {
          svg.appendChild(s("rect", {"class": "cnnbook-cell", x: c * cell, y: 20 + r * cell, width: cell, height: cell}));
          svg.appendChild(svgText(c * cell + cell / 2, 20 + r * cell + cell / 2, v, null, null, cellFont(v, 11)));
        });
      });
      [[chosen2d[0], chosen2d[1] + 1, "cnnbook-window cnnbook-next"], [chosen2d[0], chosen2d[1], "cnnbook-window"]].forEach(function (t) {
        var wr = st.rows2d[t[0]];
        var wc = st.cols2d[t[1]];
        if (wr && wc) {
          svg.appendChild(s("rect", {"class": t[2], x: wc[0] * cell + 2, y: 20 + wr[0] * cell + 2, width: (wc[1] - wc[0]) * cell - 4, height: (wr[1] - wr[0]) * cell - 4}));
        }
      });
      st.output2d.forEach(function (row, r) {
        row.forEach(function (v, c) {
          var chosen = r === chosen2d[0] && c === chosen2d[1];
          var rect = s("rect", {"class": "cnnbook-cell cnnbook-out cnnbook-clickable" + (chosen ? " cnnbook-selected" : ""), x: ox + c * cell, y: 20 + r * cell, width: cell, height: cell, "data-cell": r + "," + c});
          rect.addEventListener("mouseenter", function () { choose2d(r, c); });
          rect.addEventListener("click", function () { choose2d(r, c); });
          focusable(rect, "2D output row " + r + ", column " + c + ": " + v, function (keyboard) { choose2d(r, c, keyboard); });
          svg.appendChild(rect);
          svg.appendChild(svgText(ox + c * cell + cell / 2, 20 + r * cell + cell / 2, v, null, null, cellFont(v, 11)));
        });
      });
      svg.appendChild(svgText(0, 8, "input", null, "start", 11));
      svg.appendChild(svgText(ox, 8, "output", null, "start", 11));
      return svg;
    }

    function choose1d(j, keyboard) {
      if (j !== chosen1d) {
        chosen1d = j;
        draw();
        if (keyboard) {
          view.querySelector('rect[data-output="' + j + '"]').focus();
        }
      }
    }
    function choose2d(r, c, keyboard) {
      if (r !== chosen2d[0] || c !== chosen2d[1]) {
        chosen2d = [r, c];
        draw();
        if (keyboard) {
          view.querySelector('rect[data-cell="' + r + "," + c + '"]').focus();
        }
      }
    }

    function draw() {
      var st = data.table[controls.key()];
      var w = st.windows[chosen1d] || [0, 0];
      var mode = controls.value("mode") === "max" ? "max" : "average";
      var r2 = st.rows2d[chosen2d[0]];
      var c2 = st.cols2d[chosen2d[1]];
      status.textContent = mode + " pooling, window " + controls.value("window") + ", stride " + controls.value("stride") +
        ", last window " + (controls.value("last") === "ceil" ? "kept" : "dropped") + ": output " + st.output.join(" ") + "; neighbouring windows share " + st.overlap + " input(s); output " +
        chosen1d + " sees inputs " + w[0] + " to " + (w[1] - 1) + ".";
      clear(view);
      append(view, [
        h("div", {"class": "cnnbook-summary"}, [
          "z = " + controls.value("window") + ", s = " + controls.value("stride") + ": neighbouring windows share ",
          h("b", {"data-out": "overlap"}, String(st.overlap)),
          " input(s) (z \u2212 s, or 0)."
        ]),
        draw1d(st),
        h("div", {"class": "cnnbook-summary"}, [
          mode + " pooling output: ",
          h("b", {"class": "cnnbook-mono", "data-out": "output1d"}, st.output.join(" "))
        ]),
        h("div", {"class": "cnnbook-summary cnnbook-muted"}, [
          "output " + chosen1d + " sees inputs ",
          h("span", {"data-out": "window1d"}, w[0] + " to " + (w[1] - 1)),
          " (point at a window bar or an output)."
        ]),
        draw2d(st),
        h("div", {"class": "cnnbook-summary"}, [
          "2D output (" + st.rows2d.length + " x " + st.cols2d.length + "): ",
          h("span", {"class": "cnnbook-mono", "data-out": "output2d"}, st.output2d.map(function (row) { return row.join(" "); }).join(" / "))
        ]),
        h("div", {"class": "cnnbook-summary cnnbook-muted"}, [
          "output (" + chosen2d[0] + ", " + chosen2d[1] + ") sees rows ",
          h("span", {"data-out": "window2d"}, r2[0] + " to " + (r2[1] - 1) + ", columns " + c2[0] + " to " + (c2[1] - 1)),
          " (solid; dashed: the next output to the right; point at an output)."
        ])
      ]);
    }
    draw();
  }

  // ---- cost ratios --------------------------------------------------------------------------------
  var COST_ROWS = {
    separable: [
      ["standard", function (v) { return "standard " + v.k + "x" + v.k + " convolution, " + v.c_in + " -> " + v.c_out; }],
      ["depthwise", function (v) { return "depthwise " + v.k + "x" + v.k + ", " + v.c_in + " channels"; }],
      ["pointwise", function (v) { return "pointwise 1x1, " + v.c_in + " -> " + v.c_out; }],
      ["separable", function () { return "depthwise separable (sum)"; }]
    ],
    inception: [
      ["plain", function (v) { return "plain " + v.k + "x" + v.k + " convolution, " + v.c_in + " -> " + v.c_out; }],
      ["reduce", function (v) { return "1x1 reduction, " + v.c_in + " -> " + v.reduce; }],
      ["conv", function (v) { return v.k + "x" + v.k + " convolution, " + v.reduce + " -> " + v.c_out; }],
      ["reduced", function () { return "reduced path (sum)"; }]
    ]
  };
  var RATIO_LABEL = {separable: "separable / standard", inception: "reduced / plain"};

  function costPanel(ui, panel) {
    var box = h("div", {"class": "cnnbook-panel", "data-panel": panel.name});
    box.appendChild(h("div", {"class": "cnnbook-subtitle"}, panel.title));
    ui.appendChild(box);
    var controls = new Controls(box, panel.controls, draw);
    var status = statusRegion(box);
    var view = h("div", {"class": "cnnbook-view"});
    box.appendChild(view);

    function draw() {
      var entry = panel.table[controls.key()];
      var st = {};
      panel.fields.forEach(function (field, i) {
        st[field] = entry[i];
      });
      var v = {};
      controls.order.forEach(function (key) {
        v[key] = controls.value(key);
      });
      var body = COST_ROWS[panel.name].map(function (row) {
        var name = row[0];
        return h("tr", {"data-row": name}, [
          h("td", null, row[1](v)),
          h("td", {"data-out": name + "-params"}, fmtInt(st[name][0])),
          h("td", {"data-out": name + "-mult_adds"}, fmtInt(st[name][1]))
        ]);
      });
      body.push(h("tr", {"class": "cnnbook-ratio"}, [
        h("td", null, RATIO_LABEL[panel.name]),
        h("td", {"data-out": "ratio_params"}, st.ratio_params),
        h("td", {"data-out": "ratio_mult_adds"}, st.ratio_mult_adds)
      ]));
      var last = COST_ROWS[panel.name][3][0];
      status.textContent = RATIO_LABEL[panel.name] + ": " + st.ratio_params + " of the parameters and " + st.ratio_mult_adds +
        " of the mult-adds (" + fmtInt(st[last][1]) + " mult-adds).";
      clear(view);
      view.appendChild(h("table", {"class": "cnnbook-table"}, [
        h("thead", null, h("tr", null, [h("th", null, ""), h("th", null, "parameters"), h("th", null, "mult-adds")])),
        h("tbody", null, body)
      ]));
      if (st.formula !== undefined) {
        view.appendChild(h("div", {"class": "cnnbook-summary"}, [
          "counted ratio of mult-adds ",
          h("b", null, st.ratio_mult_adds),
          "; closed form 1/N + 1/K\u00b2 = 1/" + v.c_out + " + 1/" + v.k + "\u00b2 = ",
          h("b", {"data-out": "formula"}, st.formula)
        ]));
      }
    }
    draw();
  }

  function cost(root, ui, data) {
    data.panels.forEach(function (panel) {
      costPanel(ui, panel);
    });
  }

  // ---- receptive fields ---------------------------------------------------------------------------
  // data.networks[i]: {name, label, input: [H, W], grey, columns, rows, units}; rows[l] holds the display
  // of layer l (see receptive_field.py), units[l] = {ys: [[i, y0, y1], ...], xs: [[j, x0, x1], ...]}:
  // the input rows [y0, y1) seen by output row i, and the columns [x0, x1) seen by output column j.
  function layerSpec(net, index) {
    return {
      key: "layer", label: "layer", kind: "slider",
      values: net.rows.map(function (row, i) { return i; }),
      labels: net.rows.map(function (row) { return row[0]; }),
      index: index
    };
  }
  function unitSpec(key, label, entries) {
    return {
      key: key, label: label, kind: "slider",
      values: entries.map(function (e) { return e[0]; }),
      labels: entries.map(function (e) { return String(e[0]); }),
      index: Math.floor((entries.length - 1) / 2)
    };
  }

  function rf(root, ui, data) {
    var netIndex = data.network;
    var net = data.networks[netIndex];
    var specs = [
      {key: "network", label: "network", kind: "select",
        values: data.networks.map(function (n) { return n.name; }),
        labels: data.networks.map(function (n) { return n.label; }), index: netIndex},
      layerSpec(net, data.layer),
      unitSpec("unit_y", "unit row", net.units[data.layer].ys),
      unitSpec("unit_x", "unit column", net.units[data.layer].xs)
    ];
    var controls = new Controls(ui, specs, changed);
    var status = statusRegion(ui);
    var view = h("div", {"class": "cnnbook-view"});
    ui.appendChild(view);
    var parts = null;  // the elements of the current network's view, built once per network

    function build() {
      var H = net.input[0];
      var W = net.input[1];
      var scale = 300 / Math.max(H, W);
      parts = {
        layer: h("b", {"data-out": "layer"}),
        kind: h("span"),
        size: h("b", {"data-out": "size"}),
        jump: h("b", {"data-out": "jump"}),
        start: h("b", {"data-out": "start"}),
        out: h("span"),
        unit: h("span"),
        region: h("span", {"data-out": "region"}),
        mask: s("path", {"class": "cnnbook-mask", "fill-rule": "evenodd"}),
        edge: s("rect", {"class": "cnnbook-region-edge"}),
        rect: s("rect", {"class": "cnnbook-region", "data-out": "region-rect"})
      };
      var svg = s("svg", {"class": "cnnbook-svg", width: Math.round(W * scale), height: Math.round(H * scale), viewBox: "0 0 " + W + " " + H, "data-out": "image"}, [
        s("image", {href: data.image, x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none", "class": net.grey ? "cnnbook-grey" : null}),
        parts.mask,
        parts.edge,
        parts.rect
      ]);
      parts.rows = net.rows.map(function (r, i) {
        return h("tr", {"data-layer": i}, r.map(function (cell) { return h("td", null, String(cell)); }));
      });
      parts.table = h("table", {"class": "cnnbook-table", "data-out": "rf-table"}, [
        h("thead", null, h("tr", null, net.headers.map(function (name) { return h("th", null, name); }))),
        h("tbody", null, parts.rows)
      ]);
      // Scrolls when the network is deep: focusable, so the keyboard can scroll it too.
      parts.scroller = h("div", {"class": "cnnbook-scroll", tabindex: 0, role: "region", "aria-label": "layers of " + net.label}, parts.table);
      clear(view);
      append(view, [
        h("div", {"class": "cnnbook-summary"}, [
          parts.layer, " (", parts.kind, "): receptive field ", parts.size, " pixels, jump ", parts.jump,
          ", start ", parts.start, "; output ", parts.out, "."
        ]),
        h("div", {"class": "cnnbook-row"}, [
          h("div", null, [
            svg,
            h("div", {"class": "cnnbook-summary"}, [
              "unit ", parts.unit, " sees input rows ", parts.region, " of the " + H + "x" + W + " image."
            ])
          ]),
          parts.scroller
        ])
      ]);
    }

    function changed(key) {
      if (key === "network") {
        net = data.networks[controls.index("network")];
        controls.reset(layerSpec(net, net.rows.length - 1));
        build();
      }
      if (key === "network" || key === "layer") {
        var units = net.units[controls.index("layer")];
        controls.reset(unitSpec("unit_y", "unit row", units.ys));
        controls.reset(unitSpec("unit_x", "unit column", units.xs));
      }
      draw(key);
    }

    function draw(key) {
      var l = controls.index("layer");
      var row = net.rows[l];
      var col = {};
      net.columns.forEach(function (name, i) {
        col[name] = row[i];
      });
      var units = net.units[l];
      var ys = units.ys[controls.index("unit_y")];
      var xs = units.xs[controls.index("unit_x")];
      parts.layer.textContent = col.name;
      parts.kind.textContent = col.kind;
      parts.size.textContent = String(col.size);
      parts.jump.textContent = String(col.jump);
      parts.start.textContent = String(col.start);
      parts.out.textContent = String(col.out_hw);
      parts.unit.textContent = "(" + ys[0] + ", " + xs[0] + ")";
      parts.region.textContent = ys[1] + " to " + (ys[2] - 1) + ", columns " + xs[1] + " to " + (xs[2] - 1);
      status.textContent = net.label + ", " + col.name + ": receptive field " + col.size + " pixels, jump " + col.jump +
        "; unit (" + ys[0] + ", " + xs[0] + ") sees input rows " + parts.region.textContent + ".";
      // Dim the image outside the region: the whole image minus the region (even-odd fill).
      parts.mask.setAttribute("d", "M0 0H" + net.input[1] + "V" + net.input[0] + "H0Z M" + xs[1] + " " + ys[1] +
        "H" + xs[2] + "V" + ys[2] + "H" + xs[1] + "Z");
      [parts.edge, parts.rect].forEach(function (rect) {
        setAttrs(rect, {x: xs[1], y: ys[1], width: xs[2] - xs[1], height: ys[2] - ys[1]});
      });
      parts.rows.forEach(function (tr, i) {
        tr.className = i === l ? "cnnbook-current" : (i > l ? "cnnbook-after" : "");
      });
      var scroller = parts.scroller;
      if ((key === undefined || key === "network" || key === "layer") && scroller.scrollHeight > scroller.clientHeight) {
        scroller.scrollTop = Math.max(0, parts.rows[l].offsetTop - scroller.clientHeight / 2);
      }
    }
    build();
    draw();
  }

  var renderers = {pooling: pooling, cost: cost, rf: rf};

  function mount(root) {
    if (!root || root.getAttribute("data-ready")) {
      return;
    }
    var data = JSON.parse(root.querySelector("script.cnnbook-data").textContent);
    var ui = root.querySelector(".cnnbook-interactive");
    clear(ui);
    renderers[data.widget](root, ui, data);
    root.classList.add("cnnbook-mounted");
    root.setAttribute("data-ready", "1");
  }

  window.cnnbookWidgets = {mount: mount, version: 1};
}());
