// hekate's dashboard: polls data/hekate_health.json (plugins by core), Heka's data/sandboxes.json
// and every circular buffer (.cbuf) a sandbox published, once a second, and draws them.
//
// What is drawn is also kept in `window.hekateDashboard` (and each graph's points in its
// element's `data-points` attribute), for scripts and the end-to-end test.
"use strict";

(function () {
  const REFRESH_MS = 1000;
  const CATEGORIES = ["input", "splitter", "decoder", "filter", "encoder", "output"];
  const SERIES_COLOURS = ["#2f6fb0", "#d0612f", "#3c9a5f", "#9a3ca0", "#b39b1e", "#1e9fb3"];

  const state = {
    plugins: [], // names, in the order shown
    graphs: {}, // file → { header, times, columns: { name: [values] } }
    health: null,
    updated: 0,
  };
  window.hekateDashboard = state;

  const charts = {}; // file → uPlot
  let previous = null; // { at, counts: { "plugin@core": received } }

  async function fetchText(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) return null;
    return r.text();
  }

  async function fetchJson(url) {
    const t = await fetchText(url);
    if (t === null) return null;
    try {
      return JSON.parse(t);
    } catch (e) {
      return null;
    }
  }

  // Heka's circular buffer text: a JSON header line, then one tab-separated row per
  // `seconds_per_row`, the oldest first; `nan` is a gap.
  function parseCbuf(text) {
    const lines = text.split("\n");
    const header = JSON.parse(lines[0]);
    const columns = header.column_info.map(() => []);
    const times = [];
    let row = 0;
    for (const line of lines.slice(1)) {
      if (line === "") continue;
      const cells = line.split("\t");
      times.push(header.time + row * header.seconds_per_row);
      header.column_info.forEach((_, i) => {
        const v = cells[i] === undefined || cells[i] === "nan" ? null : Number(cells[i]);
        columns[i].push(v === null || Number.isNaN(v) ? null : v);
      });
      row += 1;
    }
    return { header, times, columns };
  }

  function number(n) {
    if (n === undefined || n === null) return "";
    if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(1) + "G";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n * 10) / 10);
  }

  function duration(ns) {
    if (!ns) return "";
    if (ns >= 1e6) return (ns / 1e6).toFixed(1) + " ms";
    if (ns >= 1e3) return (ns / 1e3).toFixed(1) + " µs";
    return ns + " ns";
  }

  function bytes(b) {
    if (b === undefined) return "";
    if (b >= 1 << 20) return (b / (1 << 20)).toFixed(1) + " MiB";
    if (b >= 1 << 10) return (b / (1 << 10)).toFixed(1) + " KiB";
    return b + " B";
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function terminationsByPlugin(tsv) {
    const counts = {};
    for (const line of (tsv || "").split("\n")) {
      const parts = line.split("\t");
      if (parts.length >= 2) counts[parts[1]] = (counts[parts[1]] || 0) + 1;
    }
    return counts;
  }

  function renderPlugins(health, terminations) {
    const tbody = document.querySelector("#plugins tbody");
    const now = performance.now();
    const counts = {};
    const rows = [];
    const names = [];
    for (const category of CATEGORIES) {
      const plugins = health.plugins.filter((p) => p.category === category);
      if (plugins.length === 0) continue;
      const head = document.createElement("tr");
      head.className = "category";
      const td = cell(category + "s");
      td.colSpan = 13;
      head.appendChild(td);
      rows.push(head);
      // Splitters, decoders and encoders without figures of their own (they run inside the
      // inputs and outputs that use them) share one row.
      const quiet = ["splitter", "decoder", "encoder"].includes(category)
        ? plugins.filter((p) => p.cores.length === 0)
        : [];
      if (quiet.length) {
        const tr = document.createElement("tr");
        tr.className = "quiet";
        const td = cell("", "name");
        td.colSpan = 13;
        quiet.forEach((p, i) => {
          names.push(p.name);
          const span = document.createElement("span");
          span.dataset.plugin = p.name;
          span.title = p.type;
          span.textContent = (i ? ", " : "") + p.name;
          td.appendChild(span);
        });
        tr.appendChild(td);
        rows.push(tr);
      }
      for (const p of plugins) {
        if (quiet.includes(p)) continue;
        names.push(p.name);
        const cores = p.cores.length ? p.cores : [null];
        cores.forEach((c, i) => {
          const tr = document.createElement("tr");
          tr.dataset.plugin = p.name;
          tr.appendChild(cell(i === 0 ? p.name : "", "name"));
          tr.appendChild(cell(i === 0 ? p.type : "", "type"));
          if (c === null) {
            for (let k = 0; k < 10; k++) tr.appendChild(cell(""));
            tr.appendChild(cell(terminations[p.name] ? String(terminations[p.name]) : "", terminations[p.name] ? "bad" : ""));
            rows.push(tr);
            return;
          }
          const key = p.name + "@" + c.core;
          const received = c.received || 0;
          counts[key] = received;
          let rate = "";
          if (previous && previous.counts[key] !== undefined && now > previous.at) {
            rate = number(((received - previous.counts[key]) * 1000) / (now - previous.at));
          }
          const f = c.fields || {};
          tr.appendChild(cell(String(c.core)));
          tr.appendChild(cell(rate));
          tr.appendChild(cell(number(received)));
          const fill = document.createElement("td");
          if (c.ring_capacity) {
            const bar = document.createElement("span");
            bar.className = "bar";
            const inner = document.createElement("span");
            inner.style.width = Math.min(100, (100 * c.ring) / c.ring_capacity) + "%";
            bar.appendChild(inner);
            fill.appendChild(bar);
            fill.appendChild(document.createTextNode(number(c.ring) + "/" + number(c.ring_capacity)));
          }
          tr.appendChild(fill);
          tr.appendChild(cell(number((c.held || 0) + (f.QueueRecords || 0))));
          tr.appendChild(cell(duration(c.match_ns)));
          tr.appendChild(cell(duration(c.process_ns)));
          tr.appendChild(cell(c.dropped ? number(c.dropped) : "", c.dropped ? "bad" : ""));
          tr.appendChild(cell(f.Memory !== undefined ? bytes(f.Memory) + " / " + bytes(f.MaxMemory) : ""));
          tr.appendChild(cell(f.MaxInstructions !== undefined ? number(f.MaxInstructions) : ""));
          const t = i === 0 ? terminations[p.name] || 0 : 0;
          tr.appendChild(cell(t ? String(t) : "", t ? "bad" : ""));
          rows.push(tr);
        });
      }
    }
    tbody.replaceChildren(...rows);
    previous = { at: now, counts };
    state.plugins = names;
    document.body.dataset.plugins = names.join(",");

    const problems = document.getElementById("problems");
    problems.hidden = health.problems.length === 0;
    problems.textContent = health.problems.join("\n");
  }

  function drawGraph(file, title, parsed) {
    const columns = {};
    parsed.header.column_info.forEach((info, i) => {
      columns[info.name] = parsed.columns[i];
    });
    state.graphs[file] = { header: parsed.header, times: parsed.times, columns };
    const id = "graph-" + file.replace(/[^A-Za-z0-9_-]/g, "_");
    let box = document.getElementById(id);
    if (!box) {
      box = document.createElement("div");
      box.id = id;
      box.className = "graph";
      box.dataset.file = file;
      const h = document.createElement("h3");
      h.textContent = title;
      box.appendChild(h);
      const empty = document.querySelector("#graphs .empty");
      if (empty) empty.remove();
      document.getElementById("graphs").appendChild(box);
    }
    box.dataset.points = JSON.stringify(columns);
    const data = [parsed.times, ...parsed.columns];
    const chart = charts[file];
    if (chart && chart.series.length === data.length) {
      chart.setData(data);
      return;
    }
    if (chart) chart.destroy();
    const series = [{}].concat(
      parsed.header.column_info.map((info, i) => ({
        label: info.name + (info.unit ? " (" + info.unit + ")" : ""),
        stroke: SERIES_COLOURS[i % SERIES_COLOURS.length],
        width: 2,
        points: { show: true, size: 5 },
        spanGaps: false,
      }))
    );
    charts[file] = new uPlot(
      { width: 560, height: 240, series, scales: { x: { time: true } } },
      data,
      box
    );
  }

  async function refreshGraphs() {
    const list = await fetchJson("data/sandboxes.json");
    const other = [];
    for (const sandbox of (list && list.sandboxes) || []) {
      for (const output of sandbox.Outputs || []) {
        const file = output.Filename.replace(/^data\//, "");
        if (!file.endsWith(".cbuf")) {
          other.push(output.Filename);
          continue;
        }
        const text = await fetchText("data/" + file);
        if (text === null) continue;
        try {
          drawGraph(file, sandbox.Name + " — " + (output.Name || file), parseCbuf(text));
        } catch (e) {
          console.warn("cannot draw " + file, e);
        }
      }
    }
    const links = document.getElementById("other-outputs");
    links.replaceChildren(
      ...other.map((f) => {
        const a = document.createElement("a");
        a.href = f;
        a.textContent = f.replace(/^data\//, "");
        a.style.marginRight = "1em";
        return a;
      })
    );
  }

  async function refresh() {
    try {
      const [health, tsv] = await Promise.all([
        fetchJson("data/hekate_health.json"),
        fetchText("data/heka_sandbox_termination.tsv"),
      ]);
      if (health) renderPlugins(health, terminationsByPlugin(tsv));
      await refreshGraphs();
      state.updated += 1;
      document.getElementById("status").textContent =
        "updated " + new Date().toLocaleTimeString() + (health ? ", cores " + health.cores.join(", ") : "");
    } catch (e) {
      document.getElementById("status").textContent = "cannot reach hekate: " + e;
    }
    setTimeout(refresh, REFRESH_MS);
  }

  refresh();
})();
