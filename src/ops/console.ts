/**
 * The rep console: a small node:http server that shows human hand-off screen pops to
 * the rep the call is being transferred to, live.
 *
 * Routes (GET only; anything else is 405 with `Allow: GET`):
 * - `/`               the console page (`?ext=1001` picks the rep's extension)
 * - `/api/pops?ext=`  JSON array of pops, newest first
 * - `/api/pops/:id`   JSON of one pop (404 JSON error when unknown)
 * - `/pops/:id`       server-rendered HTML page of one pop (the `X-Screen-Pop-Url` target)
 * - `/events?ext=`    Server-Sent Events: the current pops as `event: pop`, then `pop`
 *                     for new pops and `update` for changes; `: keep-alive` every 15 s
 * - `/healthz`        200 `ok`
 *
 * Every page is self-contained (inline CSS/JS under a nonce CSP, no external assets);
 * every piece of pop text is HTML-escaped on the server and set with `textContent`
 * in the browser.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { ScreenPop, ScreenPopStore } from '../escalation/screen-pop.ts';
import { logger, type Logger } from './log.ts';

export interface RepConsoleOptions {
  store: ScreenPopStore;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @defaultValue 8088 */
  port?: number;
  log?: Logger;
  /** SSE keep-alive comment interval. @defaultValue 15000 */
  keepAliveMs?: number;
}

export interface RepConsole {
  /** `http://host:port` */
  url: string;
  port: number;
  /** absolute URL of one pop's page (what goes into `X-Screen-Pop-Url`) */
  popUrl(id: string): string;
  /** stops listening, ends open SSE streams and connections */
  close(): Promise<void>;
}

const MAX_EXT_LEN = 64;
/** an SSE client that has this much unsent data is too slow and is dropped */
const MAX_SSE_BUFFER = 1 << 20;

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

export async function startRepConsole(opts: RepConsoleOptions): Promise<RepConsole> {
  const { store } = opts;
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? logger('rep-console');
  const keepAliveMs = opts.keepAliveMs ?? 15_000;

  const sockets = new Set<Socket>();
  const streams = new Set<() => void>(); // closers of open SSE streams

  const server = createServer((req, res) => {
    const started = Date.now();
    const path = safePath(req.url);
    res.on('error', (err) => log.debug('response error', { path, err }));
    res.on('close', () => {
      log.debug('request', {
        method: req.method,
        path,
        status: res.statusCode,
        ms: Date.now() - started,
        ...(res.writableFinished ? {} : { aborted: true }),
      });
    });
    try {
      handle(req, res);
    } catch (err) {
      log.error('request failed', { method: req.method, path, err });
      fail(res, err);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (err, socket) => {
    log.debug('client error', { err });
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.on('error', (err) => log.error('server error', { err }));

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      return sendJson(res, 405, { error: 'method not allowed' });
    }
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const ext = extParam(url);
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if (p === '/') return sendHtml(res, 200, (nonce) => consolePage(ext, nonce));
    if (p === '/healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok');
    if (p === '/api/pops') return sendJson(res, 200, store.list(ext ? { extension: ext } : {}));
    if ((m = /^\/api\/pops\/([^/]+)$/.exec(p))) {
      const pop = lookup(m[1]!);
      return pop ? sendJson(res, 200, pop) : sendJson(res, 404, { error: 'screen pop not found' });
    }
    if ((m = /^\/pops\/([^/]+)$/.exec(p))) {
      const pop = lookup(m[1]!);
      if (!pop) return sendHtml(res, 404, (nonce) => notFoundPage(nonce));
      return sendHtml(res, 200, (nonce) => popPage(pop, nonce));
    }
    if (p === '/events') return events(req, res, ext);
    return sendJson(res, 404, { error: 'not found' });
  }

  function lookup(raw: string): ScreenPop | undefined {
    try {
      return store.get(decodeURIComponent(raw));
    } catch {
      return undefined; // malformed %-escape
    }
  }

  function events(req: IncomingMessage, res: ServerResponse, ext: string): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);

    const sent = new Set<string>(); // pop ids this client has seen
    const matches = (pop: ScreenPop): boolean => !ext || pop.target.extension === ext;
    const write = (chunk: string): void => {
      if (res.destroyed || res.writableEnded) return;
      if (res.writableLength > MAX_SSE_BUFFER) {
        log.warn('dropping slow SSE client', { ext });
        res.destroy();
        return;
      }
      res.write(chunk);
    };
    const emit = (event: 'pop' | 'update', pop: ScreenPop): void => {
      let data: string;
      try {
        data = JSON.stringify(pop);
      } catch (err) {
        log.warn('screen pop not serialisable', { id: pop.id, err });
        return;
      }
      sent.add(pop.id);
      write(`event: ${event}\nid: ${sseSafe(pop.id)}\ndata: ${data}\n\n`);
    };
    const onPop = (pop: ScreenPop): void => {
      if (matches(pop)) emit('pop', pop);
    };
    // also forward updates of pops this client already has, so a re-targeted pop leaves its list
    const onUpdate = (pop: ScreenPop): void => {
      if (matches(pop)) emit(sent.has(pop.id) ? 'update' : 'pop', pop);
      else if (sent.has(pop.id)) emit('update', pop);
    };
    const timer = setInterval(() => write(': keep-alive\n\n'), keepAliveMs);
    timer.unref();

    let closed = false;
    const cleanup = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      store.off('pop', onPop);
      store.off('update', onUpdate);
      streams.delete(end);
      log.debug('sse client gone', { ext });
    };
    const end = (): void => {
      cleanup();
      if (!res.writableEnded) res.end();
    };
    streams.add(end);
    res.on('close', cleanup);

    store.on('pop', onPop);
    store.on('update', onUpdate);
    write('retry: 2000\n\n');
    // oldest first, so the last one a client receives is the newest
    for (const pop of store.list(ext ? { extension: ext } : {}).reverse()) emit('pop', pop);
    log.debug('sse client connected', { ext, pops: sent.size });
  }

  function fail(res: ServerResponse, err: unknown): void {
    try {
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy(err instanceof Error ? err : undefined);
    } catch {
      /* nothing left to do for this response */
    }
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(opts.port ?? 8088, host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info('rep console listening', { url });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    popUrl: (id) => `${url}/pops/${encodeURIComponent(id)}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const end of [...streams]) end();
        server.close(() => resolve());
        server.closeIdleConnections();
        // whatever is still open after the SSE streams ended
        setImmediate(() => {
          for (const s of sockets) s.destroy();
        });
      });
      return closing;
    },
  };
}

// ---------------------------------------------------------------- helpers

function safePath(raw: string | undefined): string {
  const s = (raw ?? '/').split('?')[0]!;
  return s.length > 200 ? s.slice(0, 200) + '…' : s;
}

function extParam(url: URL): string {
  return (url.searchParams.get('ext') ?? '').trim().slice(0, MAX_EXT_LEN);
}

/** an SSE field value must not contain CR/LF */
function sseSafe(s: string): string {
  return s.replace(/[\r\n]/g, ' ');
}

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, ...extra, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

function sendHtml(res: ServerResponse, status: number, render: (nonce: string) => string): void {
  const nonce = randomBytes(16).toString('base64');
  send(res, status, 'text/html; charset=utf-8', render(nonce), {
    'Content-Security-Policy':
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; ` +
      `connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'`,
  });
}

// ---------------------------------------------------------------- pages

const CSS = `
:root { --bg:#f5f6f8; --fg:#1d2330; --muted:#667085; --card:#fff; --line:#e3e6eb; --accent:#2454d6; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; align-items:center; gap:16px; padding:10px 16px; background:#1d2330; color:#fff; }
header h1 { font-size:16px; margin:0; font-weight:600; }
header form { display:flex; gap:6px; align-items:center; margin-left:auto; }
header input { width:9em; padding:4px 6px; border-radius:4px; border:1px solid #555; }
header button { padding:4px 10px; border-radius:4px; border:0; background:var(--accent); color:#fff; cursor:pointer; }
#conn { font-size:12px; color:#b8c0cc; }
#conn.live { color:#7ee2a8; }
main { display:grid; grid-template-columns:minmax(220px,320px) 1fr; gap:16px; padding:16px; }
main.single { grid-template-columns:1fr; max-width:960px; margin:0 auto; }
#pops { list-style:none; margin:0; padding:0; }
#pops li { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px 10px; margin-bottom:8px; cursor:pointer; }
#pops li.selected { border-color:var(--accent); box-shadow:0 0 0 1px var(--accent); }
#pops .who { font-weight:600; }
#pops .meta { color:var(--muted); font-size:12px; }
#pops .line { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
.empty { color:var(--muted); padding:12px; }
#pop { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 20px; min-height:200px; }
#pop h2 { margin:0 0 4px; font-size:20px; }
#pop h3 { margin:18px 0 6px; font-size:13px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
#pop dl { display:grid; grid-template-columns:max-content 1fr; gap:2px 12px; margin:0; }
#pop dt { color:var(--muted); }
#pop dd { margin:0; }
#pop-reason { font-size:16px; margin:8px 0; padding:8px 10px; background:#fff7e6; border-left:3px solid #f0a020; }
#pop-transcript { list-style:none; padding:0; margin:0; max-height:360px; overflow:auto; }
#pop-transcript li { padding:3px 0; }
#pop-transcript .role { display:inline-block; min-width:4.5em; font-weight:600; }
#pop-transcript li.caller .role { color:#b4461b; }
#pop-transcript li.agent .role { color:var(--accent); }
#pop-transcript .at { color:var(--muted); font-size:11px; margin-left:6px; }
table { border-collapse:collapse; }
td, th { text-align:left; padding:2px 12px 2px 0; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; text-transform:uppercase; background:#e3e6eb; color:#333; }
.badge.ringing { background:#fff1c2; color:#7a5a00; }
.badge.connected { background:#d5f5e0; color:#116631; }
.badge.referred { background:#dde7ff; color:#1d3f99; }
.badge.failed { background:#ffdcd8; color:#9a1c10; }
.badge.ended { background:#e9eaec; color:#555; }
.status-reason { color:var(--muted); margin-left:8px; }
.sub { color:var(--muted); }
`;

function pageShell(title: string, nonce: string, body: string, script = ''): string {
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<link rel="icon" href="data:,">` + // no /favicon.ico request

    `<title>${escapeHtml(title)}</title><style nonce="${nonce}">${CSS}</style></head>` +
    `<body>${body}${script ? `<script nonce="${nonce}">${script}</script>` : ''}</body></html>\n`
  );
}

function notFoundPage(nonce: string): string {
  return pageShell(
    'Screen pop not found',
    nonce,
    `<header><h1>Rep console</h1></header><main class="single"><div id="pop"><p class="empty">` +
      `This screen pop is not (or no longer) known to this server.</p></div></main>`,
  );
}

function fmtTime(ms: number): string {
  const d = new Date(ms);
  return Number.isFinite(d.getTime()) ? d.toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '';
}

function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  try {
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  } catch {
    return String(v);
  }
}

/** Server-side rendering of the detail pane; the same ids/classes the console's JS builds. */
export function renderPopDetail(pop: ScreenPop): string {
  const e = escapeHtml;
  const caller = pop.caller ?? { phone: '', language: '' };
  const acct = pop.account;
  const order = pop.order ?? { placed: [] };
  let h = `<div id="pop" data-id="${e(pop.id)}" data-ext="${e(pop.target?.extension)}">`;
  h += `<h2 id="pop-caller"><span class="name">${e(caller.name || 'Unknown caller')}</span> `;
  h += `<span class="phone sub">${e(caller.phone)}</span></h2>`;
  h += `<div><span id="pop-status" class="badge ${e(pop.status)}" data-status="${e(pop.status)}">${e(pop.status)}</span>`;
  h += `<span id="pop-status-reason" class="status-reason">${e(pop.statusReason ?? '')}</span></div>`;
  h += `<p id="pop-reason">${e(pop.reason)}</p>`;
  h += `<dl id="pop-meta">`;
  h += `<dt>Trigger</dt><dd id="pop-trigger">${e(pop.trigger)}</dd>`;
  h += `<dt>Target</dt><dd id="pop-target">${e(pop.target?.name)} (${e(pop.target?.kind ?? 'rep')} ${e(pop.target?.extension)})</dd>`;
  h += `<dt>Tenant</dt><dd id="pop-tenant">${e(pop.tenantName)}</dd>`;
  h += `<dt>Language</dt><dd>${e(caller.language)}</dd>`;
  h += `<dt>Received</dt><dd id="pop-time">${e(fmtTime(pop.createdAt))}</dd>`;
  h += `</dl>`;
  h += `<h3>Account</h3><div id="pop-account">`;
  if (acct) {
    h += `<span class="name">${e(acct.name)}</span>`;
    if (acct.number) h += ` <span class="number sub">#${e(acct.number)}</span>`;
    if (acct.tier) h += ` <span class="tier badge">${e(acct.tier)}</span>`;
  } else h += `<span class="sub">no account matched</span>`;
  h += `</div>`;
  h += `<h3>Transcript</h3><ol id="pop-transcript">`;
  for (const line of pop.transcript ?? []) {
    h += `<li class="${line.role === 'agent' ? 'agent' : 'caller'}"><span class="role">${e(line.role)}</span> `;
    h += `<span class="text">${e(line.text)}</span></li>`;
  }
  h += `</ol>`;
  h += `<h3>Order context</h3><div id="pop-order">`;
  const pending = order.pending;
  if (pending && pending.lines?.length) {
    h += `<div id="pop-order-pending"><strong>Pending order</strong>`;
    if (pending.po_number) h += ` <span class="sub">PO ${e(pending.po_number)}</span>`;
    h += `<table><tbody>`;
    for (const l of pending.lines) {
      h += `<tr><td>${e(l.sku)}</td><td>× ${e(l.qty)}</td><td>${e(l.description ?? '')}</td></tr>`;
    }
    h += `</tbody></table></div>`;
  }
  if (order.placed?.length) {
    h += `<div id="pop-order-placed"><strong>Placed on this call</strong><ul>`;
    for (const o of order.placed) {
      h += `<li>${e(o.order_number)}${o.ship_date ? ` <span class="sub">ships ${e(o.ship_date)}</span>` : ''}</li>`;
    }
    h += `</ul></div>`;
  }
  if (order.status && Object.keys(order.status).length) {
    h += `<div id="pop-order-status"><strong>Last order status</strong><dl>`;
    for (const [k, v] of Object.entries(order.status)) h += `<dt>${e(k)}</dt><dd>${e(fmtValue(v))}</dd>`;
    h += `</dl></div>`;
  }
  if (!pending?.lines?.length && !order.placed?.length && !(order.status && Object.keys(order.status).length)) {
    h += `<span class="sub">none</span>`;
  }
  h += `</div></div>`;
  return h;
}

function popPage(pop: ScreenPop, nonce: string): string {
  const title = `Screen pop: ${pop.caller?.name || pop.caller?.phone || pop.id}`;
  const body =
    `<header><h1>Rep console</h1><span id="conn"></span></header>` +
    `<main class="single">${renderPopDetail(pop)}</main>`;
  return pageShell(title, nonce, body, POP_PAGE_JS);
}

/** keeps the status badge of a server-rendered pop page current */
const POP_PAGE_JS = `
(function () {
  'use strict';
  var pane = document.getElementById('pop');
  if (!pane || typeof EventSource === 'undefined') return;
  var id = pane.getAttribute('data-id');
  var es = new EventSource('/events?ext=' + encodeURIComponent(pane.getAttribute('data-ext') || ''));
  function onData(ev) {
    var p;
    try { p = JSON.parse(ev.data); } catch (e) { return; }
    if (!p || p.id !== id) return;
    var s = document.getElementById('pop-status');
    s.textContent = p.status; s.className = 'badge ' + p.status; s.setAttribute('data-status', p.status);
    document.getElementById('pop-status-reason').textContent = p.statusReason || '';
  }
  es.addEventListener('pop', onData);
  es.addEventListener('update', onData);
})();
`;

function consolePage(ext: string, nonce: string): string {
  const body =
    `<header><h1>Rep console</h1>` +
    `<span id="conn">disconnected</span>` +
    `<form id="ext-form" method="get" action="/">` +
    `<label for="ext">Extension</label>` +
    `<input id="ext" name="ext" autocomplete="off" inputmode="numeric" maxlength="${MAX_EXT_LEN}" value="${escapeHtml(ext)}">` +
    `<button type="submit">Watch</button></form></header>` +
    `<main><section><ul id="pops"></ul><p id="pops-empty" class="empty">` +
    `${ext ? 'No screen pops yet for this extension.' : 'Enter your extension to see your screen pops.'}</p></section>` +
    `<section><div id="pop"><p class="empty">No screen pop selected.</p></div></section></main>`;
  return pageShell(ext ? `Rep console · ${ext}` : 'Rep console', nonce, body, CONSOLE_JS);
}

/** The console's browser code: plain ES2017, DOM built with textContent only. */
const CONSOLE_JS = `
(function () {
  'use strict';
  var pops = new Map();      // id -> pop
  var selected = null;       // id shown in the detail pane
  var es = null;
  var retryTimer = null;
  var ext = '';
  var listEl = document.getElementById('pops');
  var emptyEl = document.getElementById('pops-empty');
  var paneEl = document.getElementById('pop');
  var connEl = document.getElementById('conn');
  var input = document.getElementById('ext');

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] != null) n.setAttribute(k, attrs[k]);
    if (text != null) n.textContent = String(text);
    return n;
  }
  function txt(s) { return document.createTextNode(s == null ? '' : String(s)); }
  function fmtTime(ms) {
    var d = new Date(ms);
    return isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }
  function fmtValue(v) {
    if (v == null) return '';
    if (typeof v === 'string') return v;
    try { return typeof v === 'object' ? JSON.stringify(v) : String(v); } catch (e) { return String(v); }
  }
  function sorted() {
    return Array.from(pops.values()).sort(function (a, b) { return (b.createdAt || 0) - (a.createdAt || 0); });
  }
  function badge(status, id) {
    var b = el('span', { 'class': 'badge ' + status, 'data-status': status }, status);
    if (id) b.id = id;
    return b;
  }

  function renderList() {
    var all = sorted();
    listEl.textContent = '';
    emptyEl.hidden = all.length > 0;
    all.forEach(function (p) {
      var li = el('li', { 'data-id': p.id, 'class': p.id === selected ? 'selected' : null });
      var top = el('div');
      top.appendChild(badge(p.status));
      top.appendChild(txt(' '));
      top.appendChild(el('span', { 'class': 'who' }, (p.caller && (p.caller.name || p.caller.phone)) || 'Unknown caller'));
      li.appendChild(top);
      li.appendChild(el('div', { 'class': 'line' }, p.reason));
      li.appendChild(el('div', { 'class': 'meta' },
        fmtTime(p.createdAt) + (p.account ? ' · ' + p.account.name : '') + ' · ' + p.trigger));
      li.addEventListener('click', function () { selected = p.id; renderList(); renderDetail(); });
      listEl.appendChild(li);
    });
  }

  function renderDetail() {
    var p = selected != null ? pops.get(selected) : null;
    paneEl.textContent = '';
    if (!p) {
      paneEl.removeAttribute('data-id');
      paneEl.appendChild(el('p', { 'class': 'empty' }, 'No screen pop selected.'));
      return;
    }
    paneEl.setAttribute('data-id', p.id);
    var caller = p.caller || {};
    var h2 = el('h2', { id: 'pop-caller' });
    h2.appendChild(el('span', { 'class': 'name' }, caller.name || 'Unknown caller'));
    h2.appendChild(txt(' '));
    h2.appendChild(el('span', { 'class': 'phone sub' }, caller.phone || ''));
    paneEl.appendChild(h2);

    var st = el('div');
    st.appendChild(badge(p.status, 'pop-status'));
    st.appendChild(el('span', { id: 'pop-status-reason', 'class': 'status-reason' }, p.statusReason || ''));
    paneEl.appendChild(st);
    paneEl.appendChild(el('p', { id: 'pop-reason' }, p.reason));

    var dl = el('dl', { id: 'pop-meta' });
    function row(label, value, id) { dl.appendChild(el('dt', null, label)); dl.appendChild(el('dd', { id: id }, value)); }
    var t = p.target || {};
    row('Trigger', p.trigger, 'pop-trigger');
    row('Target', (t.name || '') + ' (' + (t.kind || 'rep') + ' ' + (t.extension || '') + ')', 'pop-target');
    row('Tenant', p.tenantName, 'pop-tenant');
    row('Language', caller.language || '');
    row('Received', fmtTime(p.createdAt), 'pop-time');
    paneEl.appendChild(dl);

    paneEl.appendChild(el('h3', null, 'Account'));
    var acct = el('div', { id: 'pop-account' });
    if (p.account) {
      acct.appendChild(el('span', { 'class': 'name' }, p.account.name));
      if (p.account.number) { acct.appendChild(txt(' ')); acct.appendChild(el('span', { 'class': 'number sub' }, '#' + p.account.number)); }
      if (p.account.tier) { acct.appendChild(txt(' ')); acct.appendChild(el('span', { 'class': 'tier badge' }, p.account.tier)); }
    } else acct.appendChild(el('span', { 'class': 'sub' }, 'no account matched'));
    paneEl.appendChild(acct);

    paneEl.appendChild(el('h3', null, 'Transcript'));
    var ol = el('ol', { id: 'pop-transcript' });
    (p.transcript || []).forEach(function (l) {
      var li = el('li', { 'class': l.role === 'agent' ? 'agent' : 'caller' });
      li.appendChild(el('span', { 'class': 'role' }, l.role));
      li.appendChild(txt(' '));
      li.appendChild(el('span', { 'class': 'text' }, l.text));
      if (l.at) li.appendChild(el('span', { 'class': 'at' }, fmtTime(l.at)));
      ol.appendChild(li);
    });
    paneEl.appendChild(ol);

    paneEl.appendChild(el('h3', null, 'Order context'));
    var od = el('div', { id: 'pop-order' });
    var o = p.order || {};
    var any = false;
    if (o.pending && o.pending.lines && o.pending.lines.length) {
      any = true;
      var pend = el('div', { id: 'pop-order-pending' });
      pend.appendChild(el('strong', null, 'Pending order'));
      if (o.pending.po_number) { pend.appendChild(txt(' ')); pend.appendChild(el('span', { 'class': 'sub' }, 'PO ' + o.pending.po_number)); }
      var tb = el('tbody');
      o.pending.lines.forEach(function (l) {
        var tr = el('tr');
        tr.appendChild(el('td', null, l.sku));
        tr.appendChild(el('td', null, '\\u00d7 ' + l.qty));
        tr.appendChild(el('td', null, l.description || ''));
        tb.appendChild(tr);
      });
      var table = el('table'); table.appendChild(tb); pend.appendChild(table);
      od.appendChild(pend);
    }
    if (o.placed && o.placed.length) {
      any = true;
      var pl = el('div', { id: 'pop-order-placed' });
      pl.appendChild(el('strong', null, 'Placed on this call'));
      var ul = el('ul');
      o.placed.forEach(function (x) {
        var li = el('li', null, x.order_number);
        if (x.ship_date) { li.appendChild(txt(' ')); li.appendChild(el('span', { 'class': 'sub' }, 'ships ' + x.ship_date)); }
        ul.appendChild(li);
      });
      pl.appendChild(ul);
      od.appendChild(pl);
    }
    if (o.status && typeof o.status === 'object' && Object.keys(o.status).length) {
      any = true;
      var sd = el('div', { id: 'pop-order-status' });
      sd.appendChild(el('strong', null, 'Last order status'));
      var sdl = el('dl');
      Object.keys(o.status).forEach(function (k) {
        sdl.appendChild(el('dt', null, k));
        sdl.appendChild(el('dd', null, fmtValue(o.status[k])));
      });
      sd.appendChild(sdl);
      od.appendChild(sd);
    }
    if (!any) od.appendChild(el('span', { 'class': 'sub' }, 'none'));
    paneEl.appendChild(od);
  }

  function parse(ev) {
    try { var p = JSON.parse(ev.data); return p && typeof p.id === 'string' ? p : null; } catch (e) { return null; }
  }
  function onPop(ev) {
    var p = parse(ev);
    if (!p) return;
    var known = pops.has(p.id);
    pops.set(p.id, p);
    // a new pop that is the newest for this extension opens in the detail pane
    if (!known) {
      var newest = sorted()[0];
      if (newest && newest.id === p.id) selected = p.id;
    }
    if (selected == null) selected = p.id;
    renderList();
    if (selected === p.id) renderDetail();
  }
  function onUpdate(ev) {
    var p = parse(ev);
    if (!p) return;
    if (ext && p.target && p.target.extension !== ext) {
      pops.delete(p.id);   // handed to another extension
      if (selected === p.id) { var n = sorted()[0]; selected = n ? n.id : null; renderDetail(); }
      renderList();
      return;
    }
    if (!pops.has(p.id)) return onPop(ev);
    pops.set(p.id, p);
    renderList();
    if (selected === p.id) renderDetail();
  }

  function setConn(text, live) {
    connEl.textContent = text;
    connEl.className = live ? 'live' : '';
  }
  function connect() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    if (es) { es.close(); es = null; }
    if (!ext) { setConn('no extension', false); return; }
    setConn('connecting\\u2026', false);
    es = new EventSource('/events?ext=' + encodeURIComponent(ext));
    es.addEventListener('open', function () { setConn('live \\u00b7 ext ' + ext, true); });
    es.addEventListener('pop', onPop);
    es.addEventListener('update', onUpdate);
    es.addEventListener('error', function () {
      // the browser reconnects by itself unless the stream is CLOSED
      setConn('reconnecting\\u2026', false);
      if (es && es.readyState === EventSource.CLOSED) retryTimer = setTimeout(connect, 3000);
    });
  }
  function watch(next) {
    ext = (next || '').trim();
    pops.clear();
    selected = null;
    renderList();
    renderDetail();
    emptyEl.textContent = ext ? 'No screen pops yet for this extension.' : 'Enter your extension to see your screen pops.';
    document.title = ext ? 'Rep console \\u00b7 ' + ext : 'Rep console';
    connect();
  }

  document.getElementById('ext-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = input.value.trim();
    var u = new URL(location.href);
    if (v) u.searchParams.set('ext', v); else u.searchParams.delete('ext');
    history.replaceState(null, '', u.pathname + u.search);
    watch(v);
  });
  watch(new URLSearchParams(location.search).get('ext') || input.value || '');
})();
`;
