// The replug fleet page (issue 19). No framework and no chart library: a table and two small SVG charts
// are a few hundred lines, and every dependency here would be shipped to every user and audited by no one.
// Text from agents goes in with textContent only (agents are strangers: no HTML injection).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { snap: null, filter: '', sort: 'state', open: null };
  const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#bf8700', '#57606a'];

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function ago(ms) {
    if (ms < 1000) return 'now';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 86400) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }

  function dur(ms) {
    if (ms === null || ms === undefined) return '';
    if (ms < 1000) return Math.round(ms) + 'ms';
    if (ms < 10000) return (ms / 1000).toFixed(1) + 's';
    return Math.round(ms / 1000) + 's';
  }

  // The terminal's filter: every whitespace-separated word must occur in the row's haystack.
  function matches(row) {
    const terms = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
    return terms.every((t) => row.haystack.includes(t));
  }

  const RANK = { offline: 0, unknown: 1, online: 3 };
  function attention(r) {
    if (r.liveness !== 'online') return RANK[r.liveness];
    if (r.stale) return 2;
    if (r.targets.some((t) => t.state !== 'up')) return 2.5;
    return 3;
  }
  function sorted(rows) {
    const by = {
      agent: (a, b) => (a.agent < b.agent ? -1 : a.agent > b.agent ? 1 : 0),
      state: (a, b) => attention(a) - attention(b) || by.agent(a, b),
      last: (a, b) => (b.lastEvent ? b.lastEvent.ts : -1) - (a.lastEvent ? a.lastEvent.ts : -1) || by.agent(a, b),
      p95: (a, b) => (b.p95Ms ?? -1) - (a.p95Ms ?? -1) || by.agent(a, b),
    };
    return rows.slice().sort(by[state.sort]);
  }

  function renderFleet(snap) {
    const body = $('fleet').tBodies[0];
    const rows = sorted(snap.rows.filter(matches));
    body.replaceChildren();
    for (const r of rows) {
      const t = r.targets[0];
      const tr = el('tr');
      tr.dataset.agent = r.agent;
      const status = r.liveness + (r.stale ? ' STALE' : '');
      const down = t ? (t.downtime.downSince !== undefined ? 'down ' + dur(snap.now - t.downtime.downSince) : dur(t.downtime.lastMs)) : '';
      const cells = [
        [r.agent, r.liveness],
        [status, r.stale ? 'stale' : r.liveness],
        [r.runtime],
        [t ? t.key + (r.targets.length > 1 ? ' +' + (r.targets.length - 1) : '') : ''],
        [t ? (t.current ? '' : 'last: ') + t.state : '', t && t.current && t.state !== 'up' ? 'offline' : ''],
        [down],
        [t ? t.reconnects : ''],
        [dur(r.p95Ms)],
        [r.lastEvent ? ago(snap.now - r.lastEvent.ts) + ': ' + r.lastEvent.summary : '', 'dim'],
      ];
      for (const [text, cls] of cells) tr.append(el('td', text, cls));
      tr.addEventListener('click', () => {
        state.open = r.id;
        renderDetail(snap);
      });
      body.append(tr);
    }
    $('count').textContent = '(' + rows.length + ' shown of ' + snap.total + ')';
  }

  function renderCompare(snap) {
    const c = snap.compare;
    const table = $('compare');
    table.replaceChildren();
    const head = el('tr');
    head.append(el('th', 'target'));
    for (const rt of c.runtimes) head.append(el('th', rt));
    table.append(head);
    for (const t of c.targets) {
      const tr = el('tr');
      tr.append(el('td', t.target));
      for (const rt of c.runtimes) {
        const f = t.byRuntime[rt];
        const text = f ? f.agents + ' agents · ' + f.ok + '/' + f.count + ' ok · p50/p95 ' + (dur(f.p50Ms) || '-') + '/' + (dur(f.p95Ms) || '-') : '—';
        tr.append(el('td', text, f && f.failed > 0 ? 'offline' : ''));
      }
      table.append(tr);
    }
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Points over time (x) by value (y), one colour per series, with a legend; log-free and honest.
  function chart(node, points, seriesOf, label) {
    node.replaceChildren();
    if (points.length === 0) {
      node.append(svg('text', { x: 10, y: 80 }, 'nothing seen yet'));
      return;
    }
    const t0 = Math.min(...points.map((p) => p.ts));
    const t1 = Math.max(...points.map((p) => p.ts), t0 + 1);
    const max = Math.max(...points.map((p) => p.ms), 1);
    const series = [...new Set(points.map(seriesOf))].sort();
    node.append(svg('text', { x: 2, y: 10 }, dur(max)), svg('text', { x: 2, y: 156 }, '0'));
    for (const p of points) {
      const i = series.indexOf(seriesOf(p));
      const x = 30 + ((p.ts - t0) / (t1 - t0)) * 360;
      const y = 150 - (p.ms / max) * 138;
      const dot = svg('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 2.5, fill: COLORS[i % COLORS.length] });
      dot.append(svg('title', {}, label(p)));
      node.append(dot);
    }
    series.forEach((s, i) => node.append(svg('text', { x: 300, y: 12 + i * 11, fill: COLORS[i % COLORS.length] }, s)));
  }

  // The open agent's detail is fetched on its own (the snapshot stays small with thousands of agents).
  let detailAsked = 0;
  function renderDetail(snap) {
    const row = snap.rows.find((r) => r.id === state.open);
    $('detail').hidden = !row;
    if (!row) return;
    $('detail-title').textContent = row.agent + ' on ' + row.broker;
    const asked = ++detailAsked;
    fetch('api/agent?id=' + encodeURIComponent(row.id))
      .then((r) => (r.ok ? r.json() : null))
      .then((d) => {
        if (d && asked === detailAsked && state.open === d.id) $('detail-body').textContent = d.lines.join('\n');
      })
      .catch(() => {});
  }

  function render() {
    const snap = state.snap;
    if (!snap) return;
    const online = snap.rows.filter((r) => r.liveness === 'online').length;
    const links = snap.brokers.map((b) => b.url + ' (' + b.state + ')').join(' · ');
    $('summary').textContent = snap.total + ' agents · ' + online + ' online · ' + links;
    renderFleet(snap);
    renderCompare(snap);
    chart($('reconnects'), snap.reconnects, (p) => p.runtime, (p) => p.agent + ' ' + p.target + ': ' + dur(p.ms));
    chart($('detections'), snap.detections, (p) => p.runtime + '/' + p.source, (p) => p.agent + ' ' + p.source + ': ' + dur(p.ms));
    renderDetail(snap);
  }

  $('filter').addEventListener('input', (e) => {
    state.filter = e.target.value;
    render();
  });
  $('sort').addEventListener('change', (e) => {
    state.sort = e.target.value;
    render();
  });
  $('detail-close').addEventListener('click', () => {
    state.open = null;
    render();
  });

  const source = new EventSource('events');
  source.onmessage = (e) => {
    state.snap = JSON.parse(e.data);
    $('link').className = 'link ok';
    render();
  };
  source.onerror = () => {
    $('link').className = 'link';
  };
})();
