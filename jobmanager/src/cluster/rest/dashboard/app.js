// Weir's web dashboard: reads the JobManager's REST API (nothing else) and redraws the
// current view every `refresh-interval` of GET /config. Every value from the API reaches
// the page as text (textContent, SVG text nodes), never as markup. With a cluster secret
// the API asks for a bearer token: the page asks for it once and keeps it for the tab.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const NO_WATERMARK = -9223372036854775808;
// A watermark this late is the end of event time (i64::MAX at the source's end).
const END_OF_TIME = 8.64e15;
let refreshMs = 3000;
let timer = null;
// Bumped by every render: a render that finds a newer one started draws nothing.
let generation = 0;
// What the last action said, kept across redraws.
let actionStatus = '';

function h(tag, attrs, ...children) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem('weir-token');
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) throw new Unauthorized();
  const json = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((json.errors || [r.statusText]).join('; '));
  return json;
}
const get = (path) => api('GET', path);

function time(ms) { return ms > 0 ? new Date(ms).toLocaleTimeString() : '–'; }
function duration(ms) {
  if (!(ms >= 0)) return '–';
  const s = Math.floor(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}
function bytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
function watermark(w) { return w === null ? '–' : w >= END_OF_TIME ? 'end of input' : time(w); }
function rate(n) { return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k/s` : `${n.toFixed(0)}/s`; }
function stateCell(s) { return h('td', { class: 'state-' + s }, s); }

async function overview() {
  const [o, jobs, tms] = await Promise.all([get('/overview'), get('/jobs/overview'), get('/taskmanagers')]);
  const card = (label, value) => h('div', { class: 'card' }, h('b', {}, value), label);
  return [
    h('h1', {}, 'Cluster'),
    h('div', { class: 'cards', id: 'cards' },
      card('TaskManagers', o.taskmanagers), card('slots', o['slots-total']), card('slots free', o['slots-available']),
      card('running', o['jobs-running']), card('finished', o['jobs-finished']),
      card('cancelled', o['jobs-cancelled']), card('failed', o['jobs-failed'])),
    h('h2', {}, 'Jobs'),
    h('table', { id: 'jobs' },
      h('tr', {}, ['name', 'state', 'started', 'duration', 'tasks'].map((c) => h('th', {}, c))),
      jobs.jobs.map((j) => h('tr', {},
        h('td', {}, h('a', { href: '#/job/' + j.jid }, j.name)), stateCell(j.state),
        h('td', {}, time(j['start-time'])), h('td', {}, duration(j.duration)),
        h('td', {}, Object.entries(j.tasks).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(', '))))),
    h('h2', {}, 'TaskManagers'),
    h('table', { id: 'taskmanagers' },
      h('tr', {}, ['id', 'address', 'slots', 'free', 'last heartbeat'].map((c) => h('th', {}, c))),
      tms.taskmanagers.map((t) => h('tr', {}, h('td', {}, t.id), h('td', {}, t.path), h('td', {}, t.slotsNumber),
        h('td', {}, t.freeSlots), h('td', {}, `${t.timeSinceLastHeartbeat} ms ago`)))),
  ];
}

// Per vertex: records/s (in, or out for a source), back-pressure level, lowest watermark.
async function vertexStats(jid, node) {
  const base = `/jobs/${jid}/vertices/${node.id}`;
  const suffix = node.is_source ? '.numRecordsOutPerSecond' : '.numRecordsInPerSecond';
  const [ids, bp, wms] = await Promise.all([get(base + '/metrics'), get(base + '/backpressure'), get(base + '/watermarks')]);
  const want = ids.map((m) => m.id).filter((id) => id.endsWith(suffix));
  const values = want.length ? await get(`${base}/metrics?get=${want.join(',')}`) : [];
  const marks = wms.map((w) => Number(w.value)).filter((w) => w !== NO_WATERMARK);
  return {
    rate: values.reduce((s, m) => s + Number(m.value), 0),
    level: bp['backpressure-level'],
    watermark: marks.length ? Math.min(...marks) : null,
  };
}

async function dag(jid, plan) {
  const depth = {};
  const byId = Object.fromEntries(plan.nodes.map((n) => [n.id, n]));
  const depthOf = (n) => depth[n.id] ?? (depth[n.id] = n.inputs.length ? 1 + Math.max(...n.inputs.map((i) => depthOf(byId[i.id]))) : 0);
  plan.nodes.forEach(depthOf);
  const rows = {};
  const pos = {};
  for (const n of plan.nodes) {
    const d = depth[n.id];
    rows[d] = (rows[d] || 0) + 1;
    pos[n.id] = { x: 20 + d * 260, y: 20 + (rows[d] - 1) * 110 };
  }
  const stats = await Promise.all(plan.nodes.map((n) => vertexStats(jid, n)));
  const width = 20 + (Math.max(...Object.values(depth)) + 1) * 260;
  const height = 20 + Math.max(...Object.values(rows)) * 110;
  const svg = h('svg:svg', { id: 'dag', width, height, viewBox: `0 0 ${width} ${height}` });
  for (const n of plan.nodes) {
    for (const i of n.inputs) {
      const a = pos[i.id], b = pos[n.id];
      svg.append(h('svg:path', { class: 'edge', d: `M${a.x + 200},${a.y + 40} L${b.x},${b.y + 40}` }),
        h('svg:text', { class: 'edge-label', x: a.x + 204, y: (a.y + b.y) / 2 + 34 }, i.ship_strategy));
    }
  }
  plan.nodes.forEach((n, k) => {
    const { x, y } = pos[n.id];
    const s = stats[k];
    const label = n.operator.length > 27 ? n.operator.slice(0, 26) + '…' : n.operator;
    svg.append(h('svg:g', { class: `vertex bp-${s.level}`, 'data-vertex': n.id, transform: `translate(${x},${y})` },
      h('svg:rect', { width: 200, height: 92 }),
      h('svg:text', { class: 'title', x: 8, y: 18 }, label),
      h('svg:text', { x: 8, y: 36 }, `parallelism ${n.parallelism}`),
      h('svg:text', { class: 'rate', x: 8, y: 52 }, `${rate(s.rate)} ${n.is_source ? 'out' : 'in'}`),
      h('svg:text', { x: 8, y: 68 }, `back-pressure ${s.level}`),
      h('svg:text', { class: 'watermark', x: 8, y: 84 }, `watermark ${watermark(s.watermark)}`)));
  });
  return svg;
}

function checkpointChart(history) {
  const list = history.slice().reverse();
  const w = 640, hgt = 180, pad = 30;
  const svg = h('svg:svg', { id: 'checkpoint-chart', width: w, height: hgt });
  if (!list.length) return h('p', { class: 'muted' }, 'No checkpoints yet.');
  const maxSize = Math.max(1, ...list.map((c) => c.state_size));
  const maxDur = Math.max(1, ...list.map((c) => c.end_to_end_duration));
  const step = (w - 2 * pad) / list.length;
  list.forEach((c, i) => {
    const bh = (c.state_size / maxSize) * (hgt - 2 * pad);
    const x = pad + i * step;
    svg.append(h('svg:rect', { class: 'ckpt-bar' + (c.status === 'FAILED' ? ' failed' : ''), x, y: hgt - pad - bh, width: Math.max(2, step - 3), height: bh },
      h('svg:title', {}, `#${c.id} ${c.status} ${bytes(c.state_size)} in ${c.end_to_end_duration} ms`)));
    const dy = hgt - pad - (Math.max(0, c.end_to_end_duration) / maxDur) * (hgt - 2 * pad);
    svg.append(h('svg:circle', { class: 'ckpt-duration', cx: x + step / 2, cy: dy, r: 3 }));
  });
  svg.append(h('svg:text', { class: 'axis', x: pad, y: 14 }, `bars: size (max ${bytes(maxSize)}), dots: duration (max ${maxDur} ms)`));
  return svg;
}

function showAction(text) {
  actionStatus = text;
  const status = document.getElementById('action-status');
  if (status) status.textContent = text;
}

async function act(label, f) {
  showAction(label + '…');
  try { showAction(await f()); } catch (e) { showAction(`${label} failed: ${e.message}`); }
}

async function poll(path) {
  for (let i = 0; i < 600; i++) {
    const r = await get(path);
    if (r.status.id === 'COMPLETED') {
      const op = r.operation;
      if (op['failure-cause']) throw new Error(op['failure-cause']['stack-trace']);
      return op.location;
    }
    await new Promise((ok) => setTimeout(ok, 500));
  }
  throw new Error('no answer within 5 minutes');
}

async function job(jid) {
  const [d, plan, cps, ex] = await Promise.all([get(`/jobs/${jid}`), get(`/jobs/${jid}/plan`),
    get(`/jobs/${jid}/checkpoints`), get(`/jobs/${jid}/exceptions`)]);
  const running = !['FINISHED', 'FAILED', 'CANCELLED'].includes(d.state);
  const buttons = running ? [
    h('button', { id: 'cancel', class: 'danger', onclick: () => act('cancel', async () => { await api('PATCH', `/jobs/${jid}?mode=cancel`); return 'cancelling'; }) }, 'Cancel'),
    h('button', { id: 'savepoint', onclick: () => act('savepoint', async () => { const t = await api('POST', `/jobs/${jid}/savepoints`, {}); return 'savepoint at ' + await poll(`/jobs/${jid}/savepoints/${t['request-id']}`); }) }, 'Savepoint'),
    h('button', { id: 'stop', onclick: () => act('stop', async () => { const t = await api('POST', `/jobs/${jid}/stop`, {}); return 'stopped with savepoint at ' + await poll(`/jobs/${jid}/savepoints/${t['request-id']}`); }) }, 'Stop with savepoint'),
  ] : [];
  return [
    h('h1', {}, d.name, ' ', h('span', { id: 'job-state', class: 'state-' + d.state }, d.state)),
    h('p', { class: 'muted' }, `job ${jid}, started ${time(d['start-time'])}, running for ${duration(d.duration)}`),
    h('div', {}, buttons, h('span', { id: 'action-status', class: 'muted' }, actionStatus)),
    h('h2', {}, 'Job graph'), await dag(jid, plan.plan),
    h('h2', {}, 'Checkpoints'),
    h('p', {}, `completed ${cps.counts.completed}, failed ${cps.counts.failed}, in progress ${cps.counts.in_progress}, restored ${cps.counts.restored}`),
    checkpointChart(cps.history),
    h('h2', {}, 'Exceptions'),
    ex['root-exception'] ? h('pre', { id: 'root-exception' }, ex['root-exception']) : h('p', { class: 'muted' }, 'None.'),
  ];
}

function login() {
  const input = h('input', { type: 'password', id: 'token', placeholder: 'cluster.secret' });
  return [h('h1', {}, 'Sign in'), h('form', { class: 'login', onsubmit: (e) => {
    e.preventDefault();
    sessionStorage.setItem('weir-token', input.value);
    render();
  } }, h('p', {}, 'This cluster asks for its secret.'), input, ' ', h('button', { type: 'submit' }, 'Sign in'))];
}

async function render() {
  clearTimeout(timer);
  const mine = ++generation;
  const main = document.getElementById('main');
  const m = location.hash.match(/^#\/job\/([0-9a-f]{1,16})$/);
  try {
    const view = m ? await job(m[1]) : await overview();
    if (mine !== generation) return;
    main.replaceChildren(...view);
    document.getElementById('refreshed').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  } catch (e) {
    if (mine !== generation) return;
    if (e instanceof Unauthorized) { main.replaceChildren(...login()); return; }
    main.replaceChildren(h('p', { class: 'state-FAILED' }, 'Cannot read the REST API: ' + e.message));
  }
  timer = setTimeout(render, refreshMs);
}

window.addEventListener('hashchange', () => { actionStatus = ''; render(); });
get('/config').then((c) => { refreshMs = c['refresh-interval'] || refreshMs; }).catch(() => {}).finally(render);
