// The gitjobs dashboard: no build step, data from the JSON API (read from the
// tracking repository), live through Server-Sent Events.
const main = document.getElementById('main');
const live = document.getElementById('live');

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
/** What a task left under /out, committed to done: how many files, each path, size and blob id on hover. */
const filesNote = (t) => {
  const entries = t.files?.entries ?? [];
  if (!entries.length) return '';
  const list = entries.map((e) => `${e.path} (${e.bytes} B, blob ${e.blob.slice(0, 12)})`).join('\n');
  return ` <span class="muted files" title="${esc(list)}">${entries.length} file${entries.length === 1 ? '' : 's'} in done</span>`;
};
const dur = (ms) => (ms === undefined || ms === null ? '' : ms < 60000 ? `${(ms / 1000).toFixed(2)}s` : `${Math.floor(ms / 60000)}m${String(Math.round((ms % 60000) / 1000)).padStart(2, '0')}s`);
const state = (s) => `<span class="state state-${esc(s)}">${esc(s)}</span>`;
const commitLink = (url, sha, label) => `<a href="${esc(url)}">${esc(label ?? sha.slice(0, 7))}</a>`;

let refresh = () => {};
let timer;
const soon = () => { clearTimeout(timer); timer = setTimeout(() => refresh(), 150); };

const events = new EventSource('/api/events');
// On (re)connecting, read the page again: what happened before the stream was open came as no event.
events.onopen = () => { live.textContent = 'live'; soon(); };
events.onerror = () => (live.textContent = 'reconnecting…');
// A run's page is read again only for its own run's events; the runs list for every run's.
const onEvent = (e) => {
  const page = main.dataset.page ?? '';
  if (page.startsWith('run:')) {
    try {
      if (JSON.parse(e.data).run !== page.slice(4)) return;
    } catch { /* not JSON: read the page again */ }
  }
  soon();
};
events.addEventListener('task', onEvent);
events.addEventListener('run', onEvent);

// Bumped on every navigation: a page read that comes back after the user has moved on draws nothing.
let routeSeq = 0;

async function runsPage() {
  const seq = routeSeq;
  const { runs } = await (await fetch('/api/runs')).json();
  if (seq !== routeSeq) return;
  main.dataset.page = 'runs';
  document.title = 'Runs · gitjobs';
  main.innerHTML = `<h2>Runs</h2>${runs.length === 0 ? '<p>No runs yet. Push a project to <code>projects/</code> in the todo repository.</p>' : `
  <table><caption class="muted">Newest first</caption><thead><tr><th scope="col">Run</th><th scope="col">Project</th><th scope="col">Source commit</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Duration</th></tr></thead><tbody>
  ${runs.slice().reverse().map((r) => `<tr data-run="${esc(r.id)}"><td><a href="#/runs/${esc(r.id)}">${esc(r.id)}</a>${r.rerunOf ? ` <span class="muted">re-run of ${esc(r.rerunOf)}</span>` : ''}</td><td>${esc(r.project)}</td><td><code>${esc(r.todoCommit.slice(0, 7))}</code> <span class="muted">${esc(r.file)}</span></td><td>${state(r.state)}</td><td class="progress">${r.progress.done}/${r.progress.total}${r.progress.failed ? ` (${r.progress.failed} failed)` : ''}</td><td>${dur(r.finishedAt ? Date.parse(r.finishedAt) - Date.parse(r.createdAt) : Date.now() - Date.parse(r.createdAt))}</td></tr>`).join('')}
  </tbody></table>`}`;
}

async function runPage(id) {
  const seq = routeSeq;
  const res = await fetch(`/api/runs/${encodeURIComponent(id)}`);
  const view = res.ok ? await res.json() : undefined;
  if (seq !== routeSeq) return;
  if (!view) { main.dataset.page = ''; main.innerHTML = `<p>No run ${esc(id)}.</p>`; return; }
  const r = view.run;
  document.title = `${r.id} · gitjobs`;
  const byTask = new Map();
  for (const c of view.commits) if (c.task) byTask.set(c.task, [...(byTask.get(c.task) ?? []), c]);
  // Only the run's summary and tasks are redrawn on updates; an open log keeps streaming.
  if (main.dataset.page !== `run:${r.id}`) {
    main.dataset.page = `run:${r.id}`;
    main.innerHTML = `<div id="runinfo"></div>
  <form id="actions" aria-label="Run actions">
    <label>API token <input id="rtoken" type="password" autocomplete="off" value="${esc(sessionStorage.getItem('gitjobs-token') ?? '')}"></label>
    <button type="button" data-act="cancel">Cancel run</button>
    <button type="button" data-act="rerun">Re-run</button>
    <button type="button" data-act="rerun-failed">Re-run failed</button>
    <span id="actresult" role="status" aria-live="polite"></span>
  </form>
  <section aria-label="Task output" id="output"></section>`;
    main.querySelectorAll('button[data-act]').forEach((b) => b.addEventListener('click', () => act(r.id, b.dataset.act)));
  }
  // Cancel while it runs; re-run once it has finished.
  const finished = Boolean(r.doneCommit) || r.state === 'rejected';
  main.querySelector('button[data-act="cancel"]').hidden = finished;
  main.querySelector('button[data-act="rerun"]').hidden = !finished;
  main.querySelector('button[data-act="rerun-failed"]').hidden = !finished || r.state === 'succeeded' || r.state === 'rejected';
  document.getElementById('runinfo').innerHTML = `<h2>Run ${esc(r.id)} ${state(r.state)}</h2>
  <p>Project <strong>${esc(r.project)}</strong> from <code>${esc(r.file)}</code> at <code>${esc(r.todoCommit.slice(0, 7))}</code>, config <code>${esc((r.configCommit ?? '').slice(0, 7))}</code>; ${view.progress.done}/${view.progress.total} tasks done${r.rerunOf ? `; re-run of <a href="#/runs/${esc(r.rerunOf)}">${esc(r.rerunOf)}</a>` : ''}${r.error ? `; <span class="state-failed">${esc(r.error)}</span>` : ''}.</p>
  <table><caption class="muted">Tasks</caption><thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Exit</th><th scope="col">Duration</th><th scope="col">Image</th><th scope="col">Worker</th><th scope="col">Transitions</th><th scope="col">Output</th></tr></thead><tbody>
  ${view.tasks.map((t) => `<tr data-task="${esc(t.id)}"><th scope="row">${esc(t.id)}</th><td class="task-state">${state(t.state)}${t.reusedFrom ? ` <span class="muted">reused from <a href="#/runs/${esc(t.reusedFrom.run)}">${esc(t.reusedFrom.run)}</a></span>` : ''}${t.cachedFrom ? ` <span class="muted">from cache: <a href="#/runs/${esc(t.cachedFrom.run)}">${esc(t.cachedFrom.run)}</a></span>` : ''}${filesNote(t)}</td><td>${t.attempts}/${t.maxAttempts}</td><td>${t.exitCode ?? ''}</td><td>${dur(t.durationMs)}</td><td><code>${esc((t.worker?.image ?? '').replace('sha256:', '').slice(0, 12))}</code></td><td>${esc(t.worker?.id ?? t.worker?.host ?? '')}</td><td>${(byTask.get(t.id) ?? []).map((c) => commitLink(c.url, c.commit, c.subject.split(': ').slice(1).join(': ').split(' (')[0])).join('<br>')}</td><td><button type="button" data-log="${esc(t.id)}">log</button></td></tr>`).join('')}
  </tbody></table>${graph(view.tasks)}${timeline(view.tasks)}`;
  main.querySelectorAll('button[data-log]').forEach((b) => b.addEventListener('click', () => showLog(r.id, b.dataset.log)));
}

// The shape of a run: its tasks laid out by what they need, left to right, each in the colour of its state.
const GRAPH_MAX = 300;
function graph(tasks) {
  if (!tasks.some((t) => t.needs?.length)) return '';
  if (tasks.length > GRAPH_MAX) return `<p class="muted">Dependency graph: ${tasks.length} tasks, too many to draw (at most ${GRAPH_MAX}).</p>`;
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const level = new Map();
  const levelOf = (t) => {
    if (level.has(t.id)) return level.get(t.id);
    level.set(t.id, 0);
    const l = Math.max(0, ...(t.needs ?? []).filter((n) => byId.has(n)).map((n) => levelOf(byId.get(n)) + 1));
    level.set(t.id, l);
    return l;
  };
  const columns = [];
  for (const t of tasks) (columns[levelOf(t)] ??= []).push(t);
  const [w, h, gx, gy] = [150, 26, 56, 10];
  const at = new Map();
  columns.forEach((col, x) => col.forEach((t, y) => at.set(t.id, { x: 8 + x * (w + gx), y: 8 + y * (h + gy) })));
  const width = 16 + columns.length * (w + gx) - gx;
  const height = 16 + Math.max(...columns.map((c) => c.length)) * (h + gy) - gy;
  let edges = 0;
  const lines = tasks.flatMap((t) => (t.needs ?? []).filter((n) => at.has(n)).map((n) => {
    edges++;
    const [a, b] = [at.get(n), at.get(t.id)];
    return `<path class="edge" data-from="${esc(n)}" data-to="${esc(t.id)}" d="M${a.x + w},${a.y + h / 2} C${a.x + w + gx / 2},${a.y + h / 2} ${b.x - gx / 2},${b.y + h / 2} ${b.x},${b.y + h / 2}"/>`;
  }));
  const nodes = tasks.map((t) => {
    const { x, y } = at.get(t.id);
    const label = t.id.length > 20 ? `${t.id.slice(0, 19)}…` : t.id;
    return `<g class="node state-${esc(t.state)}" data-task="${esc(t.id)}" data-state="${esc(t.state)}"><title>${esc(t.id)}: ${esc(t.state)}</title><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="4"/><text x="${x + 8}" y="${y + h / 2 + 5}">${esc(label)}</text></g>`;
  });
  return `<figure class="shape"><figcaption>Dependency graph</figcaption><svg id="graph" role="img" aria-label="Dependency graph: ${tasks.length} tasks, ${edges} dependencies" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${lines.join('')}${nodes.join('')}</svg></figure>`;
}

// When each task ran, and where: one bar per task that started, on one time axis.
const TIMELINE_MAX = 500;
function timeline(tasks) {
  const ran = tasks.filter((t) => t.startedAt);
  if (!ran.length) return '';
  if (ran.length > TIMELINE_MAX) return `<p class="muted">Timeline: ${ran.length} tasks ran, too many to draw (at most ${TIMELINE_MAX}).</p>`;
  const start = Math.min(...ran.map((t) => Date.parse(t.startedAt)));
  const end = Math.max(...ran.map((t) => (t.finishedAt ? Date.parse(t.finishedAt) : Date.now())));
  const span = Math.max(1, end - start);
  const [label, width, row] = [170, 560, 20];
  const height = ran.length * row + 24;
  const bars = ran.map((t, i) => {
    const from = Date.parse(t.startedAt);
    const to = t.finishedAt ? Date.parse(t.finishedAt) : Date.now();
    const x = label + ((from - start) / span) * width;
    const bw = Math.max(2, ((to - from) / span) * width);
    const where = t.worker?.id ?? t.worker?.host ?? '';
    const name = t.id.length > 22 ? `${t.id.slice(0, 21)}…` : t.id;
    return `<g class="state-${esc(t.state)}" data-task="${esc(t.id)}"><title>${esc(t.id)}: ${esc(t.state)}, ${dur(to - from)} on ${esc(where)}, from +${dur(from - start)}</title><text x="0" y="${i * row + 14}">${esc(name)}</text><rect class="bar" data-worker="${esc(where)}" data-from="${from - start}" data-to="${to - start}" x="${x.toFixed(1)}" y="${i * row + 3}" width="${bw.toFixed(1)}" height="${row - 6}"/></g>`;
  });
  return `<figure class="shape"><figcaption>Timeline (${dur(span)}; each bar from a task's start to its end, on the worker named in its tooltip)</figcaption><svg id="timeline" role="img" aria-label="Timeline: ${ran.length} tasks over ${dur(span)}" width="${label + width + 10}" height="${height}" viewBox="0 0 ${label + width + 10} ${height}">${bars.join('')}<text class="muted" x="${label}" y="${height - 4}">+0s</text><text class="muted" x="${label + width}" y="${height - 4}" text-anchor="end">+${dur(span)}</text></svg></figure>`;
}

async function act(run, action) {
  const token = document.getElementById('rtoken').value;
  sessionStorage.setItem('gitjobs-token', token);
  const out = document.getElementById('actresult');
  out.textContent = action === 'cancel' ? 'cancelling…' : 're-running…';
  const res = await fetch(`/api/runs/${encodeURIComponent(run)}/${action === 'cancel' ? 'cancel' : 'rerun'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: action === 'cancel' ? JSON.stringify({ reason: 'cancelled from the dashboard' }) : JSON.stringify(action === 'rerun-failed' ? { failed: true } : {}),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { out.textContent = `${action}: ${body.error ?? `HTTP ${res.status}`}`; return; }
  if (action === 'cancel') { out.textContent = `cancelled: ${body.tasks} unfinished task${body.tasks === 1 ? '' : 's'} stopped`; soon(); return; }
  location.hash = `#/runs/${encodeURIComponent(body.run)}`;
}

let logStream;
function showLog(run, task) {
  logStream?.close();
  const section = document.getElementById('output');
  section.innerHTML = `<h3>Output of ${esc(task)}</h3><pre class="log" data-task="${esc(task)}" tabindex="0" aria-live="polite"></pre>`;
  const pre = section.querySelector('pre');
  logStream = new EventSource(`/api/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(task)}/log`);
  logStream.addEventListener('output', (e) => { pre.textContent += JSON.parse(e.data); pre.scrollTop = pre.scrollHeight; });
  logStream.addEventListener('log', (e) => { pre.textContent = JSON.parse(e.data); });
  logStream.addEventListener('attempt', (e) => { pre.textContent += `\n--- attempt ${JSON.parse(e.data).attempt} ---\n`; });
  logStream.addEventListener('end', () => logStream.close());
}

function queuesPage() {
  main.dataset.page = 'queues';
  logStream?.close();
  document.title = 'Queues · gitjobs';
  main.innerHTML = `<h2>Queue web services</h2>
  <p class="muted">Create a queue, send a message, take one. Needs the API token when the server has one.</p>
  <form id="qform">
    <label>API token <input id="qtoken" type="password" autocomplete="off" value="${esc(sessionStorage.getItem('gitjobs-token') ?? '')}"></label>
    <label>Queue <input id="qname" required pattern="[A-Za-z0-9._-]{1,100}" value="demo"></label>
    <label>Message <textarea id="qbody" rows="2">bonjour</textarea></label>
    <button type="button" data-op="create">Create</button>
    <button type="button" data-op="send">Send</button>
    <button type="button" data-op="take">Take one</button>
    <button type="button" data-op="delete">Delete</button>
  </form>
  <pre id="qresult" class="log" role="status" aria-live="polite"></pre>`;
  const out = document.getElementById('qresult');
  main.querySelectorAll('button[data-op]').forEach((b) => b.addEventListener('click', async () => {
    const token = document.getElementById('qtoken').value;
    sessionStorage.setItem('gitjobs-token', token);
    const name = encodeURIComponent(document.getElementById('qname').value);
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const op = b.dataset.op;
    const req = op === 'create' ? fetch('/api/queues', { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: decodeURIComponent(name) }) })
      : op === 'send' ? fetch(`/api/queues/${name}/messages`, { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: document.getElementById('qbody').value })
      : op === 'take' ? fetch(`/api/queues/${name}/messages`, { headers })
      : fetch(`/api/queues/${name}`, { method: 'DELETE', headers });
    const res = await req;
    const none = op === 'take' ? '(empty: no message waiting)' : op === 'delete' ? '(deleted)' : '';
    out.textContent = `${op}: ${res.status} ${res.statusText}\n${res.status === 204 ? none : await res.text()}`;
  }));
}

function route() {
  routeSeq++;
  const hash = location.hash || '#/';
  logStream?.close();
  const m = /^#\/runs\/([A-Za-z0-9._-]+)$/.exec(hash);
  refresh = m ? () => runPage(m[1]) : hash === '#/queues' ? () => {} : () => runsPage();
  if (hash === '#/queues') queuesPage(); else refresh();
  main.focus({ preventScroll: true });
}
window.addEventListener('hashchange', route);
route();
