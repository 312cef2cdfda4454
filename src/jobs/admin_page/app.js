// The admins' jobs page: every datum comes from the admin-only JSON routes, sent with
// the bearer token the admin typed (kept in sessionStorage for this tab only). Job
// fields are attacker-controlled text: the DOM is built with textContent only.
'use strict';

(function () {
  const api = document.body.dataset.api + '/admin/jobs';
  const KEY = 'app_kernel.jobs_view.token';
  const $ = (id) => document.getElementById(id);
  let cursors = [''];
  let page = 0;

  function token() { return sessionStorage.getItem(KEY) || ''; }

  function say(text, ok) {
    $('message').textContent = text;
    $('message').className = ok ? 'ok' : '';
  }

  async function call(method, url) {
    const res = await fetch(url, {
      method: method,
      headers: { 'Authorization': 'Bearer ' + token(), 'Accept': 'application/json' },
      cache: 'no-store',
    });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      const detail = body && (body.detail || body.title) ? (body.detail || body.title) : res.statusText;
      const err = new Error(res.status + ': ' + detail);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text === null || text === undefined ? '' : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function button(label, cls, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.className = cls;
    b.addEventListener('click', onClick);
    return b;
  }

  function canRetry(job) { return job.status === 'retry' || job.status === 'dead'; }
  function canCancel(job) { return job.status === 'pending' || job.status === 'retry'; }

  async function act(verb, id) {
    try {
      const job = await call('POST', api + '/' + encodeURIComponent(id) + '/' + verb);
      say('Job ' + id + ' is now ' + job.status + '.', true);
      await load();
      if (!$('detail').hidden && $('detail-id').textContent === id) show(job);
    } catch (e) {
      failed(e);
    }
  }

  function row(job) {
    const tr = document.createElement('tr');
    tr.dataset.jobId = job.id;
    const idCell = cell(tr, '', 'id');
    idCell.appendChild(button(job.id, 'open', () => open(job.id)));
    cell(tr, job.task, 'task');
    cell(tr, job.status, 'status status-' + job.status);
    cell(tr, job.attempts + ' / ' + job.max_attempts, 'attempts');
    cell(tr, job.error, 'error');
    cell(tr, job.updated_at, 'updated');
    const actions = cell(tr, '', 'actions');
    if (canRetry(job)) actions.appendChild(button('Retry', 'retry', () => act('retry', job.id)));
    if (canCancel(job)) actions.appendChild(button('Cancel', 'cancel', () => act('cancel', job.id)));
    return tr;
  }

  async function load() {
    const params = new URLSearchParams();
    if ($('status').value) params.set('status', $('status').value);
    if ($('task').value.trim()) params.set('task', $('task').value.trim());
    if (cursors[page]) params.set('cursor', cursors[page]);
    const body = await call('GET', api + '?' + params.toString());
    const tbody = $('jobs');
    tbody.replaceChildren(...body.items.map(row));
    $('empty').hidden = body.items.length > 0;
    cursors.length = page + 1;
    if (body.next_cursor) cursors.push(body.next_cursor);
    $('older').disabled = !body.next_cursor;
    $('newer').disabled = page === 0;
    $('page-number').textContent = 'Page ' + (page + 1);
    $('view').hidden = false;
    $('logout').hidden = false;
  }

  function field(dl, name, value) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.className = 'field-' + name;
    dd.textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
    dl.append(dt, dd);
  }

  function show(job) {
    $('detail-id').textContent = job.id;
    const dl = $('detail-fields');
    dl.replaceChildren();
    for (const name of ['task', 'status', 'priority', 'attempts', 'max_attempts', 'timeout_ms', 'user_id',
      'run_at', 'created_at', 'updated_at', 'trace_parent', 'error', 'payload', 'result']) {
      field(dl, name, job[name] === undefined ? null : job[name]);
    }
    $('detail-retry').hidden = !canRetry(job);
    $('detail-cancel').hidden = !canCancel(job);
    $('detail').hidden = false;
  }

  async function open(id) {
    try {
      show(await call('GET', api + '/' + encodeURIComponent(id)));
    } catch (e) {
      failed(e);
    }
  }

  function failed(e) {
    if (e.status === 401) {
      sessionStorage.removeItem(KEY);
      $('view').hidden = true;
    }
    say(e.message, false);
  }

  async function reload() {
    try {
      await load();
      say('', true);
    } catch (e) {
      failed(e);
    }
  }

  $('auth').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    sessionStorage.setItem(KEY, t);
    $('token').value = '';
    cursors = [''];
    page = 0;
    reload();
  });
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    $('view').hidden = true;
    $('logout').hidden = true;
    $('jobs').replaceChildren();
    say('Token forgotten.', true);
  });
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    cursors = [''];
    page = 0;
    reload();
  });
  $('refresh').addEventListener('click', reload);
  $('older').addEventListener('click', () => { page += 1; reload(); });
  $('newer').addEventListener('click', () => { page = Math.max(0, page - 1); reload(); });
  $('detail-retry').addEventListener('click', () => act('retry', $('detail-id').textContent));
  $('detail-cancel').addEventListener('click', () => act('cancel', $('detail-id').textContent));
  $('detail-close').addEventListener('click', () => { $('detail').hidden = true; });

  if (token()) reload();
})();
