/**
 * The rep console: a small node:http server that shows human hand-off screen pops to
 * the rep the call is being transferred to, live — and to nobody else.
 *
 * Who may see what:
 * - **Reps log in** (`/login`: rep id + password, or a per-rep login link) and get a
 *   session cookie (`HttpOnly; SameSite=Strict`, `Secure` when `publicUrl` is https,
 *   absolute lifetime `sessionMinutes`). A rep sees only pops whose target extension is in
 *   their `extensions` (extensions and queues; `*` = all); `?ext=` narrows within that.
 *   Someone else's pop is a 404. Failed logins are counted per rep/source and lock out.
 * - **Pop links**: the `X-Screen-Pop-Url` a rep's softphone opens is `/pops/<id>?t=<token>`,
 *   an HMAC over the id and an expiry (`popLinkMinutes`). It opens that one pop page (and
 *   its status stream) read-only without a login, nothing else; expired or forged, it
 *   leads to the login page.
 * - **No reps configured** = `loopback-demo` mode: no login, every pop visible — only
 *   when the console listens on loopback (the config refuses anything else; so does
 *   {@link startRepConsole}).
 * Without a session: `/healthz`, `/static/*` and `/login` answer; pages redirect (302) to
 * `/login?next=…`; `/api/*` and `/events` answer 401.
 *
 * Routes (anything else 404; a method a route does not take is 405 with `Allow`):
 * - `GET /`                 the console page (`?ext=1001` narrows to one of the rep's extensions)
 * - `GET /api/pops?ext=`    JSON array of the rep's pops, newest first
 * - `GET /api/pops/:id`     JSON of one pop (404 JSON error when unknown or not the rep's)
 * - `GET /api/session`      who is logged in: `{ mode, rep: { id, name, extensions }, expiresAt }`
 * - `GET /pops/:id[?t=]`    server-rendered HTML page of one pop (the `X-Screen-Pop-Url` target)
 * - `GET /events?ext=|pop=` Server-Sent Events: the current pops as `event: pop`, then `pop`
 *                           for new pops, `update` for changes, `remove` (`{id}`) when a pop
 *                           leaves the viewer's scope; `: keep-alive` every 15 s; the stream
 *                           ends when the session (or pop link) does
 * - `GET /login`, `POST /login`, `POST /logout`
 * - `GET /healthz`          200 `ok`
 * - `GET /static/<file>`    the pages' CSS and browser JS
 *
 * The pages, their CSS and their browser code are plain files in ./static, read from disk
 * at start (no external assets; CSP `'self'` only, no inline script or style). The server
 * fills placeholders with escaped text. Every piece of pop text is HTML-escaped on the server
 * and set with `textContent` in the browser.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ScreenPop, ScreenPopStore } from '../screen-pop.ts';
import { logger, type Logger } from '../../ops/log.ts';
import {
  isLoopback, LoginLimiter, PopLinks, repSees, SessionStore, verifyLoginToken, verifyPassword,
  type LoginLimits, type Session,
} from './auth.ts';
import type { ConsoleRep } from './settings.ts';

export interface RepConsoleOptions {
  store: ScreenPopStore;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @defaultValue 8088 */
  port?: number;
  log?: Logger;
  /** SSE keep-alive comment interval (also when an ended session closes its streams). @defaultValue 15000 */
  keepAliveMs?: number;
  /** Reps who may log in. None: `loopback-demo` mode, refused off loopback. @defaultValue [] */
  reps?: readonly ConsoleRep[];
  /** Base of the links put in SIP headers (`https:` → the session cookie is `Secure`). @defaultValue the listen URL */
  publicUrl?: string;
  /** @defaultValue 720 */
  sessionMinutes?: number;
  /** @defaultValue 10 */
  popLinkMinutes?: number;
  /** failed-login limits (tests make them small) */
  loginLimits?: Partial<LoginLimits>;
  /** clock for sessions, links and lockouts (tests move it). @defaultValue Date.now */
  now?: () => number;
}

export type RepConsoleMode = 'login' | 'loopback-demo';

export interface RepConsole {
  /** `http://host:port` */
  url: string;
  port: number;
  mode: RepConsoleMode;
  /** absolute URL of one pop's page (needs a login) */
  popUrl(id: string): string;
  /** the same with a short-lived read-only token: what goes into `X-Screen-Pop-Url` */
  popLink(id: string, ttlMs?: number): string;
  /** stops listening, ends open SSE streams and connections */
  close(): Promise<void>;
}

const MAX_EXT_LEN = 64;
/** an SSE client that has this much unsent data is too slow and is dropped */
const MAX_SSE_BUFFER = 1 << 20;
const MAX_FORM_BYTES = 4096;
/** password checks (scrypt, 32 MiB each) running at once; more get 503 */
const MAX_VERIFYING = 4;

/** Who is asking: a logged-in rep, anyone (loopback-demo), or the holder of one pop's link. */
type Viewer =
  | { kind: 'demo' }
  | { kind: 'rep'; session: Session }
  | { kind: 'link'; popId: string; expiresAt: number };

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
  const now = opts.now ?? Date.now;
  const reps = new Map((opts.reps ?? []).map((r) => [r.id, r]));
  const mode: RepConsoleMode = reps.size ? 'login' : 'loopback-demo';
  if (mode === 'loopback-demo' && !isLoopback(host)) {
    throw new Error(`rep console: no reps configured (console.reps) while listening on ${host}, off loopback; refusing to serve screen pops to anyone who connects`);
  }
  const publicUrl = opts.publicUrl?.replace(/\/+$/, '');
  const publicOrigin = publicUrl ? new URL(publicUrl).origin : undefined;
  const secure = publicUrl?.startsWith('https:') ?? false;
  const cookieName = secure ? '__Host-va-console' : 'va-console';
  const sessionMs = (opts.sessionMinutes ?? 720) * 60_000;
  const sessions = new SessionStore(sessionMs, now);
  const links = new PopLinks((opts.popLinkMinutes ?? 10) * 60_000, now);
  const limiter = new LoginLimiter(opts.loginLimits, now);
  let verifying = 0;

  const files = loadStatic();
  const sockets = new Set<Socket>();
  /** open SSE streams: their closers and the session they belong to */
  const streams = new Map<() => void, string | undefined>();

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
    handle(req, res).catch((err: unknown) => {
      log.error('request failed', { method: req.method, path, err: err as Error });
      fail(res, err);
    });
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

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const p = url.pathname;
    let m: RegExpExecArray | null;

    // open to everyone: no caller data behind these
    if (p === '/login') {
      if (req.method === 'POST') return login(req, res);
      if (req.method !== 'GET') return notAllowed(res, 'GET, POST');
      return loginPage(req, res, url);
    }
    if (p === '/logout') {
      if (req.method !== 'POST') return notAllowed(res, 'POST');
      return logout(req, res);
    }
    if (req.method !== 'GET') return notAllowed(res, 'GET');
    if (p === '/healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok');
    if ((m = /^\/static\/([a-z-]+\.(?:css|js))$/.exec(p)) && files.assets[m[1]!] !== undefined) {
      return send(res, 200, STATIC_ASSETS[m[1]!]!, files.assets[m[1]!]!, { 'Cache-Control': 'no-cache' });
    }

    const viewer = whoIs(req);
    const ext = extParam(url);
    if (p === '/') {
      if (!viewer) return toLogin(res, p + url.search);
      return sendHtml(res, 200, consolePage(viewer, ext), FORM_PAGE);
    }
    if (p === '/api/session') {
      if (!viewer) return unauthorized(res);
      if (viewer.kind === 'demo') return sendJson(res, 200, { mode });
      const { rep, expiresAt } = viewer.session;
      return sendJson(res, 200, { mode, rep: { id: rep.id, name: rep.name, extensions: rep.extensions }, expiresAt });
    }
    if (p === '/api/pops') {
      if (!viewer) return unauthorized(res);
      return sendJson(res, 200, store.list().filter(scope(viewer, ext)));
    }
    if ((m = /^\/api\/pops\/([^/]+)$/.exec(p))) {
      if (!viewer) return unauthorized(res);
      const pop = lookup(m[1]!);
      return pop && sees(viewer, pop) ? sendJson(res, 200, pop) : sendJson(res, 404, { error: 'screen pop not found' });
    }
    if ((m = /^\/pops\/([^/]+)$/.exec(p))) {
      const id = decode(m[1]!);
      let v: Viewer | null = viewer;
      const t = url.searchParams.get('t');
      let expired = false;
      if (id !== undefined && t !== null && !(v && lookupVisible(v, id))) {
        const c = links.check(id, t);
        if (c.ok) v = { kind: 'link', popId: id, expiresAt: c.expiresAt };
        else {
          expired = c.why === 'expired';
          log.info('screen-pop link refused', { popId: id, why: c.why, source: req.socket.remoteAddress });
        }
      }
      if (!v) return toLogin(res, p, expired ? 'expired' : undefined);
      const pop = id === undefined ? undefined : lookupVisible(v, id);
      if (!pop) return sendHtml(res, 404, files.notFound);
      return sendHtml(res, 200, popPage(files.pop, pop, accessNote(v)));
    }
    if (p === '/events') {
      let v: Viewer | null = viewer;
      const popId = url.searchParams.get('pop') ?? undefined;
      const t = url.searchParams.get('t');
      if (popId !== undefined && t !== null && !(v && lookupVisible(v, popId))) {
        const c = links.check(popId, t);
        if (c.ok) v = { kind: 'link', popId, expiresAt: c.expiresAt };
      }
      if (!v) return unauthorized(res);
      return events(req, res, v, ext, popId);
    }
    return sendJson(res, 404, { error: 'not found' });
  }

  // ------------------------------------------------------------ who may see what

  function cookie(req: IncomingMessage): string | undefined {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const i = part.indexOf('=');
      if (i > 0 && part.slice(0, i).trim() === cookieName) return part.slice(i + 1).trim();
    }
    return undefined;
  }

  function whoIs(req: IncomingMessage): Exclude<Viewer, { kind: 'link' }> | null {
    if (mode === 'loopback-demo') return { kind: 'demo' };
    const session = sessions.get(cookie(req));
    return session ? { kind: 'rep', session } : null;
  }

  /** Is the viewer (still) allowed anything? A session can end, a link can expire. */
  function valid(v: Viewer): boolean {
    if (v.kind === 'rep') return sessions.get(v.session.id) === v.session;
    if (v.kind === 'link') return v.expiresAt > now();
    return true;
  }

  function sees(v: Viewer, pop: ScreenPop): boolean {
    if (v.kind === 'demo') return true;
    if (v.kind === 'link') return pop.id === v.popId;
    return repSees(v.session.rep, pop.target?.extension);
  }

  /** what one request shows: what the viewer may see, narrowed by `?ext=` (and `pop=`) */
  function scope(v: Viewer, ext: string, popId?: string): (pop: ScreenPop) => boolean {
    return (pop) => sees(v, pop) && (!ext || pop.target?.extension === ext) && (popId === undefined || pop.id === popId);
  }

  function lookupVisible(v: Viewer, id: string): ScreenPop | undefined {
    const pop = store.get(id);
    return pop && sees(v, pop) ? pop : undefined;
  }

  function lookup(raw: string): ScreenPop | undefined {
    const id = decode(raw);
    return id === undefined ? undefined : store.get(id);
  }

  // ------------------------------------------------------------ login / logout

  function cookieHeader(value: string, maxAgeS: number): string {
    return `${cookieName}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }

  /** a POST from a page of ours (or from no browser at all), not from another site */
  function sameOrigin(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    if (origin === 'null') return site === 'same-origin'; // a no-referrer page; the fetch metadata decides
    try {
      const o = new URL(origin);
      return o.origin === publicOrigin || o.host === req.headers.host;
    } catch {
      return false; // "null" and garbage
    }
  }

  function loginPage(req: IncomingMessage, res: ServerResponse, url: URL, status = 200, notice = '', rep = '', extra: Record<string, string> = {}): void {
    const next = safeNext(url.searchParams.get('next'));
    if (mode === 'loopback-demo' || whoIs(req)) return redirect(res, 303, next);
    if (!notice) {
      if (url.searchParams.get('expired')) notice = 'That screen-pop link has expired. Log in to see the pop.';
      else if (url.searchParams.get('out')) notice = 'You are logged out.';
      else if (url.searchParams.has('next')) notice = 'Log in to see screen pops.';
    }
    return sendHtml(res, status, fill(files.login, { notice: escapeHtml(notice), rep: escapeHtml(rep), next: escapeHtml(next) }), { ...extra, ...FORM_PAGE });
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-site login refused' });
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
      return sendJson(res, 415, { error: 'expected a form (application/x-www-form-urlencoded)' });
    }
    const body = await readBody(req, MAX_FORM_BYTES);
    if (body === null) {
      res.setHeader('Connection', 'close');
      return sendJson(res, 413, { error: 'form too large' });
    }
    const form = new URLSearchParams(body);
    const repId = (form.get('rep') ?? '').trim().slice(0, 64);
    const password = form.get('password') ?? '';
    const token = form.get('token') ?? '';
    const next = safeNext(form.get('next'));
    const back = new URL(`http://console.invalid/login?next=${encodeURIComponent(next)}`);
    if (mode === 'loopback-demo') return redirect(res, 303, next);
    const source = req.socket.remoteAddress ?? 'unknown';
    const logId = repId.replace(/[^\x21-\x7e]/g, '?');

    const lockedMs = limiter.lockedFor(repId, source);
    if (lockedMs > 0) {
      log.warn('rep login refused: locked out', { rep: logId, source, retryS: Math.ceil(lockedMs / 1000) });
      return loginPage(req, res, back, 429, lockedNotice(lockedMs), repId, { 'Retry-After': String(Math.ceil(lockedMs / 1000)) });
    }
    if (!repId || (!password && !token)) return loginPage(req, res, back, 400, 'Enter your rep id and password.', repId);
    if (verifying >= MAX_VERIFYING) {
      return loginPage(req, res, back, 503, 'The console is busy; try again in a moment.', repId, { 'Retry-After': '1' });
    }
    const rep = reps.get(repId);
    let ok: boolean;
    verifying++;
    try {
      ok = password ? await verifyPassword(password, rep?.passwordHash) : verifyLoginToken(token, rep?.loginTokenHash);
    } finally {
      verifying--;
    }
    if (!ok || !rep) {
      const locked = limiter.fail(repId, source);
      log.warn('rep login failed', { rep: logId, source, with: password ? 'password' : 'link', ...(locked ? { lockedS: Math.ceil(locked / 1000) } : {}) });
      if (locked) return loginPage(req, res, back, 429, lockedNotice(locked), repId, { 'Retry-After': String(Math.ceil(locked / 1000)) });
      return loginPage(req, res, back, 401, password ? 'Wrong rep id or password.' : 'That login link is not valid.', repId);
    }
    limiter.succeed(repId, source);
    const s = sessions.create(rep);
    log.info('rep logged in', { rep: rep.id, source, with: password ? 'password' : 'link', extensions: rep.extensions.join(',') });
    res.setHeader('Set-Cookie', cookieHeader(s.id, Math.floor(sessionMs / 1000)));
    return redirect(res, 303, next);
  }

  function logout(req: IncomingMessage, res: ServerResponse): void {
    if (!sameOrigin(req)) return sendJson(res, 403, { error: 'cross-site logout refused' });
    if (mode === 'loopback-demo') return redirect(res, 303, '/');
    const sid = cookie(req);
    const s = sessions.get(sid);
    if (sid !== undefined && sessions.destroy(sid)) {
      for (const [end, of] of [...streams]) if (of === sid) end();
      if (s) log.info('rep logged out', { rep: s.rep.id });
    }
    res.setHeader('Set-Cookie', cookieHeader('', 0));
    return redirect(res, 303, '/login?out=1');
  }

  // ------------------------------------------------------------ pages

  function consolePage(v: Viewer, ext: string): string {
    const who = v.kind === 'rep'
      ? `${v.session.rep.name} · ${v.session.rep.extensions.join(', ')}`
      : 'loopback-demo: no login, every screen pop is shown';
    const exts = v.kind === 'rep' ? v.session.rep.extensions.join(' ') : '*';
    return fill(files.console, { ext: escapeHtml(ext), mode: escapeHtml(mode), who: escapeHtml(who), exts: escapeHtml(exts) });
  }

  function accessNote(v: Viewer): string {
    if (v.kind === 'link') return `Opened with a screen-pop link, valid until ${fmtTime(v.expiresAt)}. Log in to the console for more.`;
    if (v.kind === 'rep') return `Logged in as ${v.session.rep.name}.`;
    return 'loopback-demo: no login.';
  }

  // ------------------------------------------------------------ events

  function events(req: IncomingMessage, res: ServerResponse, v: Viewer, ext: string, popId: string | undefined): void {
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

    const sent = new Set<string>(); // pop ids this client has (and may still see)
    const matches = scope(v, ext, popId);
    const who = v.kind === 'rep' ? v.session.rep.id : v.kind;
    const write = (chunk: string): void => {
      if (res.destroyed || res.writableEnded) return;
      if (res.writableLength > MAX_SSE_BUFFER) {
        log.warn('dropping slow SSE client', { ext, who });
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
    // a re-targeted pop: new to this client → `pop`; left its scope → `remove` with the id only
    const onUpdate = (pop: ScreenPop): void => {
      if (matches(pop)) emit(sent.has(pop.id) ? 'update' : 'pop', pop);
      else if (sent.delete(pop.id)) write(`event: remove\nid: ${sseSafe(pop.id)}\ndata: ${JSON.stringify({ id: pop.id })}\n\n`);
    };
    const timer = setInterval(() => {
      if (!valid(v)) {
        log.debug('sse stream ends with its session or link', { who });
        return end();
      }
      write(': keep-alive\n\n');
    }, keepAliveMs);
    timer.unref();

    let closed = false;
    const cleanup = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      store.off('pop', onPop);
      store.off('update', onUpdate);
      streams.delete(end);
      log.debug('sse client gone', { ext, who });
    };
    const end = (): void => {
      cleanup();
      if (!res.writableEnded) res.end();
    };
    streams.set(end, v.kind === 'rep' ? v.session.id : undefined);
    res.on('close', cleanup);

    store.on('pop', onPop);
    store.on('update', onUpdate);
    write('retry: 2000\n\n');
    // oldest first, so the last one a client receives is the newest
    for (const pop of store.list().filter(matches).reverse()) emit('pop', pop);
    log.debug('sse client connected', { ext, who, pops: sent.size });
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
  const base = publicUrl ?? url;
  if (mode === 'loopback-demo') {
    log.warn('rep console in loopback-demo mode: no reps configured (console.reps), so there is no login and every screen pop is shown to anyone on this host', { url });
  } else {
    log.info('rep console listening', { url, reps: reps.size, secureCookie: secure });
    if (!secure && !isLoopback(host)) {
      log.warn('rep console: passwords and session cookies cross the network unencrypted; serve it through https and set console.publicUrl to the https URL', { url });
    }
  }

  let closing: Promise<void> | undefined;
  const popUrl = (id: string): string => `${base}/pops/${encodeURIComponent(id)}`;
  return {
    url,
    port,
    mode,
    popUrl,
    popLink: (id, ttlMs) => `${popUrl(id)}?t=${links.mint(id, ttlMs)}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const end of [...streams.keys()]) end();
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

function decode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined; // malformed %-escape
  }
}

/** a local path to go to after logging in; anything else (other hosts, //x, /login) is `/` */
function safeNext(raw: string | null): string {
  if (!raw || raw.length > 512 || !/^\/(?![/\\])[\x21-\x7e]*$/.test(raw)) return '/';
  return /^\/log(?:in|out)\b/.test(raw) ? '/' : raw;
}

function lockedNotice(ms: number): string {
  const min = Math.ceil(ms / 60_000);
  return `Too many failed logins. Try again in ${min} minute${min === 1 ? '' : 's'}.`;
}

/** The request body as text, or null when it is larger than `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
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

function sendHtml(res: ServerResponse, status: number, html: string, extra: Record<string, string> = {}): void {
  send(res, status, 'text/html; charset=utf-8', html, {
    ...extra,
    'Content-Security-Policy':
      "default-src 'none'; script-src 'self'; style-src 'self'; " +
      "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  });
}

/**
 * Pages with a form that POSTs (login, logout): with `no-referrer` browsers send `Origin: null`
 * on the POST; `same-origin` lets them name our origin (and send no Referer elsewhere).
 */
const FORM_PAGE = { 'Referrer-Policy': 'same-origin' };

function notAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('Allow', allow);
  sendJson(res, 405, { error: 'method not allowed' });
}

function unauthorized(res: ServerResponse): void {
  sendJson(res, 401, { error: 'login required' });
}

function redirect(res: ServerResponse, status: 302 | 303, location: string): void {
  send(res, status, 'text/plain; charset=utf-8', '', { Location: location });
}

/** pages without a session go to the login page, which comes back here afterwards */
function toLogin(res: ServerResponse, next: string, why?: 'expired'): void {
  redirect(res, 302, `/login?next=${encodeURIComponent(safeNext(next))}${why ? `&${why}=1` : ''}`);
}

// ---------------------------------------------------------------- pages

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));
/** assets under /static/ and their content types (the .html pages are not served raw) */
const STATIC_ASSETS: Record<string, string> = {
  'console.css': 'text/css; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'pop.js': 'text/javascript; charset=utf-8',
  'login.js': 'text/javascript; charset=utf-8',
};

interface StaticFiles { console: string; pop: string; login: string; notFound: string; assets: Record<string, string> }

/** Read the pages and assets once; a missing file fails start-up naming its path. */
function loadStatic(): StaticFiles {
  const read = (f: string): string => readFileSync(STATIC_DIR + f, 'utf8');
  const assets: Record<string, string> = {};
  for (const f of Object.keys(STATIC_ASSETS)) assets[f] = read(f);
  return { console: read('console.html'), pop: read('pop.html'), login: read('login.html'), notFound: read('not-found.html'), assets };
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

function popPage(tpl: string, pop: ScreenPop, access: string): string {
  const title = `Screen pop: ${pop.caller?.name || pop.caller?.phone || pop.id}`;
  return fill(tpl, { title: escapeHtml(title), pop: renderPopDetail(pop), access: escapeHtml(access) });
}
