/* hpo-service web page: the study list, and a study page kept live by its event stream.
 *
 * The study page loads one snapshot and then follows /api/v1/studies/{id}/events from
 * the snapshot's last event id. The snapshot holds the learning curves the page draws
 * (at most 200: the best, the running and an even sample of the rest, chosen by the
 * server as pickCurves does) and either every trial ("complete", up to 1,000 trials) or
 * a sample of them with the best-so-far steps. Complete: the table sorts every trial here
 * and parallel coordinates draw every trial. Sampled: the table pages through
 * /trials on the server (number or best order), the parameter charts draw the sample,
 * and the counts come from GET /studies/{id}, read again every few seconds while events
 * arrive. Charts are redrawn at most twice a second; the best-so-far chart keeps only the
 * points where the best changes.
 */
"use strict";
(function () {
  // Absolute, from the origin: a page opened as http://user:token@host/ has credentials in
  // its base URL, and fetch() refuses relative URLs against such a base. The API calls
  // and the event stream authenticate with the hpo_token cookie set when the page loaded.
  const API = new URL("/api/v1", location.origin).href;
  const FINISHED = new Set(["TERMINATED", "ERROR", "PRUNED"]);
  const TERMINAL = new Set(["COMPLETED", "FAILED", "STOPPED"]);
  const STATE_COLORS = {
    RUNNING: "#16a34a", PENDING: "#ca8a04", TERMINATED: "#2563eb", PRUNED: "#ea580c", ERROR: "#dc2626",
  };
  const MAX_CURVES = 200;
  const INT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];
  const MAX_AXES = 12;
  const PAGE_SIZE = 50;
  const REDRAW_MS = 500;
  const INFO_MS = 2000;
  const timings = (window.hpoTimings = { start: performance.now() });
  const app = document.getElementById("app");

  // --- helpers -----------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function fmt(value) {
    if (value == null) return "-";
    if (typeof value === "number") {
      if (Number.isInteger(value)) return String(value);
      return Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3 ? value.toExponential(3) : value.toPrecision(5);
    }
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }
  function badge(state) { return el("span", { class: `badge ${state}`, text: state }); }
  function duration(seconds) {
    if (seconds == null || !isFinite(seconds)) return "-";
    const s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h}h ${m}m` : m ? `${m}m ${r}s` : `${r}s`;
  }
  function finishedCount(counts) {
    return ["TERMINATED", "ERROR", "PRUNED"].reduce((sum, s) => sum + (counts[s] || 0), 0);
  }
  function progressBar(done, total) {
    const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
    return el("span", { class: "bar", title: `${done}/${total}` }, el("span", { style: `width:${pct}%` }));
  }
  async function getJSON(url, fresh) {
    const headers = fresh ? { "Cache-Control": "no-cache" } : {};
    const response = await fetch(url, { credentials: "same-origin", headers });
    if (response.status === 401) throw new Error("not signed in (401): reload the page to sign in");
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  }
  function flatten(config, prefix, out) {
    for (const [key, value] of Object.entries(config || {})) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (value && typeof value === "object" && !Array.isArray(value)) flatten(value, path, out);
      else out[path] = value;
    }
    return out;
  }
  const better = (mode) => (a, b) => (mode === "min" ? a < b : a > b);

  // --- study list --------------------------------------------------------------------
  async function listPage() {
    document.title = "studies · hpo-service";
    async function render() {
      const page = await getJSON(`${API}/studies?limit=200`);
      const rows = page.items.map((s) => {
        const done = finishedCount(s.trial_counts);
        return el("tr", { "data-study": s.id },
          el("td", { class: "num", text: s.id }),
          el("td", {}, el("a", { href: `/studies/${s.id}`, class: "study-link", text: s.name })),
          el("td", {}, badge(s.status)),
          el("td", {}, progressBar(done, Math.max(s.budget, s.num_trials)), ` ${done}/${s.budget}`),
          el("td", { class: "num", text: s.trial_counts.RUNNING || 0 }),
          el("td", { class: "num", text: s.best_trial ? fmt(s.best_trial.best_value) : "-" }),
          el("td", { text: `${s.trainable} · ${s.algorithm} + ${s.scheduler}` }),
          el("td", { text: new Date(s.created_at).toLocaleString() }));
      });
      app.replaceChildren(
        el("h1", { text: "Studies" }),
        el("table", { id: "studies" },
          el("thead", {}, el("tr", {}, ["id", "name", "status", "progress", "running", "best", "what", "created"].map((h) => el("th", { text: h })))),
          el("tbody", {}, rows)),
        el("p", { class: "note", text: `${page.items.length} of ${page.total} studies; refreshed every 3 s` }));
      timings.listRender = timings.listRender || performance.now() - timings.start;
    }
    try { await render(); } catch (error) { app.replaceChildren(el("p", { text: String(error) })); }
    setInterval(() => render().catch(() => {}), 3000);
  }

  // --- study page: model -------------------------------------------------------------
  class Study {
    constructor(snapshot) {
      this.info = snapshot.study;
      this.mode = this.info.mode;
      this.metric = this.info.metric;
      this.complete = snapshot.complete !== false;
      this.baseTrials = this.info.num_trials;  // trials numbered below existed at the snapshot
      this.baseSteps = snapshot.best_steps || [];
      this.baseFinished = finishedCount(this.info.trial_counts);
      this.liveFinished = [];  // sampled: trials that finished after the snapshot
      this.newResults = 0;  // result events since the counts were last read
      this.trials = new Map();
      this.finishedOrder = [];
      this.finishedSet = new Set();
      const finished = [];
      for (const t of snapshot.trials) {
        const trial = this.trial(t.trial_id);
        Object.assign(trial, {
          number: t.number, state: t.state, reason: t.reason, config: t.config,
          best: t.best_value, last: t.last_value, iters: t.last_iteration || 0,
          curve: t.num_results === 0 || t.trial_id in snapshot.curves,  // false: results not sent
        });
        if (FINISHED.has(t.state)) finished.push([t.finished_at || "", t.number, t.trial_id]);
      }
      finished.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
      for (const [, , id] of finished) this.markFinished(id);
      this.liveFinished = [];
      for (const [id, [its, values]] of Object.entries(snapshot.curves)) {
        const trial = this.trial(id);
        for (let i = 0; i < its.length; i++) this.addResult(trial, its[i], values[i]);
      }
    }
    setInfo(info) {
      this.info = Object.assign(this.info, info);
      this.newResults = 0;
    }
    trial(id) {
      let t = this.trials.get(id);
      if (!t) {
        t = { trial_id: id, number: this.trials.size, state: "RUNNING", config: {}, its: [], values: [], best: null, last: null, iters: 0, curve: true };
        this.trials.set(id, t);
      }
      return t;
    }
    markFinished(id) {
      if (!this.finishedSet.has(id)) {
        this.finishedSet.add(id); this.finishedOrder.push(id); this.liveFinished.push(id);
      }
    }
    addResult(t, iteration, value) {
      const its = t.its;
      t.iters = Math.max(t.iters || 0, iteration);
      if (its.length && iteration <= its[its.length - 1]) {
        if (its.includes(iteration)) return;  // a repeat (snapshot and stream overlap)
        let i = its.findIndex((x) => x > iteration);
        its.splice(i, 0, iteration);
        t.values.splice(i, 0, value);
      } else {
        its.push(iteration);
        t.values.push(value);
        t.last = typeof value === "number" ? value : t.last;
      }
      if (typeof value === "number" && (t.best == null || better(this.mode)(value, t.best))) t.best = value;
    }
    apply(kind, d) {
      // Sampled: a trial of the snapshot that is not in the sample stays out of the model
      // (its config and earlier results are unknown here); the counts still follow.
      if (kind !== "study" && !this.complete && !this.trials.has(d.trial_id) && d.number < this.baseTrials) {
        if (kind === "result") this.newResults++;
        return;
      }
      if (kind === "study") {
        this.info.status = d.status;
        if (d.error) this.info.error = d.error;
      } else if (kind === "trial") {
        const t = this.trial(d.trial_id);
        t.number = d.number;
        t.state = d.state;
        if (d.config && Object.keys(d.config).length) t.config = d.config;
        if (FINISHED.has(d.state)) this.markFinished(d.trial_id);
      } else if (kind === "result") {
        const t = this.trial(d.trial_id);
        t.number = d.number;
        if (t.state === "PENDING") t.state = "RUNNING";
        if (!t.its.includes(d.iteration)) this.newResults++;
        this.addResult(t, d.iteration, d.metrics[this.metric]);
      }
    }
    list() { return Array.from(this.trials.values()); }
    bestTrial() {
      let best = null;
      for (const t of this.trials.values()) {
        if (t.best != null && (best == null || better(this.mode)(t.best, best.best))) best = t;
      }
      return best;
    }
    params() {
      const fixed = new Set(Object.keys(this.info.spec.config || {}));
      const values = new Map();
      for (const t of this.trials.values()) {
        for (const [k, v] of Object.entries(flatten(t.config, "", {}))) {
          if (fixed.has(k)) continue;
          if (!values.has(k)) values.set(k, new Set());
          const seen = values.get(k);
          if (seen.size < 3) seen.add(JSON.stringify(v));
        }
      }
      return Array.from(values.entries()).filter(([, s]) => s.size > 1).map(([k]) => k).slice(0, MAX_AXES - 1);
    }
  }

  // --- study page: charts ------------------------------------------------------------
  function pickCurves(study, trials) {
    const withData = trials.filter((t) => t.its.length && t.curve);
    if (withData.length <= MAX_CURVES) return withData;
    const dir = study.mode === "min" ? 1 : -1;
    const ranked = withData.filter((t) => t.best != null).sort((a, b) => dir * (a.best - b.best));
    const chosen = new Set(ranked.slice(0, MAX_CURVES / 2));
    for (const t of withData) if (t.state === "RUNNING" && chosen.size < (3 * MAX_CURVES) / 4) chosen.add(t);
    const rest = withData.filter((t) => !chosen.has(t));
    const step = rest.length / (MAX_CURVES - chosen.size);
    for (let i = 0; chosen.size < MAX_CURVES && i < rest.length; i += step) chosen.add(rest[Math.floor(i)]);
    return Array.from(chosen);
  }

  function drawCurves(box, study, trials, old) {
    const shown = pickCurves(study, trials).sort((a, b) => a.number - b.number);
    let maxIt = 0;
    for (const t of shown) maxIt = Math.max(maxIt, t.its[t.its.length - 1] || 0);
    const xs = Array.from({ length: maxIt }, (_, i) => i + 1);
    const data = [xs];
    const series = [{ label: "iteration" }];
    let points = 0;
    for (const t of shown) {
      const ys = new Array(maxIt).fill(null);
      t.its.forEach((it, i) => { if (it >= 1 && it <= maxIt) ys[it - 1] = t.values[i]; });
      points += t.its.length;
      data.push(ys);
      const lastIdx = t.its[t.its.length - 1] - 1;
      const pruned = t.state === "PRUNED";
      series.push({
        label: `#${t.number}`,
        stroke: STATE_COLORS[t.state] || "#64748b",
        width: pruned ? 1 : 1.25,
        dash: pruned ? [5, 4] : undefined,
        spanGaps: true,
        points: pruned ? { show: true, size: 6, fill: STATE_COLORS.PRUNED, filter: () => [lastIdx] } : { show: false },
      });
    }
    if (old) old.destroy();
    box.replaceChildren();
    box.dataset.series = String(shown.length);
    box.dataset.points = String(points);
    if (!shown.length) { box.append(el("p", { class: "muted", text: "no results yet" })); return null; }
    const opts = {
      width: Math.max(300, box.clientWidth), height: 300,
      scales: { x: { time: false } },
      axes: [{ label: "iteration", incrs: INT_INCRS }, { label: study.metric, size: 60 }],
      legend: { show: false },
      series,
    };
    return new uPlot(opts, data, box);
  }

  function drawBest(box, study, old) {
    const xs = [], ys = [];
    let best = null;
    const isBetter = better(study.mode);
    // Complete: every finished trial is here. Sampled: the server's steps up to the
    // snapshot, then the trials that finished since.
    const order = study.complete ? study.finishedOrder : study.liveFinished;
    const base = study.complete ? 0 : study.baseFinished;
    if (!study.complete) {
      for (const [x, y] of study.baseSteps) {
        if (best == null || isBetter(y, best)) { xs.push(x); ys.push(y); best = y; }
      }
    }
    order.forEach((id, i) => {
      const t = study.trials.get(id);
      if (t && t.best != null && (best == null || isBetter(t.best, best))) {
        best = t.best;
        xs.push(base + i + 1); ys.push(best);  // only where the best changes: small at any size
      }
    });
    const total = base + order.length;
    if (best != null && xs[xs.length - 1] !== total) {
      xs.push(total); ys.push(best);
    }
    if (old) old.destroy();
    box.replaceChildren();
    box.dataset.points = String(xs.length);
    if (!xs.length) { box.append(el("p", { class: "muted", text: "no finished trials yet" })); return null; }
    const opts = {
      width: Math.max(300, box.clientWidth), height: 260,
      scales: { x: { time: false } },
      axes: [{ label: "trials finished", incrs: INT_INCRS }, { label: `best ${study.metric}`, size: 60 }],
      legend: { show: false },
      series: [{}, { stroke: "#2563eb", width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: true, size: 5 } }],
    };
    return new uPlot(opts, [xs, ys], box);
  }

  function axesOf(study, trials) {
    const names = study.params();
    const flat = trials.map((t) => flatten(t.config, "", {}));
    const axes = names.map((name) => {
      const vals = flat.map((f) => f[name]);
      const numeric = vals.every((v) => v == null || typeof v === "number");
      if (numeric) {
        const nums = vals.filter((v) => v != null);
        const lo = nums.reduce((m, v) => Math.min(m, v), Infinity);
        const hi = nums.reduce((m, v) => Math.max(m, v), -Infinity);
        if (lo > 0 && hi / lo > 100) {  // a log-scale parameter (e.g. a learning rate)
          const a = Math.log(lo), b = Math.log(hi);
          return { name: `${name} (log)`, numeric, lo, hi, pos: (v) => (v == null ? null : (Math.log(v) - a) / (b - a)), vals };
        }
        return { name, numeric, lo, hi, pos: (v) => (v == null ? null : hi > lo ? (v - lo) / (hi - lo) : 0.5), vals };
      }
      const cats = Array.from(new Set(vals.filter((v) => v != null).map((v) => JSON.stringify(v)))).sort();
      return { name, numeric, cats, pos: (v) => (v == null ? null : cats.length > 1 ? cats.indexOf(JSON.stringify(v)) / (cats.length - 1) : 0.5), vals };
    });
    const bests = trials.map((t) => t.best);
    const nums = bests.filter((v) => v != null);
    const lo = nums.reduce((m, v) => Math.min(m, v), Infinity);
    const hi = nums.reduce((m, v) => Math.max(m, v), -Infinity);
    axes.push({ name: study.metric, numeric: true, lo, hi, metric: true, vals: bests,
      pos: (v) => (v == null ? null : hi > lo ? (v - lo) / (hi - lo) : 0.5) });
    return axes;
  }

  function drawParallel(canvas, study, trials) {
    const done = trials.filter((t) => t.best != null);
    canvas.dataset.lines = String(done.length);
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600, height = canvas.clientHeight || 300;
    canvas.width = width * ratio; canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!done.length) return;
    const axes = axesOf(study, done);
    const top = 28, bottom = height - 22, left = 40, right = width - 60;
    const xAt = (i) => (axes.length === 1 ? left : left + ((right - left) * i) / (axes.length - 1));
    const metricAxis = axes[axes.length - 1];
    // Best lines last (on top); colour from the best (blue) to the worst (red).
    const order = done.map((t, i) => i).sort((a, b) => {
      const d = done[a].best - done[b].best;
      return study.mode === "min" ? -d : d;
    });
    ctx.globalAlpha = done.length > 1000 ? 0.25 : done.length > 100 ? 0.5 : 0.85;
    ctx.lineWidth = 1;
    for (const i of order) {
      const q = metricAxis.pos(done[i].best);
      const goodness = study.mode === "min" ? 1 - q : q;
      ctx.strokeStyle = `hsl(${Math.round(goodness * 220)}, 75%, 45%)`;
      ctx.beginPath();
      let started = false;
      axes.forEach((axis, k) => {
        const p = axis.pos(axis.vals[i]);
        if (p == null) { started = false; return; }
        const y = bottom - p * (bottom - top);
        if (started) ctx.lineTo(xAt(k), y); else { ctx.moveTo(xAt(k), y); started = true; }
      });
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#1d2330"; ctx.strokeStyle = "#334155"; ctx.font = "11px system-ui"; ctx.textAlign = "center";
    axes.forEach((axis, k) => {
      const x = xAt(k);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.fillText(axis.name.length > 16 ? axis.name.slice(0, 15) + "…" : axis.name, x, top - 12);
      const hiText = axis.numeric ? fmt(axis.hi) : axis.cats[axis.cats.length - 1];
      const loText = axis.numeric ? fmt(axis.lo) : axis.cats[0];
      ctx.fillText(String(hiText), x, top - 1);
      ctx.fillText(String(loText), x, bottom + 13);
    });
  }

  function ranks(values) {
    const idx = values.map((v, i) => i).sort((a, b) => values[a] - values[b]);
    const r = new Array(values.length);
    for (let i = 0; i < idx.length;) {
      let j = i;
      while (j + 1 < idx.length && values[idx[j + 1]] === values[idx[i]]) j++;
      for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  }
  /* Importance of a parameter: the share of the variance of the trials' best values
   * (as ranks, so outliers do not dominate) that its value alone explains, eta squared:
   * groups are the choices of a categorical parameter, or ten quantile bins of a number
   * (which catches effects that are not monotone). Noise scores near 0. A rough guide. */
  function importance(study, trials) {
    const done = trials.filter((t) => t.best != null);
    if (done.length < 5) return [];
    const axes = axesOf(study, done).filter((a) => !a.metric);
    const y = ranks(done.map((t) => t.best));
    return axes.map((axis) => {
      const rows = [];
      axis.vals.forEach((v, i) => { if (v != null) rows.push([v, y[i]]); });
      if (rows.length < 5) return [axis.name, 0];
      let keys;
      if (axis.numeric) {
        const r = ranks(rows.map((row) => row[0]));
        const bins = Math.max(2, Math.min(10, Math.floor(rows.length / 5)));
        keys = r.map((rank) => Math.min(bins - 1, Math.floor((rank * bins) / rows.length)));
      } else {
        keys = rows.map((row) => JSON.stringify(row[0]));
      }
      const mean = rows.reduce((sum, row) => sum + row[1], 0) / rows.length;
      const groups = new Map();
      rows.forEach((row, i) => {
        const g = groups.get(keys[i]) || [0, 0];
        g[0] += row[1]; g[1] += 1;
        groups.set(keys[i], g);
      });
      let between = 0, total = 0;
      for (const [sum, n] of groups.values()) between += n * (sum / n - mean) ** 2;
      for (const row of rows) total += (row[1] - mean) ** 2;
      return [axis.name, total ? between / total : 0];
    }).sort((a, b) => b[1] - a[1]);
  }
  function drawImportance(box, study, trials) {
    const rows = importance(study, trials);
    box.replaceChildren(...(rows.length ? rows.map(([name, share]) =>
      el("div", { class: "row", "data-param": name },
        el("span", { class: "name", title: name, text: name }),
        el("span", { class: "fill", style: `width:${Math.max(1, share * 300)}px` }),
        el("span", { class: "num", text: `${(share * 100).toFixed(1)}%` })))
      : [el("p", { class: "muted", text: "needs 5 trials with results" })]));
  }

  // --- study page: table -------------------------------------------------------------
  function tableColumns(study) {
    const params = study.params().slice(0, 8);
    return [
      ["number", "#", (t) => t.number], ["state", "state", (t) => t.state],
      ["best", `best ${study.metric}`, (t) => t.best], ["last", "last", (t) => t.last],
      ["iters", "iterations", (t) => t.iters],
      ...params.map((p) => [`param:${p}`, p, (t) => flatten(t.config, "", {})[p]]),
    ];
  }
  function drawTable(box, study, trials, view) {
    const columns = tableColumns(study);
    const column = columns.find((c) => c[0] === view.key) || columns[0];
    const get = column[2], dir = view.dir === "desc" ? -1 : 1;
    const sorted = trials.slice().sort((a, b) => {
      const x = get(a), y = get(b);
      if (x == null && y == null) return a.number - b.number;
      if (x == null) return 1;
      if (y == null) return -1;
      if (x < y) return -dir;
      if (x > y) return dir;
      return a.number - b.number;
    });
    const pages = Math.max(1, Math.ceil(sorted.length / PAGE_SIZE));
    view.page = Math.min(view.page, pages - 1);
    const slice = sorted.slice(view.page * PAGE_SIZE, (view.page + 1) * PAGE_SIZE);
    renderTable(box, columns, column[0], slice, sorted.length, view, () => true);
  }
  /* Sampled studies: the server sorts (number or best first) and pages. */
  async function drawServerTable(box, study, view) {
    const columns = tableColumns(study);
    if (!["number", "best"].includes(view.key)) view.key = "number";
    view.dir = "asc";
    const order = view.key === "best" ? "best" : "number";
    const page = await getJSON(`${API}/studies/${study.info.id}/trials?order=${order}&limit=${PAGE_SIZE}&offset=${view.page * PAGE_SIZE}`);
    const rows = page.items.map((t) => ({
      trial_id: t.trial_id, number: t.number, state: t.state, reason: t.reason, config: t.config,
      best: t.best_value, last: t.last_value, iters: t.last_iteration || 0,
    }));
    renderTable(box, columns, view.key, rows, page.total, view, (key) => key === "number" || key === "best");
  }
  function renderTable(box, columns, sortedKey, slice, total, view, sortable) {
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const head = el("tr", {}, columns.map(([key, label]) => el("th", {
      class: sortable(key) ? `sortable${key === sortedKey ? ` sorted-${view.dir}` : ""}` : null, "data-key": key, text: label,
      onclick: sortable(key) ? () => {
        view.dir = view.key === key && view.dir === "asc" ? "desc" : "asc";
        view.key = key; view.page = 0; view.redraw();
      } : null,
    })));
    const body = slice.map((t) => el("tr", { "data-trial": t.trial_id },
      columns.map(([key, , g]) => key === "state" ? el("td", { title: t.reason ? `failed: ${t.reason}` : "" }, badge(t.reason ? `${t.state} ${t.reason}` : t.state)) : el("td", { class: "num", text: fmt(g(t)) }))));
    const pager = el("div", { class: "pager" },
      el("button", { id: "prev-page", disabled: view.page === 0 ? "" : null, onclick: () => { view.page--; view.redraw(); }, text: "‹ prev" }),
      el("span", { text: `${slice.length ? view.page * PAGE_SIZE + 1 : 0}–${view.page * PAGE_SIZE + slice.length} of ${total} trials` }),
      el("button", { id: "next-page", disabled: view.page >= pages - 1 ? "" : null, onclick: () => { view.page++; view.redraw(); }, text: "next ›" }));
    box.replaceChildren(pager, el("table", { id: "trials-table" }, el("thead", {}, head), el("tbody", {}, body)));
  }

  // --- study page --------------------------------------------------------------------
  function facts(study) {
    const info = study.info;
    const trials = study.list();
    const finished = study.complete ? study.finishedOrder.length : finishedCount(info.trial_counts);
    const budget = Math.max(info.budget, study.complete ? trials.length : info.num_trials);
    const running = study.complete ? trials.filter((t) => t.state === "RUNNING").length : info.trial_counts.RUNNING || 0;
    const best = study.bestTrial();
    const start = info.started_at ? Date.parse(info.started_at) : null;
    const end = TERMINAL.has(info.status) && info.finished_at ? Date.parse(info.finished_at) : Date.now();
    const elapsed = start ? (end - start) / 1000 : null;
    const eta = elapsed && finished && !TERMINAL.has(info.status) ? (elapsed / finished) * (budget - finished) : null;
    const results = info.num_results + study.newResults;
    return el("div", { class: "facts" },
      el("div", {}, el("b", { text: "status" }), el("span", { id: "status" }, badge(info.status))),
      el("div", {}, el("b", { text: "progress" }), progressBar(finished, budget), el("span", { id: "progress", text: ` ${finished}/${budget}` })),
      el("div", {}, el("b", { text: "running" }), el("span", { id: "running", text: running })),
      el("div", {}, el("b", { text: `best ${info.metric} (${info.mode})` }), el("span", { id: "best", text: best ? `${fmt(best.best)} (#${best.number})` : "-" })),
      el("div", {}, el("b", { text: "results" }), el("span", { id: "results", text: results })),
      el("div", {}, el("b", { text: "elapsed" }), el("span", { text: duration(elapsed) })),
      el("div", {}, el("b", { text: "ETA" }), el("span", { text: eta == null ? "-" : duration(eta) })),
      el("div", {}, el("b", { text: "Ray job" }), info.ray_dashboard_url
        ? el("a", { id: "ray-link", href: info.ray_dashboard_url, target: "_blank", rel: "noopener", text: info.ray_job_id || "dashboard" })
        : el("span", { text: "-" })));
  }

  // --- comparison report (a study made by POST /comparisons) ---------------------------
  function signed(value) {
    if (value == null) return "n/a";
    const digits = Math.abs(value) < 0.1 && value !== 0 ? 4 : 2;
    return (value >= 0 ? "+" : "") + value.toFixed(digits);
  }
  async function drawComparison(box, chartBox, id, finished) {
    const comparison = await getJSON(`${API}/comparisons/${id}`, true);
    const report = comparison.report;
    const head = el("tr", {}, el("th", { text: `variant vs ${report.baseline}` }), el("th", { text: "runs" }),
      report.metrics.map((m) => el("th", { text: m.label })));
    const rows = report.rows.map((row) => el("tr", { class: "variant" },
      el("td", { text: row.variant }),
      el("td", { class: "num", text: `${row.seeds - row.failed}/${comparison.repeats}` }),
      report.metrics.map((m) => {
        const c = row.metrics[m.key];
        if (!c || c.delta == null) return el("td", { class: "num muted", text: "n/a" });
        const interval = c.ci_low == null ? ` (n=${c.n})` : ` [${signed(c.ci_low)}, ${signed(c.ci_high)}]`;
        return el("td", { class: c.significant ? "num significant" : "num", "data-metric": m.key },
          signed(c.delta) + interval + (c.significant ? " *" : ""));
      })));
    box.replaceChildren(
      el("table", { id: "comparison-table" }, el("thead", {}, head), el("tbody", {}, rows)),
      el("p", { class: "note", text: `difference to ${report.baseline} over seeds (paired), mean and 95 % t-interval; * the interval excludes 0; points = percentage points` }),
      report.notes.length ? el("ul", { class: "note" }, report.notes.map((n) => el("li", { text: n }))) : null,
      el("p", {}, "download: ",
        ["markdown", "csv", "json"].map((f) => [el("a", { href: `${API}/comparisons/${id}/report?format=${f}`, text: f }), " "])));
    chartBox.replaceChildren(el("img", { id: "comparison-chart", alt: "deltas per variant and metric",
      src: `${API}/comparisons/${id}/chart.png?finished=${finished}`, style: "max-width:100%" }));
  }

  async function studyPage(id) {
    const snapshot = await getJSON(`${API}/studies/${id}/snapshot`);
    timings.snapshotLoaded = performance.now() - timings.start;
    const study = new Study(snapshot);
    document.title = `${study.info.name} · hpo-service`;
    const legend = el("div", { class: "legend" }, Object.entries(STATE_COLORS).map(([s, c]) =>
      el("span", {}, el("i", { style: `background:${c}` }), s.toLowerCase())));
    const parts = {
      header: el("div", {}),
      curves: el("div", { id: "curves" }),
      curvesNote: el("p", { class: "note" }),
      best: el("div", { id: "best-chart" }),
      parallel: el("canvas", { id: "parallel", class: "pc" }),
      importance: el("div", { id: "importance", class: "importance" }),
      table: el("div", { id: "trials" }),
      comparison: el("div", { id: "comparison" }),
      comparisonChart: el("div", {}),
    };
    const isComparison = Boolean(study.info.spec && study.info.spec.comparison);
    app.replaceChildren(
      el("p", {}, el("a", { href: "/", id: "back", text: "← all studies" })),
      el("h1", { id: "study-name", text: `${study.info.name} (study ${id})` }),
      parts.header,
      el("div", { class: "grid" },
        isComparison ? el("div", { class: "card wide" }, el("h2", { text: "Comparison" }), parts.comparison, parts.comparisonChart) : null,
        el("div", { class: "card wide" }, el("h2", { text: "Learning curves" }), parts.curves, legend, parts.curvesNote),
        el("div", { class: "card" }, el("h2", { text: "Best so far" }), parts.best),
        el("div", { class: "card" }, el("h2", { text: "Parameter importance" }), parts.importance,
          el("p", { class: "note", text: "share of the variance of the trials' best values (ranked) that the parameter alone explains (eta²; numbers in 10 quantile bins)" })),
        el("div", { class: "card wide" }, el("h2", { text: "Parameters vs metric" }), parts.parallel),
        el("div", { class: "card wide" }, el("h2", { text: "Trials" }), parts.table)));
    const view = {
      key: "number", dir: "asc", page: 0,
      redraw: () => (study.complete ? drawTable(parts.table, study, study.list(), view)
        : drawServerTable(parts.table, study, view).catch(() => {})),
    };
    let plots = { curves: null, best: null };
    let comparedAt = -1;
    function renderFast() {
      parts.header.replaceChildren(facts(study));
      view.redraw();
      // The report changes when a run finishes: fetch it again then, not on every result.
      const finished = study.complete ? study.finishedOrder.length : finishedCount(study.info.trial_counts || {});
      if (isComparison && finished !== comparedAt) {
        comparedAt = finished;
        drawComparison(parts.comparison, parts.comparisonChart, id, finished).catch((error) => {
          parts.comparison.replaceChildren(el("p", { class: "error", text: String(error) }));
        });
      }
    }
    function renderCharts() {
      const trials = study.list();
      plots.curves = drawCurves(parts.curves, study, trials, plots.curves);
      const shown = Number(parts.curves.dataset.series || 0);
      const all = study.complete ? trials.length : Math.max(study.info.num_trials, trials.length);
      parts.curvesNote.textContent = shown < (study.complete ? trials.filter((t) => t.its.length || !t.curve).length : all)
        ? `showing ${shown} of ${all} trials: the best, the running and an even sample of the rest; pruned trials dashed, ending in a dot`
        + (study.complete ? "" : `; parameter charts: a sample of ${trials.length} trials`)
        : "pruned trials (stopped early by the scheduler) are dashed and end in a dot";
      plots.best = drawBest(parts.best, study, plots.best);
      drawParallel(parts.parallel, study, trials);
      drawImportance(parts.importance, study, trials);
    }
    renderFast();
    timings.firstRender = performance.now() - timings.start;
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    renderCharts();
    timings.fullRender = performance.now() - timings.start;
    document.body.dataset.rendered = "full";

    let dirty = false, scheduled = false, infoAt = performance.now(), ended = false;
    function refreshInfo(fresh) {
      infoAt = performance.now();
      // Counts and best trial from the server (cheap: cached there). The last one, at
      // the end, asks for the store's own now (no-cache), as no event follows it.
      return getJSON(`${API}/studies/${id}`, fresh).then((info) => { study.setInfo(info); schedule(); });
    }
    function schedule() {
      dirty = true;
      if (scheduled) return;
      scheduled = true;
      setTimeout(() => {
        scheduled = false;
        if (!dirty) return;
        dirty = false;
        if (!ended && performance.now() - infoAt > INFO_MS) refreshInfo(false).catch(() => {});
        renderFast();
        renderCharts();
        document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
      }, REDRAW_MS);
    }
    if (TERMINAL.has(study.info.status)) return;
    const source = new EventSource(`${API}/studies/${id}/events?after=${snapshot.last_event_id}`);
    for (const kind of ["study", "trial", "result"]) {
      source.addEventListener(kind, (event) => {
        const d = JSON.parse(event.data);
        study.apply(kind, d);
        if (kind === "study" && TERMINAL.has(d.status)) {
          source.close();
          ended = true;
          refreshInfo(true).catch(() => {});
        }
        schedule();
      });
    }
    window.addEventListener("resize", schedule);
  }

  const match = location.pathname.match(/^\/studies\/(\d+)\/?$/);
  (match ? studyPage(Number(match[1])) : listPage()).catch((error) => {
    app.replaceChildren(el("p", { class: "error", text: String(error) }));
  });
})();
