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
 * - `/static/<file>`  the pages' CSS and browser JS
 *
 * The pages, their CSS and their browser code are plain files in ./static, read from disk
 * at start (no external assets; CSP `'self'` only, no inline script or style). The server
 * fills two placeholders: the escaped extension of the console page and the server-rendered
 * detail of a pop page. Every piece of pop text is HTML-escaped on the server and set with
 * `textContent` in the browser.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ScreenPop, ScreenPopStore } from '../screen-pop.ts';
import { logger, type Logger } from '../../ops/log.ts';

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

  const files = loadStatic();
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
    if (p === '/') return sendHtml(res, 200, fill(files.console, { ext: escapeHtml(ext) }));
    if (p === '/healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok');
    if (p === '/api/pops') return sendJson(res, 200, store.list(ext ? { extension: ext } : {}));
    if ((m = /^\/api\/pops\/([^/]+)$/.exec(p))) {
      const pop = lookup(m[1]!);
      return pop ? sendJson(res, 200, pop) : sendJson(res, 404, { error: 'screen pop not found' });
    }
    if ((m = /^\/pops\/([^/]+)$/.exec(p))) {
      const pop = lookup(m[1]!);
      if (!pop) return sendHtml(res, 404, files.notFound);
      return sendHtml(res, 200, popPage(files.pop, pop));
    }
    if (p === '/events') return events(req, res, ext);
    if ((m = /^\/static\/([a-z-]+\.(?:css|js))$/.exec(p)) && files.assets[m[1]!] !== undefined) {
      return send(res, 200, STATIC_ASSETS[m[1]!]!, files.assets[m[1]!]!);
    }
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

function sendHtml(res: ServerResponse, status: number, html: string): void {
  send(res, status, 'text/html; charset=utf-8', html, {
    'Content-Security-Policy':
      "default-src 'none'; script-src 'self'; style-src 'self'; " +
      "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'",
  });
}

// ---------------------------------------------------------------- pages

// ---------------------------------------------------------------- pages

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));
/** assets under /static/ and their content types (the .html pages are not served raw) */
const STATIC_ASSETS: Record<string, string> = {
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'pop.js': 'text/javascript; charset=utf-8',
};

interface StaticFiles { console: string; pop: string; notFound: string; assets: Record<string, string> }

/** Read the pages and assets once; a missing file fails start-up naming its path. */
function loadStatic(): StaticFiles {
  const read = (f: string): string => readFileSync(STATIC_DIR + f, 'utf8');
  const assets: Record<string, string> = {};
  for (const f of Object.keys(STATIC_ASSETS)) assets[f] = read(f);
  return { console: read('console.html'), pop: read('pop.html'), notFound: read('not-found.html'), assets };
}

/** Replace `{{name}}` placeholders with already-escaped HTML. */
function fill(tpl: string, vars: Record<string, string>): string {
  return tpl.replace(/\{\{(\w+)\}\}/g, (_, k: string) => vars[k] ?? '');
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

function popPage(tpl: string, pop: ScreenPop): string {
  const title = `Screen pop: ${pop.caller?.name || pop.caller?.phone || pop.id}`;
  return fill(tpl, { title: escapeHtml(title), pop: renderPopDetail(pop) });
}
