// toolmesh operator dashboard. Plain ES2020, no framework, no build step.
//
// Everything that comes from the server (plugin names, descriptions, error
// messages, tool results) is untrusted: it only ever reaches the page through
// text nodes, attribute values and `textContent`, never through `innerHTML`.
(() => {
  'use strict';

  const VIEWS = ['overview', 'plugins', 'runner', 'history', 'mesh', 'permissions',
    'budgets', 'discovery', 'events', 'alerts', 'config'];
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const MAX_CALL_ROWS = 50;
  const MAX_EVENT_ROWS = 500;
  const SEP = '__';

  const S = {
    csrf: null,
    client: null,
    view: null,
    es: null,
    liveOpened: false,
    liveRetry: null,
    ovPrefetch: null,
    overview: null,
    calls: [],              // CallEvent, newest first
    callRows: new Map(),    // seq -> <tr>
    rateSeries: [],         // [t_ms, calls_per_s]
    p99Series: [],          // [t_ms, p99_us]
    plugins: null,
    pluginsGen: 0,
    pluginsTimer: null,
    runnerTool: null,
    runnerSchemaJson: null,
    runnerPreselect: null,
    events: [],
    alerts: null,
    rules: null,
    range: 'hour',
    last: {},               // view key -> JSON text of the last rendered data
    loadedAt: {},           // view -> ms of the last successful load
  };

  // ---------------------------------------------------------------- helpers

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  /** Builds an element. Strings and numbers among the children become text nodes. */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled') el[k] = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, kids);
    return el;
  }
  function append(el, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) append(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
  }
  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const isObj = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);
  const str = (x) => (typeof x === 'string' ? x : x === null || x === undefined ? '' : String(x));
  const arr = (x) => (Array.isArray(x) ? x : []);

  function fmtInt(n) { return isNum(n) ? Math.round(n).toLocaleString() : '—'; }
  function fmtCompact(n) {
    if (!isNum(n)) return '—';
    const a = Math.abs(n);
    if (a < 1e4) return Math.round(n).toLocaleString();
    if (a < 1e6) return (n / 1e3).toFixed(a < 1e5 ? 1 : 0) + ' k';
    if (a < 1e9) return (n / 1e6).toFixed(a < 1e7 ? 2 : 1) + ' M';
    return (n / 1e9).toFixed(2) + ' G';
  }
  function fmtUs(us) {
    if (!isNum(us)) return '—';
    if (us < 1000) return Math.round(us) + ' µs';
    const ms = us / 1000;
    if (ms < 10) return ms.toFixed(2) + ' ms';
    if (ms < 100) return ms.toFixed(1) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    const s = ms / 1000;
    if (s < 60) return s.toFixed(2) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }
  function fmtBytes(b) {
    if (!isNum(b)) return '—';
    if (b < 1024) return Math.round(b) + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = b / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[i];
  }
  function fmtRate(r) {
    if (!isNum(r)) return '—';
    if (r === 0) return '0';
    if (r < 10) return r.toFixed(2);
    if (r < 100) return r.toFixed(1);
    return Math.round(r).toLocaleString();
  }
  function fmtPct(ratio) {
    if (!isNum(ratio)) return '—';
    const p = ratio * 100;
    if (p === 0) return '0 %';
    return (p < 1 ? p.toFixed(2) : p.toFixed(1)) + ' %';
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  function fmtClock(ms, seconds) {
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + (seconds === false ? '' : ':' + pad2(d.getSeconds()));
  }
  function fmtTime(ms) {
    if (!isNum(ms)) return '—';
    const d = new Date(ms), now = new Date();
    if (d.toDateString() === now.toDateString()) return fmtClock(ms);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + fmtClock(ms);
  }
  function fmtSpan(s) {
    if (!isNum(s)) return '?';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return +(s / 60).toFixed(1) + ' min';
    if (s < 86400) return +(s / 3600).toFixed(1) + ' h';
    return +(s / 86400).toFixed(1) + ' d';
  }
  function fmtFullTime(ms) { return isNum(ms) ? new Date(ms).toString() : ''; }
  function fmtUptime(s) {
    if (!isNum(s)) return '';
    s = Math.floor(s);
    const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return 'up ' + d + ' d ' + hr + ' h';
    if (hr > 0) return 'up ' + hr + ' h ' + m + ' min';
    if (m > 0) return 'up ' + m + ' min';
    return 'up ' + s + ' s';
  }
  function compactJson(v) {
    try { const t = JSON.stringify(v); return t === undefined ? String(v) : t; } catch (_) { return String(v); }
  }
  function prettyJson(v) {
    try { const t = JSON.stringify(v, null, 2); return t === undefined ? String(v) : t; } catch (_) { return String(v); }
  }
  function qualify(plugin, tool) {
    const n = str(tool);
    return n.includes(SEP) ? n : str(plugin) + SEP + n;
  }

  const OUTCOME_CLASS = {
    ok: 'ok', invalid_arguments: 'warn', denied: 'warn', quota: 'warn', cancelled: '',
    paused: 'warn', breaker_open: 'warn', tool_error: 'bad', trap: 'bad', host_error: 'bad',
  };
  function outcomeBadge(o) {
    const t = str(o) || 'unknown';
    return h('span', { class: 'badge ' + (OUTCOME_CLASS[t] || '') }, t.replace(/_/g, ' '));
  }
  const STATE_CLASS = { enabled: 'ok', paused: 'warn', disabled: '' };
  const BREAKER_CLASS = { closed: '', open: 'bad', half_open: 'warn' };
  const KIND_CLASS = {
    loaded: 'info', enabled: 'ok', resumed: 'ok', breaker_closed: 'ok', reloaded: 'info',
    paused: 'warn', breaker_half_open: 'warn', disabled: '', removed: '',
    failed: 'bad', breaker_opened: 'bad',
  };

  // ---------------------------------------------------------------- API

  class HttpError extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body; }
  }

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = S.csrf || '';
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new HttpError(0, 'cannot reach the host (' + str(e && e.message) + ')', null);
    }
    const text = await res.text().catch(() => '');
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
    if (!res.ok) {
      const msg = (isObj(data) && typeof data.error === 'string' && data.error) || ('HTTP ' + res.status);
      if (res.status === 401 && path !== '/api/login') signedOut(S.csrf ? 'Your session has ended. Sign in again.' : null);
      throw new HttpError(res.status, msg, data);
    }
    return data;
  }

  // ---------------------------------------------------------------- sign-in

  function showBoot(text) {
    $('#boot').textContent = text;
    $('#boot').hidden = false;
    $('#login-screen').hidden = true;
    $('#app').hidden = true;
  }

  function showLogin(message) {
    $('#boot').hidden = true;
    $('#app').hidden = true;
    $('#login-screen').hidden = false;
    setLoginError(message);
    const key = $('#login-key');
    key.disabled = false;
    $('#login-submit').disabled = false;
    key.focus();
  }

  function setLoginError(message) {
    const el = $('#login-error');
    el.textContent = message || '';
    el.hidden = !message;
  }

  async function onLoginSubmit(ev) {
    ev.preventDefault();
    const keyEl = $('#login-key');
    const key = keyEl.value.trim();
    setLoginError(null);
    if (!key) { setLoginError('Enter an API key.'); return; }
    const btn = $('#login-submit');
    btn.disabled = true;
    try {
      const data = await api('POST', '/api/login', { key });
      keyEl.value = '';
      showApp(data);
    } catch (e) {
      let msg;
      if (e.status === 401) msg = 'That key was not accepted.';
      else if (e.status === 403) msg = 'That key does not have the admin scope.';
      else if (e.status === 0) msg = 'Cannot reach the host.';
      else msg = 'Sign-in failed.';
      const detail = e.status !== 0 && e.message && !/^HTTP \d+$/.test(e.message) ? ' (' + e.message + ')' : '';
      setLoginError(msg + detail);
      keyEl.select();
    } finally {
      btn.disabled = false;
    }
  }

  function showApp(session) {
    S.csrf = isObj(session) ? str(session.csrf) : '';
    S.client = isObj(session) ? str(session.client) : '';
    $('#signed-in-as').textContent = S.client || '—';
    $('#boot').hidden = true;
    $('#login-screen').hidden = true;
    $('#app').hidden = false;
    connectLive(); // its 'open' also reads the overview
    route();
  }

  function signedOut(message) {
    const wasIn = S.csrf !== null;
    S.csrf = null;
    S.client = null;
    if (S.es) { S.es.close(); S.es = null; }
    clearTimeout(S.liveRetry);
    S.liveOpened = false;
    S.calls = [];
    S.callRows.clear();
    S.rateSeries = [];
    S.p99Series = [];
    S.plugins = null;
    S.last = {};
    S.loadedAt = {};
    $('#recent-calls tbody').replaceChildren();
    for (const id of ['tile-calls', 'tile-calls-sub', 'tile-rate', 'tile-error-ratio', 'tile-p50', 'tile-p99',
      'tile-rss', 'tile-cpu', 'tile-plugins', 'tile-tools', 'tile-alerts', 'tile-peers']) $('#' + id).textContent = '';
    showLogin(wasIn ? message : null);
  }

  async function logout() {
    try { await api('POST', '/api/logout', {}); } catch (_) { /* signed out either way */ }
    signedOut(null);
  }

  async function boot() {
    const opts = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
    // The overview is asked for at once too, to save a round trip when the cookie is valid.
    const ov = fetch('/api/overview', opts).then((r) => (r.ok ? r.json() : null)).catch(() => null);
    try {
      const s = await fetch('/api/session', opts);
      if (s.status === 200) {
        const session = await s.json().catch(() => ({}));
        S.ovPrefetch = ov;
        showApp(session);
        return;
      }
      showLogin(null);
    } catch (_) {
      showBoot('Cannot reach the host. Retrying…');
      setTimeout(boot, 3000);
    }
  }

  // ---------------------------------------------------------------- live stream

  function setLive(status) {
    const el = $('#live-status');
    el.dataset.status = status;
    el.textContent = status;
  }

  function connectLive() {
    if (S.es) S.es.close();
    clearTimeout(S.liveRetry);
    setLive('connecting');
    let es;
    try { es = new EventSource('/api/live'); } catch (_) { scheduleLiveRecovery(); return; }
    S.es = es;
    const on = (name, fn) => es.addEventListener(name, (ev) => {
      if (S.es !== es) return;
      let data = null;
      try { data = JSON.parse(ev.data); } catch (_) { return; }
      try { fn(data); } catch (e) { console.error('live ' + name, e); }
    });
    es.addEventListener('open', () => {
      if (S.es !== es) return;
      setLive('live');
      // Whatever happened while the stream was down (or before it opened) is refetched.
      loadOverview().catch(() => {});
      if (S.liveOpened && S.view) loadView(S.view, true);
      S.liveOpened = true;
    });
    es.addEventListener('error', () => {
      if (S.es !== es) return;
      setLive('reconnecting');
      if (es.readyState === EventSource.CLOSED) scheduleLiveRecovery();
    });
    on('calls', (d) => onCalls(Array.isArray(d) ? d : [d]));
    on('overview', onOverview);
    on('lifecycle', onLifecycle);
    on('alert', onAlert);
    on('plugins', () => schedulePluginsRefetch());
  }

  // The browser gave up on the stream (it answered with an error status):
  // check the session, then open it again.
  function scheduleLiveRecovery() {
    clearTimeout(S.liveRetry);
    S.liveRetry = setTimeout(async () => {
      if (S.csrf === null) return;
      try {
        await api('GET', '/api/session');
        connectLive();
      } catch (e) {
        if (e.status !== 401) scheduleLiveRecovery();
      }
    }, 3000);
  }

  // ---------------------------------------------------------------- overview

  async function loadOverview() {
    let o = null;
    if (S.ovPrefetch) { // read at boot, alongside the session check
      const p = S.ovPrefetch;
      S.ovPrefetch = null;
      o = await p;
    }
    if (!isObj(o)) o = await api('GET', '/api/overview');
    if (!isObj(o)) return;
    onOverview(o);
    if (Array.isArray(o.recent_calls)) mergeCalls(o.recent_calls);
  }

  function onOverview(o) {
    if (!isObj(o)) return;
    S.overview = Object.assign({}, S.overview || {}, o);
    delete S.overview.recent_calls;
    renderTiles(S.overview);
    renderOpenAlerts();
    const t = isNum(o.time_ms) ? o.time_ms : Date.now();
    pushPoint(S.rateSeries, t, o.calls_per_s);
    pushPoint(S.p99Series, t, o.p99_us);
    if (S.view === 'overview') drawOverviewCharts();
  }

  function pushPoint(series, t, v) {
    const last = series[series.length - 1];
    if (last && t <= last[0]) return;
    series.push([t, isNum(v) ? v : null]);
    const cut = t - CHART_WINDOW_MS - 2000;
    while (series.length && series[0][0] < cut) series.shift();
  }

  function setTile(id, text, cls) {
    const el = $('#' + id);
    el.textContent = text;
    el.classList.remove('bad', 'warn');
    if (cls) el.classList.add(cls);
  }

  function renderTiles(o) {
    setTile('tile-calls', fmtInt(o.calls));
    $('#tile-calls-sub').textContent = isNum(o.errors) ? fmtInt(o.errors) + ' errors' : '';
    setTile('tile-rate', fmtRate(o.calls_per_s));
    const er = o.error_ratio;
    setTile('tile-error-ratio', fmtPct(er), isNum(er) ? (er >= 0.05 ? 'bad' : er > 0 ? 'warn' : null) : null);
    setTile('tile-p50', fmtUs(o.p50_us));
    setTile('tile-p99', fmtUs(o.p99_us));
    const p = isObj(o.process) ? o.process : null;
    setTile('tile-rss', p ? fmtBytes(p.rss_bytes) : 'n/a');
    setTile('tile-cpu', p && isNum(p.cpu_percent) ? p.cpu_percent.toFixed(1) + ' %' : 'n/a');
    const pl = isObj(o.plugins) ? o.plugins : {};
    setTile('tile-plugins', fmtInt(pl.enabled));
    $('#tile-tools').textContent = [
      isNum(pl.paused) && pl.paused ? fmtInt(pl.paused) + ' paused' : null,
      isNum(pl.disabled) && pl.disabled ? fmtInt(pl.disabled) + ' off' : null,
      isNum(o.tools) ? fmtInt(o.tools) + ' tools' : null,
    ].filter(Boolean).join(' · ');
    const open = arr(o.open_alerts).filter((a) => isObj(a) && !a.acknowledged);
    setTile('tile-alerts', String(open.length), open.length ? 'bad' : null);
    $('#tile-peers').textContent = isNum(o.peers) ? fmtInt(o.peers) + ' mesh peers' : 'mesh off';
    $('#ov-uptime').textContent = fmtUptime(o.uptime_s);
    const badge = $('#nav-alert-count');
    badge.textContent = String(open.length);
    badge.hidden = open.length === 0;
  }

  function renderOpenAlerts() {
    const o = S.overview || {};
    const open = arr(o.open_alerts).filter((a) => isObj(a) && !a.acknowledged);
    $('#ov-alerts-box').hidden = open.length === 0;
    $('#ov-alerts').replaceChildren(...open.map((a) => h('div', { class: 'alert-row' },
      h('span', { class: 'badge bad' }, str(a.rule) || 'alert'),
      h('span', { class: 'msg' }, str(a.message)),
      h('span', { class: 'muted small', title: fmtFullTime(a.time_ms) }, fmtTime(a.time_ms)),
      ackButton(a))));
  }

  function ackButton(a) {
    return h('button', {
      type: 'button', 'data-alert': str(a.id),
      onclick: async (ev) => {
        const b = ev.currentTarget;
        b.disabled = true;
        try {
          const r = await api('POST', '/api/alerts/' + encodeURIComponent(str(a.id)) + '/ack', {});
          onAlert(isObj(r) && isObj(r.alert) ? r.alert : Object.assign({}, a, { acknowledged: true }));
        } catch (e) {
          b.disabled = false;
          b.title = e.message;
          b.textContent = 'Acknowledge (failed: ' + e.message + ')';
        }
      },
    }, 'Acknowledge');
  }

  function onCalls(list) { mergeCalls(list); }

  function mergeCalls(list) {
    const have = new Set(S.calls.map((c) => c.seq));
    let changed = false;
    for (const c of arr(list)) {
      if (!isObj(c) || !isNum(c.seq) || have.has(c.seq)) continue;
      S.calls.push(c);
      have.add(c.seq);
      changed = true;
    }
    if (!changed) return;
    S.calls.sort((a, b) => b.seq - a.seq);
    if (S.calls.length > MAX_CALL_ROWS) S.calls.length = MAX_CALL_ROWS;
    renderCalls();
  }

  function renderCalls() {
    const tbody = $('#recent-calls tbody');
    const keep = new Map();
    const rows = S.calls.map((c) => {
      let tr = S.callRows.get(c.seq);
      if (!tr) tr = callRow(c);
      keep.set(c.seq, tr);
      return tr;
    });
    S.callRows = keep;
    // Insert in order without touching rows already in place.
    rows.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
    while (tbody.children.length > rows.length) tbody.lastElementChild.remove();
    $('#recent-empty').hidden = rows.length > 0;
  }

  function callRow(c) {
    const who = [str(c.client), str(c.agent)].filter(Boolean).join(' · ');
    return h('tr', { 'data-seq': String(c.seq), 'data-tool': str(c.tool) },
      h('td', { class: 'time', title: fmtFullTime(c.time_ms) }, fmtTime(c.time_ms)),
      h('td', { class: 'tool-name' }, str(c.tool) || '—'),
      h('td', null, who || h('span', { class: 'muted' }, '—')),
      h('td', null, outcomeBadge(c.outcome)),
      h('td', { class: 'num' }, fmtUs(c.micros)),
      h('td', { class: 'num', title: isNum(c.fuel) ? fmtInt(c.fuel) : null }, fmtCompact(c.fuel)),
      h('td', { class: 'num' }, fmtBytes(c.peak_memory_bytes)),
      h('td', { class: 'num' }, fmtBytes(c.bytes_in)),
      h('td', { class: 'num' }, fmtBytes(c.bytes_out)));
  }

  function drawOverviewCharts() {
    const last = S.rateSeries[S.rateSeries.length - 1];
    const xMax = last ? last[0] : Date.now();
    const xMin = xMax - CHART_WINDOW_MS;
    drawChart($('#chart-rate'), {
      xMin, xMax, gapMs: 5000, yFmt: fmtRate,
      series: [{ points: S.rateSeries, color: '--chart-a', fill: true }],
    });
    drawChart($('#chart-p99'), {
      xMin, xMax, gapMs: 5000, yFmt: fmtUs,
      series: [{ points: S.p99Series, color: '--chart-b', fill: true }],
    });
  }

  // ---------------------------------------------------------------- charts

  const charts = new Map(); // canvas -> last config, for redraws on resize / theme change

  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const e = Math.floor(Math.log10(raw));
    const f = raw / Math.pow(10, e);
    const nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return nf * Math.pow(10, e);
  }

  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800]
    .map((s) => s * 1000);

  function timeTicks(xMin, xMax, maxTicks) {
    const range = xMax - xMin;
    if (!(range > 0)) return { ticks: [], step: 1000 };
    let step = TIME_STEPS[TIME_STEPS.length - 1];
    for (const s of TIME_STEPS) { if (range / s <= maxTicks) { step = s; break; } }
    const off = new Date(xMin).getTimezoneOffset() * 60000; // utc - local
    const first = Math.ceil((xMin - off) / step) * step + off;
    const ticks = [];
    for (let t = first; t <= xMax && ticks.length < 100; t += step) ticks.push(t);
    return { ticks, step };
  }

  function timeLabel(t, step) {
    if (step >= 86400000) return new Date(t).toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' });
    if (step < 60000) return fmtClock(t);
    return fmtClock(t, false);
  }

  /**
   * Draws a line chart. cfg: {series: [{points: [[x, y]], color: '--css-var', fill}],
   * xMin, xMax, yFmt, gapMs (break the line across larger gaps), integer, emptyText}.
   */
  function drawChart(canvas, cfg) {
    if (!canvas) return;
    charts.set(canvas, cfg);
    const rect = canvas.getBoundingClientRect();
    const w = Math.floor(rect.width), ht = Math.floor(rect.height);
    if (w < 20 || ht < 20) return; // hidden
    const dpr = window.devicePixelRatio || 1;
    const pw = Math.round(w * dpr), ph = Math.round(ht * dpr);
    if (canvas.width !== pw) canvas.width = pw;
    if (canvas.height !== ph) canvas.height = ph;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, ht);

    const css = getComputedStyle(document.documentElement);
    const color = (name) => (css.getPropertyValue(name) || '').trim() || '#888';
    const font = getComputedStyle(document.body).fontFamily || 'sans-serif';
    ctx.font = '11px ' + font;
    ctx.lineJoin = 'round';

    const xMin = cfg.xMin, xMax = cfg.xMax > cfg.xMin ? cfg.xMax : cfg.xMin + 1;
    const series = arr(cfg.series).map((s) => ({
      color: color(s.color || '--chart-a'),
      fill: !!s.fill,
      points: arr(s.points).filter((p) => Array.isArray(p) && isNum(p[0]) && p[0] >= xMin && p[0] <= xMax)
        .sort((a, b) => a[0] - b[0]),
    }));
    let yMax = 0, any = false;
    for (const s of series) for (const p of s.points) if (isNum(p[1])) { any = true; if (p[1] > yMax) yMax = p[1]; }
    const yFmt = cfg.yFmt || ((v) => String(v));

    let step = niceStep((yMax || 1) / 4);
    if (cfg.integer) step = Math.max(1, Math.round(step));
    const top = Math.max(step, Math.ceil((yMax * 1.0001) / step) * step);
    const yTicks = [];
    for (let v = 0; v <= top + step / 2; v += step) yTicks.push(v);
    const yLabels = yTicks.map((v) => yFmt(v));
    const padL = Math.ceil(Math.max(...yLabels.map((l) => ctx.measureText(l).width))) + 12;
    const padR = 12, padT = 8, padB = 20;
    const plotW = Math.max(10, w - padL - padR), plotH = Math.max(10, ht - padT - padB);
    const X = (x) => padL + ((x - xMin) / (xMax - xMin)) * plotW;
    const Y = (y) => padT + plotH - (y / top) * plotH;

    // grid + y labels
    ctx.strokeStyle = color('--grid');
    ctx.fillStyle = color('--muted');
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    yTicks.forEach((v, i) => {
      const y = Math.round(Y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(padL, y); ctx.lineTo(padL + plotW, y); ctx.stroke();
      ctx.fillText(yLabels[i], padL - 6, y);
    });
    // x labels
    const { ticks, step: tstep } = timeTicks(xMin, xMax, Math.max(2, Math.floor(plotW / 80)));
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of ticks) {
      const x = Math.round(X(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, padT + plotH); ctx.lineTo(x, padT + plotH + 4); ctx.stroke();
      const label = timeLabel(t, tstep);
      const lw = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(Math.max(x, padL + lw), w - lw - 1), padT + plotH + 6);
    }

    if (!any) {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(cfg.emptyText || 'No data yet', padL + plotW / 2, padT + plotH / 2);
      return;
    }

    // series, split into runs at gaps and missing values
    for (const s of series) {
      const runs = [];
      let run = [];
      let prev = null;
      for (const p of s.points) {
        if (!isNum(p[1]) || (prev && cfg.gapMs && p[0] - prev[0] > cfg.gapMs)) {
          if (run.length) runs.push(run);
          run = [];
        }
        if (isNum(p[1])) run.push(p);
        prev = p;
      }
      if (run.length) runs.push(run);
      for (const r of runs) {
        if (s.fill && r.length > 1) {
          ctx.beginPath();
          ctx.moveTo(X(r[0][0]), Y(0));
          for (const p of r) ctx.lineTo(X(p[0]), Y(p[1]));
          ctx.lineTo(X(r[r.length - 1][0]), Y(0));
          ctx.closePath();
          ctx.globalAlpha = 0.1;
          ctx.fillStyle = s.color;
          ctx.fill();
          ctx.globalAlpha = 1;
        }
        ctx.strokeStyle = s.color;
        ctx.fillStyle = s.color;
        ctx.lineWidth = 1.6;
        if (r.length === 1) {
          ctx.beginPath(); ctx.arc(X(r[0][0]), Y(r[0][1]), 2.2, 0, Math.PI * 2); ctx.fill();
          continue;
        }
        ctx.beginPath();
        r.forEach((p, i) => (i ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
        ctx.stroke();
      }
    }
  }

  function redrawCharts() {
    for (const [canvas, cfg] of charts) if (canvas.offsetParent !== null) drawChart(canvas, cfg);
  }

  // ---------------------------------------------------------------- plugins

  async function loadPlugins() {
    const gen = ++S.pluginsGen;
    const data = await api('GET', '/api/plugins');
    if (gen !== S.pluginsGen) return; // a newer answer (or an action's) already landed
    S.plugins = arr(isObj(data) ? data.plugins : null).filter(isObj);
    renderPlugins();
    populateRunner();
  }

  function schedulePluginsRefetch() {
    clearTimeout(S.pluginsTimer);
    S.pluginsTimer = setTimeout(() => { loadPlugins().catch(() => {}); }, 50);
  }

  function renderPlugins() {
    const list = $('#plugins-list');
    const plugins = S.plugins || [];
    const old = new Map($$(':scope > [data-plugin]', list).map((c) => [c.getAttribute('data-plugin'), c]));
    const names = new Set();
    const cards = plugins.map((p) => {
      const name = str(p.name);
      names.add(name);
      const json = compactJson(p);
      const prev = old.get(name);
      if (prev && prev._json === json && !prev._stale) return prev;
      const card = pluginCard(p);
      card._json = json;
      if (prev) {
        carryOver(prev, card);
        const refocus = prev.contains(document.activeElement) && document.activeElement.hasAttribute('data-reason');
        prev.replaceWith(card);
        if (refocus) {
          const inp = $('input[data-reason]', card);
          inp.focus();
          try { inp.setSelectionRange(inp.value.length, inp.value.length); } catch (_) { /* not a text input */ }
        }
      }
      return card;
    });
    for (const [name, c] of old) if (!names.has(name)) c.remove();
    for (const e of $$(':scope > :not([data-plugin])', list)) e.remove();
    cards.forEach((c, i) => { if (list.children[i] !== c) list.insertBefore(c, list.children[i] || null); });
    if (!plugins.length) list.appendChild(h('p', { class: 'empty' }, 'No plugins are loaded.'));

    const n = { enabled: 0, paused: 0, disabled: 0 };
    for (const p of plugins) if (p.state in n) n[p.state]++;
    $('#plugins-summary').textContent = plugins.length
      ? plugins.length + ' loaded · ' + n.enabled + ' enabled · ' + n.paused + ' paused · ' + n.disabled + ' disabled'
      : '';
  }

  // Keep what the operator was doing in a card across a re-render.
  function carryOver(prev, card) {
    const oldReason = $('input[data-reason]', prev), newReason = $('input[data-reason]', card);
    if (oldReason && newReason && !prev._clearReason) newReason.value = oldReason.value;
    const open = new Set($$('details[data-tool]', prev).filter((d) => d.open).map((d) => d.getAttribute('data-tool')));
    for (const d of $$('details[data-tool]', card)) if (open.has(d.getAttribute('data-tool'))) d.open = true;
    const oldTools = $('details.tools', prev), newTools = $('details.tools', card);
    if (oldTools && newTools) newTools.open = oldTools.open;
  }

  function dl(rows) {
    const el = h('dl', { class: 'meta' });
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === '') continue;
      el.appendChild(h('dt', null, k));
      el.appendChild(h('dd', null, v));
    }
    return el;
  }

  const QUOTA_FMT = {
    fuel: fmtCompact, memory_bytes: fmtBytes, handles: fmtInt,
    timeout_ms: (v) => (isNum(v) ? fmtUs(v * 1000) : '—'),
    max_output_bytes: fmtBytes, kv_bytes: fmtBytes, blob_bytes: fmtBytes,
  };
  const QUOTA_LABEL = {
    fuel: 'fuel', memory_bytes: 'memory', handles: 'handles', timeout_ms: 'timeout',
    max_output_bytes: 'max output', kv_bytes: 'kv store', blob_bytes: 'blob store',
  };

  const ACTIONS = {
    enabled: ['pause', 'disable', 'reload'],
    paused: ['resume', 'disable', 'reload'],
    disabled: ['enable'],
  };
  const ACTION_LABEL = { enable: 'Enable', disable: 'Disable', pause: 'Pause', resume: 'Resume', reload: 'Reload' };
  const ACTION_BUSY = { enable: 'Enabling…', disable: 'Disabling…', pause: 'Pausing…', resume: 'Resuming…', reload: 'Reloading…' };

  function pluginCard(p) {
    const name = str(p.name);
    const state = str(p.state) || 'unknown';
    const br = isObj(p.breaker) ? p.breaker : {};
    const brState = str(br.state) || 'closed';

    const card = h('article', { class: 'card', 'data-plugin': name, 'data-state': state });
    card.appendChild(h('div', { class: 'card-head' },
      h('span', { class: 'name' }, name || '(unnamed)'),
      p.version ? h('span', { class: 'version' }, 'v' + str(p.version)) : null,
      h('span', { class: 'badge ' + (STATE_CLASS[state] || '') }, state),
      h('span', { class: 'badge ' + (BREAKER_CLASS[brState] || ''), title: 'circuit breaker' },
        'breaker ' + brState.replace('_', '-')),
      p.level ? h('span', { class: 'badge info', title: 'quota level' }, 'level ' + str(p.level)) : null));
    if (p.description) card.appendChild(h('p', { class: 'card-desc' }, str(p.description)));

    const brText = brState === 'closed' && !br.failures ? null
      : [brState.replace('_', '-'), isNum(br.failures) ? br.failures + ' failures' : null,
        isNum(br.retry_at_ms) ? 'retry at ' + fmtTime(br.retry_at_ms) : null, br.reason ? str(br.reason) : null]
        .filter(Boolean).join(' · ');
    const meta = dl([
      ['source', p.source ? h('span', { class: 'mono' }, str(p.source)) : null],
      ['trust', p.trust ? str(p.trust) : null],
      ['state reason', p.state_reason ? str(p.state_reason) : null],
      ['breaker', brText],
    ]);

    const q = isObj(p.quotas) ? p.quotas : null;
    const quotas = q
      ? dl(Object.keys(q).map((k) => [QUOTA_LABEL[k] || k,
        (QUOTA_FMT[k] || ((v) => (isNum(v) ? fmtInt(v) : compactJson(v))))(q[k])]))
      : h('p', { class: 'muted small' }, state === 'disabled' ? 'No quotas while disabled.' : 'No quotas.');

    const caps = isObj(p.capabilities) ? p.capabilities : {};
    const granted = arr(caps.granted), refused = arr(caps.refused);
    const capsEl = h('div', null,
      granted.length ? granted.map((c) => h('span', { class: 'chip', title: 'granted' }, str(c)))
        : h('span', { class: 'muted small' }, 'no capabilities granted'),
      refused.length ? h('div', null, refused.map((c) => h('span', { class: 'chip refused', title: 'refused' }, str(c)))) : null);

    card.appendChild(h('div', { class: 'card-grid' },
      h('div', null, h('h4', null, 'Details'), meta),
      h('div', null, h('h4', null, 'Quotas'), quotas),
      h('div', null, h('h4', null, 'Capabilities'), capsEl)));

    const tools = arr(p.tools).filter(isObj);
    if (tools.length) {
      const tdet = h('details', { class: 'tools' },
        h('summary', null, h('strong', null, 'Tools'), ' ', h('span', { class: 'muted' }, '(' + tools.length + ')')));
      for (const t of tools) tdet.appendChild(toolDetails(name, t, state));
      card.appendChild(tdet);
    } else {
      card.appendChild(h('p', { class: 'muted small' }, 'No tools' + (state === 'disabled' ? ' while disabled.' : '.')));
    }

    if (p.last_error) card.appendChild(h('div', { class: 'last-error' }, h('strong', null, 'Last error: '), str(p.last_error)));

    const reason = h('input', { type: 'text', 'data-reason': '', placeholder: 'Reason (optional)', 'aria-label': 'Reason for ' + name, maxlength: '500' });
    const status = h('span', { class: 'action-error', role: 'status' });
    const acts = h('div', { class: 'card-actions' }, reason);
    for (const a of ACTIONS[state] || ['enable', 'disable']) {
      acts.appendChild(h('button', {
        type: 'button', 'data-action': a, class: a === 'disable' ? 'danger' : null,
        onclick: () => pluginAction(card, name, a),
      }, ACTION_LABEL[a] || a));
    }
    acts.appendChild(status);
    card.appendChild(acts);
    return card;
  }

  function toolDetails(plugin, t, state) {
    const qn = qualify(plugin, t.name);
    const stats = [
      isNum(t.calls) ? fmtInt(t.calls) + ' calls' : null,
      isNum(t.errors) && t.errors ? fmtInt(t.errors) + ' errors' : null,
      isNum(t.p50_us) ? 'p50 ' + fmtUs(t.p50_us) : null,
      isNum(t.p99_us) ? 'p99 ' + fmtUs(t.p99_us) : null,
    ].filter(Boolean).join(' · ');
    return h('details', { class: 'tool', 'data-tool': qn },
      h('summary', null,
        h('span', { class: 'tool-name' }, qn),
        t.title ? h('span', null, str(t.title)) : null,
        h('span', { class: 'tool-stats' }, stats)),
      h('div', { class: 'tool-body' },
        t.description ? h('p', { class: 'help' }, str(t.description)) : null,
        state === 'enabled' ? h('p', null, h('a', {
          href: '#/runner',
          onclick: () => { S.runnerPreselect = qn; },
        }, 'Open in the tool runner')) : null,
        h('h4', null, 'Input schema'),
        h('pre', { class: 'schema' }, prettyJson(t.input_schema === undefined ? null : t.input_schema)),
        t.output_schema ? [h('h4', null, 'Output schema'), h('pre', { class: 'schema' }, prettyJson(t.output_schema))] : null));
  }

  async function pluginAction(card, name, action) {
    const reasonEl = $('input[data-reason]', card);
    const reason = reasonEl ? reasonEl.value.trim() : '';
    const buttons = $$('button[data-action]', card);
    const status = $('.action-error', card);
    buttons.forEach((b) => { b.disabled = true; });
    status.className = 'muted small';
    status.textContent = ACTION_BUSY[action] || '…';
    try {
      const r = await api('POST', '/api/plugins/' + encodeURIComponent(name) + '/' + action, reason ? { reason } : {});
      ++S.pluginsGen; // answers of reads started before this are stale now
      if (isObj(r) && isObj(r.plugin) && Array.isArray(S.plugins)) {
        const i = S.plugins.findIndex((p) => p.name === name);
        if (i >= 0) S.plugins[i] = r.plugin; else S.plugins.push(r.plugin);
      }
      card._clearReason = true;
      card._stale = true;
      renderPlugins();
      populateRunner();
      schedulePluginsRefetch();
    } catch (e) {
      if (e.status === 401) return;
      buttons.forEach((b) => { b.disabled = false; });
      status.className = 'action-error';
      status.textContent = (ACTION_LABEL[action] || action) + ' failed: ' + e.message;
    }
  }

  // ---------------------------------------------------------------- tool runner

  function runnerTools() {
    const out = [];
    for (const p of S.plugins || []) {
      if (p.state !== 'enabled') continue;
      for (const t of arr(p.tools)) if (isObj(t)) out.push({ plugin: str(p.name), qn: qualify(p.name, t.name), tool: t });
    }
    return out;
  }

  function populateRunner() {
    const sel = $('#runner-tool');
    const tools = runnerTools();
    const want = S.runnerPreselect || sel.value || S.runnerTool;
    const groups = new Map();
    for (const t of tools) {
      if (!groups.has(t.plugin)) groups.set(t.plugin, h('optgroup', { label: t.plugin }));
      groups.get(t.plugin).appendChild(h('option', { value: t.qn }, t.qn + (t.tool.title ? ' — ' + str(t.tool.title) : '')));
    }
    const sig = compactJson(tools.map((t) => [t.qn, t.tool.title]));
    if (sel._sig !== sig) {
      sel.replaceChildren(...groups.values());
      sel._sig = sig;
      if (!tools.length) sel.appendChild(h('option', { value: '', disabled: true, selected: true }, 'No tools available'));
    }
    if (want && tools.some((t) => t.qn === want)) sel.value = want;
    else if (tools.length && !tools.some((t) => t.qn === sel.value)) sel.value = tools[0].qn;
    S.runnerPreselect = null;
    $('#runner-run').disabled = !tools.length;
    syncRunnerForm();
  }

  function syncRunnerForm() {
    const sel = $('#runner-tool');
    const entry = runnerTools().find((t) => t.qn === sel.value);
    const schema = entry ? entry.tool.input_schema : null;
    const sj = compactJson(schema);
    if (entry && S.runnerTool === entry.qn && S.runnerSchemaJson === sj) return; // keep the operator's input
    S.runnerTool = entry ? entry.qn : null;
    S.runnerSchemaJson = sj;
    $('#runner-desc').textContent = entry ? str(entry.tool.description) : '';
    buildForm($('#runner-form'), entry ? schema : null, !!entry);
  }

  function schemaType(s) {
    let t = s.type;
    if (Array.isArray(t)) {
      const nn = t.filter((x) => x !== 'null');
      t = nn.length === 1 ? nn[0] : 'json';
    }
    if (Array.isArray(s.enum) && s.enum.length) return 'enum';
    if (t === 'string' || t === 'number' || t === 'integer' || t === 'boolean') return t;
    return 'json';
  }

  function buildForm(form, schema, haveTool) {
    form.replaceChildren();
    if (!haveTool) return;
    const sch = isObj(schema) ? schema : {};
    const props = isObj(sch.properties) ? sch.properties : {};
    const required = new Set(arr(sch.required).map(str));
    const keys = Object.keys(props);
    if (!keys.length) {
      if (sch.additionalProperties === false || sch.additionalProperties === undefined) {
        form.appendChild(h('p', { class: 'muted' }, 'This tool takes no arguments.'));
      } else {
        const ta = h('textarea', { 'data-raw': '', rows: '5', placeholder: '{ }', spellcheck: 'false' });
        form.appendChild(h('div', { class: 'field', 'data-kind': 'raw' },
          h('label', null, 'Arguments', h('span', { class: 'type' }, 'JSON object')), ta,
          h('div', { class: 'field-error' })));
      }
      return;
    }
    keys.forEach((key, i) => form.appendChild(schemaField(key, isObj(props[key]) ? props[key] : {}, required.has(key), i)));
  }

  function schemaField(key, s, req, idx) {
    const kind = schemaType(s);
    const id = 'rf-' + idx;
    const help = s.description || s.title;
    const hasDefault = Object.prototype.hasOwnProperty.call(s, 'default');
    let input;
    let typeText = kind === 'json' ? (str(Array.isArray(s.type) ? s.type.join(' | ') : s.type) || 'JSON') : kind;
    if (kind === 'enum') {
      typeText = 'one of';
      input = h('select', { id, name: key });
      if (!req) input.appendChild(h('option', { value: '' }, '—'));
      for (const v of s.enum) input.appendChild(h('option', { value: compactJson(v) }, typeof v === 'string' ? v : compactJson(v)));
      if (hasDefault) input.value = compactJson(s.default);
      else if (!req) input.value = '';
    } else if (kind === 'string') {
      input = h('input', { id, name: key, type: 'text', spellcheck: 'false', value: hasDefault && s.default !== null ? str(s.default) : '' });
      if (isNum(s.maxLength)) input.maxLength = s.maxLength;
    } else if (kind === 'number' || kind === 'integer') {
      input = h('input', {
        id, name: key, type: 'number', step: kind === 'integer' ? '1' : 'any',
        min: isNum(s.minimum) ? String(s.minimum) : null, max: isNum(s.maximum) ? String(s.maximum) : null,
        value: hasDefault && isNum(s.default) ? String(s.default) : '',
      });
    } else if (kind === 'boolean') {
      input = h('input', { id, name: key, type: 'checkbox', checked: hasDefault ? s.default === true : false });
      input.addEventListener('change', () => { input.dataset.dirty = 'true'; });
    } else {
      input = h('textarea', {
        id, name: key, rows: '4', spellcheck: 'false',
        placeholder: /array/.test(typeText) ? '[ ]' : /object/.test(typeText) ? '{ }' : 'JSON value',
        value: hasDefault ? prettyJson(s.default) : '',
      });
    }
    const field = h('div', {
      class: 'field' + (kind === 'boolean' ? ' checkbox' : ''),
      'data-field': key, 'data-kind': kind, 'data-required': req ? 'true' : 'false',
      'data-has-default': hasDefault ? 'true' : 'false',
    });
    const typeEl = h('span', { class: 'type' }, typeText);
    if (kind === 'boolean') {
      field.appendChild(h('label', { for: id }, input, key, req ? h('span', { class: 'req', title: 'required' }, '*') : null, typeEl));
    } else {
      field.appendChild(h('label', { for: id }, key, req ? h('span', { class: 'req', title: 'required' }, '*') : null, typeEl));
      field.appendChild(input);
    }
    if (help) field.appendChild(h('p', { class: 'help' }, str(help)));
    field.appendChild(h('div', { class: 'field-error' }));
    return field;
  }

  function collectArgs(form) {
    const args = {};
    let ok = true;
    const fail = (field, msg) => { ok = false; $('.field-error', field).textContent = msg; };
    for (const e of $$('.field-error', form)) e.textContent = '';
    const raw = $('[data-raw]', form);
    if (raw) {
      const t = raw.value.trim();
      if (!t) return { ok: true, args: {} };
      try {
        const v = JSON.parse(t);
        if (!isObj(v)) throw new Error('the arguments must be a JSON object');
        return { ok: true, args: v };
      } catch (e) {
        fail(raw.closest('.field'), 'Not valid JSON: ' + e.message);
        return { ok: false };
      }
    }
    for (const field of $$('[data-field]', form)) {
      const name = field.getAttribute('data-field');
      const kind = field.getAttribute('data-kind');
      const req = field.getAttribute('data-required') === 'true';
      const el = field.querySelector('[name]');
      if (!el) continue;
      if (kind === 'string') {
        if (el.value !== '' || req) args[name] = el.value;
      } else if (kind === 'number' || kind === 'integer') {
        const t = el.value.trim();
        if (t === '') { if (req) fail(field, 'Required.'); continue; }
        const n = Number(t);
        if (!Number.isFinite(n)) fail(field, 'Not a number.');
        else if (kind === 'integer' && !Number.isInteger(n)) fail(field, 'Must be a whole number.');
        else args[name] = n;
      } else if (kind === 'boolean') {
        if (req || field.getAttribute('data-has-default') === 'true' || el.dataset.dirty) args[name] = el.checked;
      } else if (kind === 'enum') {
        if (el.value === '') { if (req) fail(field, 'Required.'); continue; }
        try { args[name] = JSON.parse(el.value); } catch (_) { args[name] = el.value; }
      } else {
        const t = el.value.trim();
        if (t === '') { if (req) fail(field, 'Required.'); continue; }
        try { args[name] = JSON.parse(t); } catch (e) { fail(field, 'Not valid JSON: ' + e.message); }
      }
    }
    return { ok, args };
  }

  async function runTool() {
    const tool = $('#runner-tool').value;
    const status = $('#runner-status');
    if (!tool) return;
    const { ok, args } = collectArgs($('#runner-form'));
    if (!ok) { status.textContent = 'Fix the marked fields.'; return; }
    const btn = $('#runner-run');
    btn.disabled = true;
    status.textContent = 'Running ' + tool + '…';
    const t0 = performance.now();
    try {
      const r = await api('POST', '/api/call', { tool, arguments: args });
      renderResult(isObj(r) ? r.result : null);
      renderUsage(isObj(r) ? r.usage : null);
      status.textContent = 'Done in ' + Math.round(performance.now() - t0) + ' ms (round trip).';
    } catch (e) {
      if (e.status === 401) return;
      const res = $('#runner-result');
      res.setAttribute('data-error', 'true');
      res.replaceChildren(h('pre', { class: 'text' }, (e.status ? 'HTTP ' + e.status + ': ' : '') + e.message));
      $('#runner-usage').replaceChildren();
      status.textContent = 'Failed.';
    } finally {
      btn.disabled = false;
    }
  }

  function renderResult(result) {
    const res = $('#runner-result');
    const r = isObj(result) ? result : {};
    res.setAttribute('data-error', r.isError === true ? 'true' : 'false');
    const out = [];
    for (const b of arr(r.content)) {
      if (!isObj(b)) { out.push(h('pre', { class: 'json block' }, prettyJson(b))); continue; }
      if (b.type === 'text') {
        out.push(h('pre', { class: 'text block' }, str(b.text)));
      } else if (b.type === 'image' && typeof b.data === 'string' && /^image\/[A-Za-z0-9.+-]+$/.test(str(b.mimeType))
        && /^[A-Za-z0-9+/=\s]*$/.test(b.data)) {
        out.push(h('div', { class: 'block' }, h('img', { src: 'data:' + b.mimeType + ';base64,' + b.data.replace(/\s/g, ''), alt: 'image result' })));
      } else if (b.type === 'resource' && isObj(b.resource)) {
        const rs = b.resource;
        out.push(h('div', { class: 'block' },
          h('div', { class: 'muted small' }, 'resource ', h('span', { class: 'mono' }, str(rs.uri)), rs.mimeType ? ' · ' + str(rs.mimeType) : ''),
          typeof rs.text === 'string' ? h('pre', { class: 'text' }, rs.text) : h('pre', { class: 'json' }, prettyJson(rs))));
      } else if (b.type === 'resource_link') {
        out.push(h('div', { class: 'block' }, 'resource link ', h('span', { class: 'mono' }, str(b.uri)), b.name ? ' (' + str(b.name) + ')' : ''));
      } else {
        out.push(h('pre', { class: 'json block' }, prettyJson(b)));
      }
    }
    if (r.structuredContent !== undefined && r.structuredContent !== null) {
      out.push(h('div', { class: 'muted small' }, 'structured content'));
      out.push(h('pre', { class: 'json block' }, prettyJson(r.structuredContent)));
    }
    if (!out.length) out.push(h('p', { class: 'empty' }, isObj(result) ? 'The result is empty.' : 'No result.'));
    res.replaceChildren(...out);
  }

  function renderUsage(u) {
    const el = $('#runner-usage');
    if (!isObj(u)) { el.replaceChildren(h('p', { class: 'muted' }, 'No usage record.')); return; }
    const rows = [
      ['outcome', outcomeBadge(u.outcome)],
      ['duration', fmtUs(u.micros)],
      ['fuel', isNum(u.fuel) ? fmtInt(u.fuel) : '—'],
      ['peak memory', fmtBytes(u.peak_memory_bytes)],
      ['bytes in', isNum(u.bytes_in) ? fmtInt(u.bytes_in) + ' B' : '—'],
      ['bytes out', isNum(u.bytes_out) ? fmtInt(u.bytes_out) + ' B' : '—'],
    ];
    const known = new Set(['outcome', 'micros', 'fuel', 'peak_memory_bytes', 'bytes_in', 'bytes_out']);
    for (const k of Object.keys(u)) if (!known.has(k)) rows.push([k, cellValue(k, u[k])]);
    el.replaceChildren(kvTable(rows));
  }

  // ---------------------------------------------------------------- generic renderers

  function kvTable(rows) {
    return h('table', { class: 'data kv' }, h('tbody', null,
      rows.map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v)))));
  }

  function cellValue(key, v) {
    if (v === null || v === undefined) return h('span', { class: 'muted' }, '—');
    if (typeof v === 'number' && isNum(v)) {
      if (/_bytes$/.test(key)) return h('span', { title: fmtInt(v) + ' B' }, fmtBytes(v));
      if (/_us$/.test(key)) return fmtUs(v);
      if (/_ms$/.test(key) && v > 1e12) return h('span', { title: fmtFullTime(v) }, fmtTime(v));
      return Number.isInteger(v) ? fmtInt(v) : String(v);
    }
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (typeof v === 'string') return v;
    return h('code', { class: 'json' }, compactJson(v));
  }

  const isPlainObjArray = (v) => Array.isArray(v) && v.length > 0 && v.every(isObj);

  function objTable(rows, firstCol) {
    const cols = [];
    const seen = new Set();
    for (const r of rows) for (const k of Object.keys(r.value)) if (!seen.has(k)) { seen.add(k); cols.push(k); }
    return h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
      h('thead', null, h('tr', null, firstCol ? h('th', null, firstCol) : null, cols.map((c) => h('th', null, c)))),
      h('tbody', null, rows.map((r) => h('tr', null,
        firstCol ? h('th', null, r.key) : null,
        cols.map((c) => {
          const v = r.value[c];
          return h('td', { class: v !== null && typeof v === 'object' ? 'json' : null }, cellValue(c, v));
        }))))));
  }

  /** Renders any JSON value: arrays of objects as tables, objects as key/value rows. */
  function renderAny(v, depth) {
    depth = depth || 0;
    if (v === null || v === undefined) return h('p', { class: 'empty' }, 'Nothing here.');
    if (isObj(v) && typeof v.error === 'string' && Object.keys(v).length === 1) {
      return h('p', { class: 'panel-error' }, v.error);
    }
    if (Array.isArray(v)) {
      if (!v.length) return h('p', { class: 'empty' }, 'None.');
      if (v.every(isObj)) return objTable(v.map((o, i) => ({ key: String(i), value: o })), null);
      if (v.every((x) => x === null || typeof x !== 'object')) {
        return h('ul', { class: 'plain' }, v.map((x) => h('li', null, cellValue('', x))));
      }
      return h('div', { class: 'table-wrap' }, h('table', { class: 'data' }, h('tbody', null,
        v.map((x) => h('tr', null, h('td', { class: 'json' }, compactJson(x)))))));
    }
    if (isObj(v)) {
      const keys = Object.keys(v);
      if (!keys.length) return h('p', { class: 'empty' }, 'None.');
      if (depth < 2 && keys.length > 1 && keys.every((k) => isObj(v[k]) && Object.values(v[k]).every((x) => x === null || typeof x !== 'object'))) {
        return objTable(keys.map((k) => ({ key: k, value: v[k] })), 'name');
      }
      return kvTable(keys.map((k) => {
        const x = v[k];
        if (depth < 2 && (isPlainObjArray(x) || (isObj(x) && Object.keys(x).length))) return [k, renderAny(x, depth + 1)];
        return [k, cellValue(k, x)];
      }));
    }
    return h('p', null, cellValue('', v));
  }

  // ---------------------------------------------------------------- other views

  // True when `data` equals what the view last rendered under `key` (then skip the render).
  function unchanged(key, data) {
    const j = compactJson(data);
    if (S.last[key] === j) return true;
    S.last[key] = j;
    return false;
  }

  async function loadHistory(range) {
    range = range || S.range;
    const d = await api('GET', '/api/history?range=' + encodeURIComponent(range));
    if (range !== S.range) return;
    const data = isObj(d) ? d : {};
    if (unchanged('history:' + range, data)) return;
    const pts = arr(data.points).filter(isObj);
    const span = { hour: 3600e3, day: 86400e3, week: 7 * 86400e3 }[range] || 3600e3;
    const lastT = pts.length && isNum(pts[pts.length - 1].t_ms) ? pts[pts.length - 1].t_ms : 0;
    const xMax = Math.max(Date.now(), lastT);
    const xMin = xMax - span;
    const series = (k) => pts.map((p) => [p.t_ms, isNum(p[k]) ? p[k] : null]);
    const totals = pts.reduce((a, p) => ({
      calls: a.calls + (isNum(p.calls) ? p.calls : 0), errors: a.errors + (isNum(p.errors) ? p.errors : 0),
      quota: a.quota + (isNum(p.quota_hits) ? p.quota_hits : 0), fuel: a.fuel + (isNum(p.fuel) ? p.fuel : 0),
    }), { calls: 0, errors: 0, quota: 0, fuel: 0 });
    $('#history-note').textContent = pts.length
      ? 'Step ' + fmtSpan(data.step_s) + ' · ' + fmtInt(totals.calls) + ' calls · '
        + fmtInt(totals.errors) + ' errors · ' + fmtInt(totals.quota) + ' quota hits · ' + fmtCompact(totals.fuel) + ' fuel'
      : 'No history recorded for this range yet.';
    const empty = 'No calls in this range';
    drawChart($('#chart-h-calls'), {
      xMin, xMax, integer: true, yFmt: fmtCompact, emptyText: empty,
      series: [{ points: series('calls'), color: '--chart-a', fill: true }, { points: series('errors'), color: '--chart-err' }],
    });
    drawChart($('#chart-h-p99'), {
      xMin, xMax, yFmt: fmtUs, emptyText: empty,
      series: [{ points: series('p99_us'), color: '--chart-b', fill: true }, { points: series('p50_us'), color: '--chart-c' }],
    });
    const top = arr(data.top_tools).filter(isObj);
    $('#history-top').replaceChildren(top.length
      ? h('table', { class: 'data' },
        h('thead', null, h('tr', null, h('th', null, 'Tool'), h('th', { class: 'num' }, 'Calls'),
          h('th', { class: 'num' }, 'Errors'), h('th', { class: 'num' }, 'Error ratio'))),
        h('tbody', null, top.map((t) => h('tr', null,
          h('td', { class: 'tool-name' }, str(t.tool)),
          h('td', { class: 'num' }, fmtInt(t.calls)),
          h('td', { class: 'num' }, fmtInt(t.errors)),
          h('td', { class: 'num' }, isNum(t.calls) && t.calls > 0 && isNum(t.errors) ? fmtPct(t.errors / t.calls) : '—')))))
      : h('p', { class: 'empty' }, 'No calls in this range.'));
  }

  async function loadMesh() {
    const d = await api('GET', '/api/mesh');
    const m = isObj(d) ? d : {};
    if (unchanged('mesh', m)) return;
    const body = $('#mesh-body');
    if (typeof m.error === 'string') { body.replaceChildren(h('p', { class: 'panel-error' }, m.error)); return; }
    if (m.enabled !== true) {
      body.replaceChildren(h('div', { class: 'panel' }, h('p', { class: 'empty' }, 'The mesh is not enabled on this host.')));
      return;
    }
    const addrs = arr(m.addresses);
    const transfers = arr(m.transfers).filter(isObj);
    body.replaceChildren(
      h('div', { class: 'panel' }, h('h3', null, 'This node'), kvTable([
        ['peer id', h('span', { class: 'mono' }, str(m.peer_id) || '—')],
        ['addresses', addrs.length ? h('ul', { class: 'plain' }, addrs.map((a) => h('li', { class: 'mono' }, str(a))))
          : h('span', { class: 'muted' }, 'none')],
      ])),
      h('div', { class: 'panel' }, h('h3', null, 'Peers ', h('span', { class: 'hint' }, String(arr(m.peers).length))),
        arr(m.peers).length ? renderAny(m.peers, 1) : h('p', { class: 'empty' }, 'No peers connected.')),
      h('div', { class: 'panel' }, h('h3', null, 'Transfers'), transfers.length
        ? h('table', { class: 'data' },
          h('thead', null, h('tr', null, h('th', null, 'What'), h('th', null, 'Progress'), h('th', { class: 'num' }, 'Done'), h('th', null, 'ID'))),
          h('tbody', null, transfers.map((t) => {
            const done = isNum(t.done_bytes) ? t.done_bytes : 0;
            const total = isNum(t.total_bytes) && t.total_bytes > 0 ? t.total_bytes : null;
            const prog = h('progress', total ? { max: String(total), value: String(Math.min(done, total)) } : {});
            return h('tr', null,
              h('td', null, str(t.what) || '—'),
              h('td', null, prog),
              h('td', { class: 'num' }, fmtBytes(done) + (total ? ' / ' + fmtBytes(total) + ' (' + Math.round((done / total) * 100) + ' %)' : '')),
              h('td', { class: 'mono small' }, str(t.id)));
          })))
        : h('p', { class: 'empty' }, 'No transfers in progress.')));
  }

  async function loadGeneric(path, key, targets) {
    const d = await api('GET', path);
    const data = isObj(d) ? d : {};
    if (unchanged(key, data)) return;
    if (typeof data.error === 'string' && Object.keys(data).length === 1) {
      for (const [, id] of targets) $('#' + id).replaceChildren(h('p', { class: 'panel-error' }, data.error));
      return;
    }
    for (const [field, id] of targets) $('#' + id).replaceChildren(renderAny(data[field]));
  }

  async function loadConfig() {
    const d = await api('GET', '/api/config');
    const c = isObj(d) ? d : {};
    if (unchanged('config', c)) return;
    const panels = [];
    panels.push(h('div', { class: 'panel' }, h('h3', null, 'Paths'), kvTable([
      ['data dir', h('span', { class: 'mono' }, str(c.data_dir) || '—')],
      ['plugins dir', h('span', { class: 'mono' }, str(c.plugins_dir) || '—')],
    ])));
    if (isObj(c.levels)) {
      const keys = Object.keys(c.levels);
      panels.push(h('div', { class: 'panel' }, h('h3', null, 'Quota levels'), keys.length
        ? objTable(keys.map((k) => ({ key: k, value: isObj(c.levels[k]) ? c.levels[k] : { value: c.levels[k] } })), 'level')
        : h('p', { class: 'empty' }, 'None.')));
    }
    if (c.http !== undefined) panels.push(h('div', { class: 'panel' }, h('h3', null, 'HTTP'), renderAny(c.http, 1)));
    if (c.alert_rules !== undefined) panels.push(h('div', { class: 'panel' }, h('h3', null, 'Alert rules'), renderAny(c.alert_rules, 1)));
    const rest = Object.keys(c).filter((k) => !['data_dir', 'plugins_dir', 'levels', 'http', 'alert_rules'].includes(k));
    if (rest.length) {
      const o = {};
      for (const k of rest) o[k] = c[k];
      panels.push(h('div', { class: 'panel' }, h('h3', null, 'Other'), renderAny(o, 1)));
    }
    $('#config-body').replaceChildren(...panels);
  }

  // Events
  async function loadEvents() {
    const d = await api('GET', '/api/events?limit=200');
    const evs = arr(isObj(d) ? d.events : null).filter(isObj);
    const seen = new Set(evs.map((e) => e.seq));
    // keep live ones that arrived after the snapshot was taken
    const extra = S.events.filter((e) => !seen.has(e.seq));
    S.events = extra.concat(evs).sort((a, b) => (b.seq || 0) - (a.seq || 0)).slice(0, MAX_EVENT_ROWS);
    renderEvents();
  }

  function onLifecycle(e) {
    if (!isObj(e)) return;
    if (S.events.some((x) => x.seq === e.seq)) return;
    S.events.unshift(e);
    S.events.sort((a, b) => (b.seq || 0) - (a.seq || 0));
    if (S.events.length > MAX_EVENT_ROWS) S.events.length = MAX_EVENT_ROWS;
    renderEvents();
  }

  function renderEvents() {
    const tbody = $('#events-table tbody');
    tbody.replaceChildren(...S.events.map((e) => {
      const kind = str(e.kind) || 'unknown';
      return h('tr', { 'data-seq': str(e.seq) },
        h('td', { class: 'time', title: fmtFullTime(e.time_ms) }, fmtTime(e.time_ms)),
        h('td', null, h('strong', null, str(e.plugin) || '—')),
        h('td', null, h('span', { class: 'badge ' + (KIND_CLASS[kind] || '') }, kind.replace(/_/g, ' '))),
        h('td', null, e.reason ? str(e.reason) : h('span', { class: 'muted' }, '—')),
        h('td', { class: 'num muted' }, str(e.seq)));
    }));
    $('#events-empty').hidden = S.events.length > 0;
  }

  // Alerts
  async function loadAlerts() {
    const d = await api('GET', '/api/alerts');
    S.alerts = arr(isObj(d) ? d.alerts : null).filter(isObj);
    S.rules = arr(isObj(d) ? d.rules : null).filter(isObj);
    renderAlerts();
  }

  function onAlert(a) {
    if (!isObj(a)) return;
    if (Array.isArray(S.alerts)) {
      const i = S.alerts.findIndex((x) => x.id === a.id);
      if (i >= 0) S.alerts[i] = a; else S.alerts.unshift(a);
      renderAlerts();
    }
    if (S.overview) {
      const open = arr(S.overview.open_alerts).filter((x) => isObj(x) && x.id !== a.id);
      if (!a.acknowledged) open.unshift(a);
      S.overview.open_alerts = open;
      renderTiles(S.overview);
      renderOpenAlerts();
    }
  }

  function renderAlerts() {
    const alerts = (S.alerts || []).slice().sort((a, b) =>
      (a.acknowledged === b.acknowledged ? 0 : a.acknowledged ? 1 : -1) || ((b.time_ms || 0) - (a.time_ms || 0)));
    $('#alerts-body').replaceChildren(alerts.length
      ? h('table', { class: 'data' },
        h('thead', null, h('tr', null, h('th', null, 'Time'), h('th', null, 'Rule'), h('th', null, 'Message'), h('th', null, 'Status'), h('th', null, ''))),
        h('tbody', null, alerts.map((a) => h('tr', { 'data-alert': str(a.id) },
          h('td', { class: 'time', title: fmtFullTime(a.time_ms) }, fmtTime(a.time_ms)),
          h('td', null, str(a.rule)),
          h('td', null, str(a.message)),
          h('td', null, a.acknowledged
            ? h('span', { class: 'badge' }, 'acknowledged' + (a.acknowledged_by ? ' by ' + str(a.acknowledged_by) : ''))
            : h('span', { class: 'badge bad' }, 'open')),
          h('td', null, a.acknowledged ? null : ackButton(a))))))
      : h('p', { class: 'empty' }, 'No alerts.'));
    const rules = S.rules || [];
    $('#rules-body').replaceChildren(rules.length
      ? h('table', { class: 'data' },
        h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Kind'), h('th', { class: 'num' }, 'Threshold'), h('th', null, 'Plugin'))),
        h('tbody', null, rules.map((r) => h('tr', null,
          h('td', null, str(r.name)),
          h('td', null, str(r.kind)),
          h('td', { class: 'num' }, isNum(r.threshold) ? String(r.threshold) : '—'),
          h('td', null, r.plugin ? str(r.plugin) : h('span', { class: 'muted' }, 'any'))))))
      : h('p', { class: 'empty' }, 'No alert rules configured.'));
  }

  // ---------------------------------------------------------------- routing

  const LOADERS = {
    overview: loadOverview,
    plugins: loadPlugins,
    runner: loadPlugins,
    history: () => loadHistory(S.range),
    mesh: loadMesh,
    permissions: () => loadGeneric('/api/permissions', 'permissions', [['grants', 'perm-grants'], ['audit', 'perm-audit']]),
    budgets: () => loadGeneric('/api/budgets', 'budgets', [['budgets', 'budgets-body']]),
    discovery: () => loadGeneric('/api/discovery', 'discovery', [['agents', 'discovery-body']]),
    events: loadEvents,
    alerts: loadAlerts,
    config: loadConfig,
  };
  // Views not kept current by the live stream are re-read this often (ms) while shown.
  const REFRESH = { plugins: 10000, history: 60000, mesh: 3000, permissions: 15000, budgets: 15000, discovery: 15000, alerts: 30000 };

  function section(v) { return $('section[data-view="' + v + '"]'); }

  function viewStatus(sec) {
    let el = $(':scope > .view-status', sec);
    if (!el) {
      el = h('p', { class: 'view-status' });
      const h2 = $(':scope > h2', sec);
      if (h2) h2.after(el); else sec.prepend(el);
    }
    return el;
  }

  async function loadView(v, quiet) {
    const sec = section(v);
    const fn = LOADERS[v];
    if (!sec || !fn) return;
    const first = !S.loadedAt[v];
    sec.setAttribute('data-loading', 'true');
    const st = viewStatus(sec);
    if (first && !quiet) { st.className = 'view-status muted'; st.textContent = 'Loading…'; st.hidden = false; }
    try {
      await fn();
      S.loadedAt[v] = Date.now();
      st.hidden = true;
      st.textContent = '';
      sec.removeAttribute('data-error');
    } catch (e) {
      if (e && e.status === 401) return;
      S.loadedAt[v] = S.loadedAt[v] || Date.now();
      st.className = 'view-status panel-error';
      st.textContent = 'Could not load this view: ' + (e && e.message ? e.message : String(e));
      st.hidden = false;
      sec.setAttribute('data-error', 'true');
    } finally {
      sec.removeAttribute('data-loading');
      sec.setAttribute('data-loaded', 'true');
    }
  }

  function route() {
    if (S.csrf === null) return;
    const m = /^#\/([a-z]+)/.exec(location.hash || '');
    let v = m ? m[1] : 'overview';
    if (!VIEWS.includes(v)) v = 'overview';
    if (!m || m[1] !== v) history.replaceState(null, '', '#/' + v);
    S.view = v;
    for (const sec of $$('section[data-view]')) sec.hidden = sec.getAttribute('data-view') !== v;
    for (const a of $$('.sidenav a[data-view]')) {
      const on = a.getAttribute('data-view') === v;
      a.classList.toggle('active', on);
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const label = $('.sidenav a[data-view="' + v + '"]');
    document.title = 'toolmesh · ' + (label ? label.firstChild.textContent.trim() : v);
    if (v === 'runner' && S.plugins) populateRunner();
    loadView(v, false).then(() => { if (v === 'overview') drawOverviewCharts(); });
    if (v === 'overview') drawOverviewCharts();
    else redrawCharts();
  }

  function tick() {
    const v = S.view;
    if (S.csrf === null || !v || document.hidden) return;
    const every = REFRESH[v];
    const sec = section(v);
    if (every && S.loadedAt[v] && Date.now() - S.loadedAt[v] >= every && sec && !sec.hasAttribute('data-loading')) {
      loadView(v, true);
    }
  }

  // ---------------------------------------------------------------- start

  function init() {
    $('#login-form').addEventListener('submit', onLoginSubmit);
    $('#logout').addEventListener('click', logout);
    $('#runner-tool').addEventListener('change', () => { S.runnerTool = null; syncRunnerForm(); });
    $('#runner-run').addEventListener('click', runTool);
    $('#runner-form').addEventListener('submit', (ev) => { ev.preventDefault(); runTool(); });
    $('#runner-form').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && ev.target.tagName === 'INPUT') { ev.preventDefault(); runTool(); }
    });
    for (const b of $$('[data-range]')) {
      b.addEventListener('click', () => {
        S.range = b.getAttribute('data-range');
        for (const x of $$('[data-range]')) x.classList.toggle('on', x === b);
        loadView('history', true);
      });
    }
    window.addEventListener('hashchange', route);
    let resizeTimer = null;
    const onResize = () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(redrawCharts, 100); };
    if (typeof ResizeObserver === 'function') {
      const ro = new ResizeObserver(onResize);
      for (const c of $$('canvas.chart')) ro.observe(c);
    } else {
      window.addEventListener('resize', onResize);
    }
    const mq = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)');
    if (mq && mq.addEventListener) mq.addEventListener('change', redrawCharts);
    setInterval(tick, 1000);
    boot();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
