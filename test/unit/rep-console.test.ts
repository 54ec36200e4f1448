import t from 'tap';
import { request, type IncomingMessage } from 'node:http';
import { ScreenPopStore, type ScreenPop } from '../../src/escalation/screen-pop.ts';
import { startRepConsole, escapeHtml } from '../../src/escalation/console/server.ts';
import type { Logger } from '../../src/ops/log.ts';

let seq = 0;
function makePop(over: Partial<ScreenPop> = {}): ScreenPop {
  seq++;
  return {
    id: `pop-${seq}`,
    callId: `call-${seq}@127.0.0.1`,
    tenantId: 'acme',
    tenantName: 'Acme Supply',
    createdAt: 1_700_000_000_000 + seq * 1000,
    status: 'ringing',
    target: { name: 'Dana Whitfield', extension: '1001', kind: 'rep' },
    trigger: 'explicit',
    reason: 'caller asked for a person during a reorder: "get me a human"',
    caller: { phone: '+15551230000', name: 'Pat Jones', language: 'en' },
    account: { id: 'A1', name: 'Jones Plumbing', number: '88812', tier: 'gold' },
    transcript: [
      { role: 'agent', text: 'Thanks for calling Acme, how can I help?', at: 1_700_000_000_000 },
      { role: 'caller', text: 'get me a human', at: 1_700_000_001_000 },
    ],
    order: {
      pending: { lines: [{ sku: 'PV-100', qty: 4, description: '1/2" ball valve' }], po_number: 'PO-7' },
      placed: [{ order_number: 'SO-1234', ship_date: '2024-05-01' }],
      status: { state: 'shipped', carrier: 'UPS' },
    },
    summary: 'explicit: caller asked for a person',
    ...over,
  };
}

function captureLog(): { log: Logger; lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const mk = (): Logger => ({
    debug: (msg, fields) => lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
    child: () => mk(),
  });
  return { log: mk(), lines };
}

interface Res {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}
function http(url: string, method = 'GET', headers: Record<string, string> = {}, body?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

interface SseEvent {
  event: string;
  data: string;
}
/** A tiny SSE client: collects events and comments; `waitFor` resolves on a matching event. */
function sse(url: string, headers: Record<string, string> = {}): Promise<{
  res: IncomingMessage;
  events: SseEvent[];
  comments: string[];
  waitFor(pred: (e: SseEvent[], c: string[]) => boolean, ms?: number): Promise<void>;
  close(): void;
}> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const comments: string[] = [];
    const waiters: Array<() => void> = [];
    let buf = '';
    const req = request(url, { headers }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('event:')) (event = line.slice(6).trim()), (isEvent = true);
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart()), (isEvent = true);
          }
          if (isEvent && data.length) events.push({ event, data: data.join('\n') });
        }
        for (const w of [...waiters]) w();
      });
      res.on('error', () => {});
      resolve({
        res,
        events,
        comments,
        waitFor(pred, ms = 3000) {
          return new Promise((ok, fail) => {
            if (pred(events, comments)) return ok();
            const timer = setTimeout(() => {
              waiters.splice(waiters.indexOf(check), 1);
              fail(new Error(`SSE wait timed out; got ${JSON.stringify(events.map((e) => e.event))}`));
            }, ms);
            const check = (): void => {
              if (!pred(events, comments)) return;
              clearTimeout(timer);
              waiters.splice(waiters.indexOf(check), 1);
              ok();
            };
            waiters.push(check);
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', (err) => {
      if (!(err as NodeJS.ErrnoException).code?.includes('ECONNRESET')) reject(err);
    });
    req.end();
  });
}

async function until(pred: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return pred();
}

t.test('escapeHtml escapes the five specials', async (t) => {
  t.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  t.equal(escapeHtml(undefined), '');
});

t.test('plain routes', async (t) => {
  const store = new ScreenPopStore();
  const { log, lines } = captureLog();
  const rc = await startRepConsole({ store, port: 0, log });
  t.teardown(() => rc.close());
  t.ok(rc.port > 0, 'free port picked');
  t.equal(rc.url, `http://127.0.0.1:${rc.port}`);
  t.equal(rc.popUrl('a b/c'), `${rc.url}/pops/a%20b%2Fc`);

  const a = store.add(makePop({ target: { name: 'Dana', extension: '1001' } }));
  const b = store.add(makePop({ target: { name: 'Billing', extension: '2000', kind: 'queue' } }));
  const c = store.add(makePop({ target: { name: 'Dana', extension: '1001' } }));

  t.test('healthz', async (t) => {
    const r = await http(`${rc.url}/healthz`);
    t.equal(r.status, 200);
    t.equal(r.body, 'ok');
  });

  t.test('console page', async (t) => {
    const r = await http(`${rc.url}/?ext=1001`);
    t.equal(r.status, 200);
    t.match(r.headers['content-type'], /^text\/html/);
    for (const id of ['id="pops"', 'id="pop"', 'id="ext"']) t.ok(r.body.includes(id), id);
    t.ok(r.body.includes('value="1001"'), 'extension prefilled');
    t.notMatch(r.body, /<img\b|(?:src|href)="(?!data:|\/static\/)/, 'no external assets');
    t.notMatch(r.body, /<script>|<style>/, 'no inline script or style');
    const csp = String(r.headers['content-security-policy']);
    t.match(csp, /script-src 'self'/, 'CSP allows only same-origin scripts');
    t.match(csp, /style-src 'self'/, 'CSP allows only same-origin styles');
    t.ok(r.body.includes('<script src="/static/console.js"></script>'), 'page script served from disk');
    for (const [f, type] of [['console.js', /^text\/javascript/], ['console.css', /^text\/css/], ['pop.js', /^text\/javascript/]] as const) {
      const a = await http(`${rc.url}/static/${f}`);
      t.equal(a.status, 200, f);
      t.match(a.headers['content-type'], type, `${f} content type`);
      t.ok(a.body.length > 100, `${f} has content`);
    }
    t.equal((await http(`${rc.url}/static/console.html`)).status, 404, 'only the listed assets are served');
    t.equal((await http(`${rc.url}/static/..%2fserver.ts`)).status, 404, 'no path escape');

    const x = await http(`${rc.url}/?ext=${encodeURIComponent('"><script>alert(1)</script>')}`);
    t.equal(x.status, 200);
    t.notOk(x.body.includes('<script>alert(1)'), 'ext is escaped');
    t.ok(x.body.includes('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  t.test('list', async (t) => {
    const all = await http(`${rc.url}/api/pops`);
    t.equal(all.status, 200);
    t.match(all.headers['content-type'], /^application\/json/);
    t.same((JSON.parse(all.body) as ScreenPop[]).map((p) => p.id), [c.id, b.id, a.id], 'newest first');
    const mine = JSON.parse((await http(`${rc.url}/api/pops?ext=1001`)).body) as ScreenPop[];
    t.same(mine.map((p) => p.id), [c.id, a.id], 'filtered by extension');
    const none = JSON.parse((await http(`${rc.url}/api/pops?ext=9999`)).body) as ScreenPop[];
    t.same(none, []);
  });

  t.test('one', async (t) => {
    const r = await http(`${rc.url}/api/pops/${b.id}`);
    t.equal(r.status, 200);
    t.same(JSON.parse(r.body), b);
    const nf = await http(`${rc.url}/api/pops/nope`);
    t.equal(nf.status, 404);
    t.match(nf.headers['content-type'], /^application\/json/);
    t.match(JSON.parse(nf.body), { error: String });
    const bad = await http(`${rc.url}/api/pops/%E0%A4%A`);
    t.equal(bad.status, 404, 'malformed escape is a 404, not a crash');
  });

  t.test('404 and 405', async (t) => {
    const nf = await http(`${rc.url}/nowhere`);
    t.equal(nf.status, 404);
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const r = await http(`${rc.url}/api/pops`, m);
      t.equal(r.status, 405, m);
      t.equal(r.headers['allow'], 'GET');
    }
    const h = await http(`${rc.url}/healthz`, 'HEAD');
    t.equal(h.status, 405);
    t.equal(h.headers['allow'], 'GET');
  });

  t.test('pop page is server-rendered and escaped', async (t) => {
    const evil = makePop({
      reason: 'caller said <script>alert("x")</script> & left',
      caller: { phone: '+1555<b>', name: 'Eve <img src=x onerror=alert(1)>', language: 'en' },
      transcript: [
        { role: 'caller', text: '<i>one</i>', at: 1 },
        { role: 'agent', text: 'two & three', at: 2 },
      ],
    });
    store.add(evil);
    const r = await http(rc.popUrl(evil.id));
    t.equal(r.status, 200);
    t.match(r.headers['content-type'], /^text\/html/);
    t.ok(r.body.includes('caller said &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; left'), 'reason escaped');
    t.notOk(r.body.includes('<script>alert'), 'no raw script');
    t.notOk(r.body.includes('<img src=x'), 'no raw img');
    t.match(r.body, /<p id="pop-reason">caller said &lt;script&gt;/);
    t.match(r.body, /id="pop-caller"/);
    t.match(r.body, /id="pop-account"[^>]*>.*Jones Plumbing.*88812.*gold/s);
    t.match(r.body, /id="pop-status"[^>]*>ringing</);
    const ol = /<ol id="pop-transcript">(.*?)<\/ol>/s.exec(r.body)?.[1] ?? '';
    t.equal(ol.match(/<li\b/g)?.length, 2, 'one li per transcript line');
    t.ok(ol.includes('&lt;i&gt;one&lt;/i&gt;'));
    t.ok(r.body.includes('PV-100') && r.body.includes('SO-1234') && r.body.includes('shipped'), 'order context');
    t.ok(r.body.includes('explicit'), 'trigger');
    t.ok(r.body.includes('Dana Whitfield'), 'target');

    const nf = await http(`${rc.url}/pops/unknown`);
    t.equal(nf.status, 404);
    t.match(nf.headers['content-type'], /^text\/html/);
  });

  t.test('every request is logged at debug', async (t) => {
    await http(`${rc.url}/healthz?probe=1`);
    t.ok(
      await until(() => lines.some((l) => l.level === 'debug' && l.msg === 'request' && l.fields?.path === '/healthz')),
    );
    const l = lines.find((l) => l.msg === 'request' && l.fields?.path === '/healthz')!;
    t.match(l.fields, { method: 'GET', status: 200, ms: Number });
  });
});

t.test('server-sent events', async (t) => {
  const store = new ScreenPopStore();
  const { log } = captureLog();
  const rc = await startRepConsole({ store, port: 0, log, keepAliveMs: 100 });
  t.teardown(() => rc.close());
  const baseline = { pop: store.listenerCount('pop'), update: store.listenerCount('update') };

  const existing = store.add(makePop({ target: { name: 'Dana', extension: '1001' } }));
  store.add(makePop({ target: { name: 'Billing', extension: '2000' } }));

  const c = await sse(`${rc.url}/events?ext=1001`);
  t.equal(c.res.statusCode, 200);
  t.match(c.res.headers['content-type'], /^text\/event-stream/);
  await c.waitFor((e) => e.length >= 1);
  t.equal(c.events[0]!.event, 'pop');
  t.same(JSON.parse(c.events[0]!.data), existing, 'the existing pop for the extension first');
  t.equal(store.listenerCount('pop'), baseline.pop + 1, 'pop listener added');
  t.equal(store.listenerCount('update'), baseline.update + 1, 'update listener added');

  store.add(makePop({ target: { name: 'Billing', extension: '2000' } })); // other extension: not sent
  const fresh = store.add(makePop({ target: { name: 'Dana', extension: '1001' }, reason: 'line\nbreak' }));
  await c.waitFor((e) => e.length >= 2);
  t.equal(c.events[1]!.event, 'pop');
  t.same(JSON.parse(c.events[1]!.data), fresh, 'the new pop (multi-line text survives)');

  store.update(fresh.id, { status: 'connected', statusReason: 'rep answered' });
  await c.waitFor((e) => e.length >= 3);
  t.equal(c.events[2]!.event, 'update');
  t.match(JSON.parse(c.events[2]!.data), { id: fresh.id, status: 'connected', statusReason: 'rep answered' });
  t.equal(c.events.length, 3, 'nothing for other extensions');

  await c.waitFor((_e, comments) => comments.includes('keep-alive'));
  t.pass('keep-alive comment received');

  c.close();
  t.ok(await until(() => store.listenerCount('pop') === baseline.pop), 'pop listener removed on disconnect');
  t.ok(await until(() => store.listenerCount('update') === baseline.update), 'update listener removed on disconnect');

  // store keeps working with no clients
  store.add(makePop());
  t.equal(store.listenerCount('pop'), baseline.pop);
});

t.test('SSE without ext gets every pop; re-targeted pops follow', async (t) => {
  const store = new ScreenPopStore();
  const rc = await startRepConsole({ store, port: 0, log: captureLog().log });
  t.teardown(() => rc.close());
  const all = await sse(`${rc.url}/events`);
  const mine = await sse(`${rc.url}/events?ext=3003`);
  const p1 = store.add(makePop({ target: { name: 'A', extension: '1001' } }));
  store.add(makePop({ target: { name: 'B', extension: '2000' } }));
  await all.waitFor((e) => e.length >= 2);
  t.same(all.events.map((e) => e.event), ['pop', 'pop']);
  // failed over to extension 3003: that console gets it as a new pop
  store.update(p1.id, { target: { name: 'C', extension: '3003' } });
  await mine.waitFor((e) => e.length >= 1);
  t.equal(mine.events[0]!.event, 'pop');
  t.equal((JSON.parse(mine.events[0]!.data) as ScreenPop).id, p1.id);
  all.close();
  mine.close();
});

t.test('close() ends open SSE streams; bad data does not crash', async (t) => {
  const store = new ScreenPopStore();
  const { log, lines } = captureLog();
  const rc = await startRepConsole({ store, port: 0, log });
  const c = await sse(`${rc.url}/events?ext=1001`);
  const circular = makePop() as ScreenPop & { self?: unknown };
  circular.self = circular;
  t.doesNotThrow(() => store.add(circular), 'unserialisable pop is skipped');
  t.ok(lines.some((l) => l.level === 'warn'), 'and logged');
  store.add(makePop());
  await c.waitFor((e) => e.length >= 1);
  const ended = new Promise<void>((r) => c.res.on('close', () => r()));
  await rc.close();
  await ended;
  t.equal(store.listenerCount('pop'), 0, 'listeners gone after close');
  await rc.close(); // idempotent
  await t.rejects(http(`${rc.url}/healthz`), 'no longer listening');
});

t.test('listen errors reject', async (t) => {
  const store = new ScreenPopStore();
  const a = await startRepConsole({ store, port: 0, log: captureLog().log });
  t.teardown(() => a.close());
  await t.rejects(startRepConsole({ store, port: a.port, log: captureLog().log }), { code: 'EADDRINUSE' });
});

// ---------------------------------------------------------------- authentication

import { hashPassword, loginTokenHash } from '../../src/escalation/console/auth.ts';
import type { ConsoleRep } from '../../src/escalation/console/settings.ts';

/** cheap hashes keep the tests fast; the config refuses these (see rep-console-auth.test.ts) */
const FAST = { ln: 10, r: 8, p: 1 };
const LINK_SECRET = 'desk-seven-link-secret-0123456789abcdef';
async function reps(): Promise<ConsoleRep[]> {
  return [
    { id: 'maria', name: 'Maria Chen', extensions: ['1001', '2100'], passwordHash: await hashPassword('maria-secret-1', FAST) },
    { id: 'sam', name: 'Sam Ortiz', extensions: ['2000'], passwordHash: await hashPassword('sam-secret-22', FAST) },
    { id: 'desk-7', name: 'Desk 7', extensions: ['3003'], loginTokenHash: loginTokenHash(LINK_SECRET) },
  ];
}

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const form = (o: Record<string, string>): string => new URLSearchParams(o).toString();

/** POST /login; returns the response and the `name=value` of the session cookie, if any */
async function logIn(base: string, rep: string, password: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<{ r: Res; cookie: string }> {
  const r = await http(`${base}/login`, 'POST', { ...FORM, ...headers }, form({ rep, password, ...extra }));
  const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  return { r, cookie: set[0]?.split(';')[0] ?? '' };
}

function clock(): { now: () => number; advance(ms: number): void } {
  let t = Date.now();
  return { now: () => t, advance: (ms) => void (t += ms) };
}

t.test('login mode: every route without a session', async (t) => {
  const store = new ScreenPopStore();
  const rc = await startRepConsole({ store, port: 0, log: captureLog().log, reps: await reps() });
  t.teardown(() => rc.close());
  t.equal(rc.mode, 'login');
  const pop = store.add(makePop({ target: { name: 'Maria', extension: '1001' } }));
  const pii = [pop.caller.name!, pop.account!.name, 'get me a human', pop.caller.phone];
  const noPii = (r: Res, what: string): void => {
    for (const s of pii) t.notOk(r.body.includes(s), `${what}: no ${s}`);
  };

  const open = [['/healthz', 200, /^text\/plain/], ['/static/console.css', 200, /^text\/css/], ['/static/console.js', 200, /javascript/],
    ['/static/pop.js', 200, /javascript/], ['/static/login.js', 200, /javascript/], ['/login', 200, /^text\/html/]] as const;
  for (const [path, status, type] of open) {
    const r = await http(`${rc.url}${path}`);
    t.equal(r.status, status, `${path} is open`);
    t.match(r.headers['content-type'], type, `${path} content type`);
  }
  const lp = await http(`${rc.url}/login?next=${encodeURIComponent('/?ext=1001')}`);
  t.match(lp.body, /<form id="login-form"[^>]*method="post" action="\/login"/, 'login form');
  t.match(lp.body, /<input id="next" name="next" type="hidden" value="\/\?ext=1001">/, 'next carried');
  t.notMatch(lp.body, /<script>|<style>| on\w+=/, 'no inline code');
  t.match(String(lp.headers['content-security-policy']), /script-src 'self'.*frame-ancestors 'none'/);

  const pages: Array<[string, string]> = [
    ['/', '/login?next=%2F'],
    ['/?ext=1001', `/login?next=${encodeURIComponent('/?ext=1001')}`],
    [`/pops/${pop.id}`, `/login?next=${encodeURIComponent(`/pops/${pop.id}`)}`],
    [`/pops/${pop.id}?t=zzzz.AAAAAAAAAAAAAAAAAAAAAA`, `/login?next=${encodeURIComponent(`/pops/${pop.id}`)}`],
    ['/pops/nope', '/login?next=%2Fpops%2Fnope'],
  ];
  for (const [path, location] of pages) {
    const r = await http(`${rc.url}${path}`);
    t.equal(r.status, 302, `${path} redirects`);
    t.equal(r.headers.location, location, `${path} → login, back afterwards`);
    noPii(r, path);
  }
  for (const path of ['/api/pops', '/api/pops?ext=1001', `/api/pops/${pop.id}`, '/api/pops/nope', '/api/session', '/events', '/events?ext=1001',
    `/events?pop=${pop.id}`, `/events?pop=${pop.id}&t=zzzz.AAAAAAAAAAAAAAAAAAAAAA`]) {
    const r = await http(`${rc.url}${path}`);
    t.equal(r.status, 401, `${path} is 401`);
    t.same(JSON.parse(r.body), { error: 'login required' });
    noPii(r, path);
  }
  const bogus = await http(`${rc.url}/api/pops`, 'GET', { Cookie: 'va-console=not-a-session' });
  t.equal(bogus.status, 401, 'an unknown session cookie is no session');
  const out = await http(`${rc.url}/logout`, 'POST');
  t.equal(out.status, 303, 'logout without a session');
  t.equal(out.headers.location, '/login?out=1');
  t.match(String(out.headers['set-cookie']), /va-console=; Path=\/; Max-Age=0/, 'cookie cleared');
  t.equal((await http(`${rc.url}/logout`)).status, 405, 'GET /logout is 405');
  t.equal((await http(`${rc.url}/logout`)).headers.allow, 'POST');
  t.equal((await http(`${rc.url}/login`, 'PUT')).headers.allow, 'GET, POST');
  t.equal((await http(`${rc.url}/api/pops`, 'POST')).status, 405);
  t.equal((await http(`${rc.url}/nowhere`)).status, 404);
});

t.test('login mode: a rep logs in and sees only their extensions', async (t) => {
  const store = new ScreenPopStore();
  const { log, lines } = captureLog();
  const rc = await startRepConsole({ store, port: 0, log, reps: await reps(), keepAliveMs: 50 });
  t.teardown(() => rc.close());
  const mine = store.add(makePop({ target: { name: 'Maria', extension: '1001' } }));
  const queue = store.add(makePop({ target: { name: 'Sales', extension: '2100', kind: 'queue' } }));
  const other = store.add(makePop({ target: { name: 'Sam', extension: '2000' }, caller: { phone: '+15550009999', name: 'Other Caller', language: 'en' } }));

  const bad = await logIn(rc.url, 'maria', 'wrong');
  t.equal(bad.r.status, 401, 'wrong password');
  t.equal(bad.cookie, '', 'no cookie');
  t.match(bad.r.body, /Wrong rep id or password/);
  t.match(bad.r.body, /<input id="rep"[^>]*value="maria"/, 'rep id kept');
  t.equal((await logIn(rc.url, 'nobody', 'maria-secret-1')).r.status, 401, 'unknown rep');
  t.equal((await logIn(rc.url, 'maria', '')).r.status, 400, 'no password');
  t.ok(lines.some((l) => l.level === 'warn' && l.msg === 'rep login failed' && l.fields?.rep === 'maria'), 'failure logged');
  t.notOk(JSON.stringify(lines).includes('wrong'), 'the password is not logged');

  const { r, cookie } = await logIn(rc.url, 'maria', 'maria-secret-1', { next: '/?ext=1001' });
  t.equal(r.status, 303);
  t.equal(r.headers.location, '/?ext=1001', 'back where the rep was going');
  const set = String(r.headers['set-cookie']);
  t.match(set, /^va-console=[A-Za-z0-9_-]{43}; /, 'session cookie');
  for (const attr of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=43200']) t.ok(set.includes(attr), attr);
  t.notOk(set.includes('Secure'), 'not Secure over plain http without an https publicUrl');
  const C = { Cookie: cookie };

  const page = await http(`${rc.url}/`, 'GET', C);
  t.equal(page.status, 200);
  t.match(page.body, /<span id="who">Maria Chen · 1001, 2100<\/span>/, 'who is logged in');
  t.match(page.body, /data-mode="login" data-exts="1001 2100"/);
  t.match(page.body, /<form id="logout-form" method="post" action="\/logout">/);
  t.match(JSON.parse((await http(`${rc.url}/api/session`, 'GET', C)).body), { mode: 'login', rep: { id: 'maria', name: 'Maria Chen', extensions: ['1001', '2100'] }, expiresAt: Number }, 'session');
  const list = (q = ''): Promise<string[]> => http(`${rc.url}/api/pops${q}`, 'GET', C).then((x) => (JSON.parse(x.body) as ScreenPop[]).map((p) => p.id));
  t.same(await list(), [queue.id, mine.id], 'own extension and queue, not the other rep\'s');
  t.same(await list('?ext=2100'), [queue.id], '?ext= narrows');
  t.same(await list('?ext=2000'), [], '?ext= cannot widen');
  t.equal((await http(`${rc.url}/api/pops/${mine.id}`, 'GET', C)).status, 200);
  const o1 = await http(`${rc.url}/api/pops/${other.id}`, 'GET', C);
  t.equal(o1.status, 404, "another rep's pop is 404");
  t.notOk(o1.body.includes('Other Caller'));
  const o2 = await http(`${rc.url}/pops/${other.id}`, 'GET', C);
  t.equal(o2.status, 404, "another rep's pop page is 404");
  t.notOk(o2.body.includes('Other Caller'));
  const own = await http(`${rc.url}/pops/${mine.id}`, 'GET', C);
  t.equal(own.status, 200);
  t.match(own.body, /Logged in as Maria Chen/);
  t.equal((await http(`${rc.url}/login`, 'GET', C)).status, 303, 'the login page sends a logged-in rep on');

  // live: only this rep's pops; a pop handed to another extension is removed by id only
  const c = await sse(`${rc.url}/events`, C);
  t.equal(c.res.statusCode, 200);
  await c.waitFor((e) => e.length >= 2);
  t.same(c.events.map((e) => (JSON.parse(e.data) as ScreenPop).id), [mine.id, queue.id], 'current pops, oldest first');
  store.add(makePop({ target: { name: 'Sam', extension: '2000' }, reason: 'not for maria' }));
  const fresh = store.add(makePop({ target: { name: 'Maria', extension: '1001' }, reason: 'for maria' }));
  await c.waitFor((e) => e.length >= 3);
  t.equal((JSON.parse(c.events[2]!.data) as ScreenPop).id, fresh.id);
  store.update(fresh.id, { target: { name: 'Sam', extension: '2000' }, caller: { phone: '+1', name: 'Moved Caller', language: 'en' } });
  await c.waitFor((e) => e.length >= 4);
  t.equal(c.events[3]!.event, 'remove');
  t.same(JSON.parse(c.events[3]!.data), { id: fresh.id }, 'remove carries the id only');
  store.update(fresh.id, { status: 'connected' });
  const narrowed = await sse(`${rc.url}/events?ext=2100`, C);
  await narrowed.waitFor((e) => e.length >= 1);
  t.same(narrowed.events.map((e) => (JSON.parse(e.data) as ScreenPop).id), [queue.id], 'SSE ?ext= narrows');
  const wider = await sse(`${rc.url}/events?ext=2000`, C);
  await wider.waitFor((_e, comments) => comments.includes('keep-alive'));
  t.equal(wider.events.length, 0, 'SSE ?ext= cannot widen');
  t.equal(c.events.length, 4, 'nothing more for maria');
  t.notOk(c.events.some((e) => e.data.includes('not for maria') || e.data.includes('Moved Caller')), "no other rep's data");

  // logout ends the session and its streams
  const ended = new Promise<void>((res) => c.res.on('close', () => res()));
  const out = await http(`${rc.url}/logout`, 'POST', C);
  t.equal(out.status, 303);
  await ended;
  t.pass('SSE stream closed at logout');
  t.equal((await http(`${rc.url}/api/pops`, 'GET', C)).status, 401, 'the cookie no longer works');
  t.equal((await http(`${rc.url}/`, 'GET', C)).status, 302);
  t.ok(lines.some((l) => l.msg === 'rep logged out' && l.fields?.rep === 'maria'));
  narrowed.close();
  wider.close();
});

t.test('login mode: login link, next, cross-site posts, bad forms', async (t) => {
  const store = new ScreenPopStore();
  const rc = await startRepConsole({ store, port: 0, log: captureLog().log, reps: await reps() });
  t.teardown(() => rc.close());
  const link = await http(`${rc.url}/login`, 'POST', FORM, form({ rep: 'desk-7', token: LINK_SECRET }));
  t.equal(link.status, 303, 'per-rep login link');
  t.match(String(link.headers['set-cookie']), /^va-console=/);
  t.equal((await http(`${rc.url}/login`, 'POST', FORM, form({ rep: 'desk-7', token: 'x' + LINK_SECRET }))).status, 401, 'wrong link');
  t.equal((await http(`${rc.url}/login`, 'POST', FORM, form({ rep: 'maria', token: LINK_SECRET }))).status, 401, "a link is one rep's");
  t.equal((await logIn(rc.url, 'desk-7', LINK_SECRET)).r.status, 401, 'the link secret is not a password');

  for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', '/login', '/logout']) {
    const { r } = await logIn(rc.url, 'sam', 'sam-secret-22', { next });
    t.equal(r.headers.location, '/', `next ${next} → /`);
  }
  const { r: ok } = await logIn(rc.url, 'sam', 'sam-secret-22', { next: '/pops/abc' });
  t.equal(ok.headers.location, '/pops/abc', 'a local next is kept');

  const cross = await logIn(rc.url, 'sam', 'sam-secret-22', {}, { Origin: 'http://evil.example' });
  t.equal(cross.r.status, 403, 'login posted from another origin');
  t.equal(cross.cookie, '');
  t.equal((await logIn(rc.url, 'sam', 'sam-secret-22', {}, { 'Sec-Fetch-Site': 'cross-site' })).r.status, 403, 'Sec-Fetch-Site: cross-site');
  t.equal((await logIn(rc.url, 'sam', 'sam-secret-22', {}, { Origin: rc.url })).r.status, 303, 'same origin is fine');
  t.equal((await http(`${rc.url}/logout`, 'POST', { Origin: 'http://evil.example' })).status, 403, 'cross-site logout');
  t.equal((await http(`${rc.url}/login`, 'POST', { 'Content-Type': 'application/json' }, '{}')).status, 415);
  t.equal((await http(`${rc.url}/login`, 'POST', FORM, 'rep=sam&password=' + 'x'.repeat(5000))).status, 413);
});

t.test('login mode: failed logins lock out per rep and source', async (t) => {
  const store = new ScreenPopStore();
  const clk = clock();
  const { log, lines } = captureLog();
  const rc = await startRepConsole({ store, port: 0, log, reps: await reps(), now: clk.now, loginLimits: { perRepSource: 3, perSource: 6, lockMs: 60_000, windowMs: 60_000 } });
  t.teardown(() => rc.close());
  for (let i = 0; i < 2; i++) t.equal((await logIn(rc.url, 'maria', 'guess' + i)).r.status, 401);
  const third = await logIn(rc.url, 'maria', 'guess-3');
  t.equal(third.r.status, 429, 'the third failure locks');
  t.equal(third.r.headers['retry-after'], '60');
  const right = await logIn(rc.url, 'maria', 'maria-secret-1');
  t.equal(right.r.status, 429, 'locked: even the right password is refused');
  t.equal(right.cookie, '');
  t.match(right.r.body, /Too many failed logins. Try again in 1 minute\./);
  t.ok(lines.some((l) => l.msg === 'rep login refused: locked out'));
  t.equal((await logIn(rc.url, 'sam', 'sam-secret-22')).r.status, 303, 'another rep from the same source still logs in');
  // the source: 3 more failures on other ids (6 in all) lock it for every rep id
  for (const id of ['x1', 'x2']) t.equal((await logIn(rc.url, id, 'nope')).r.status, 401);
  t.equal((await logIn(rc.url, 'x3', 'nope')).r.status, 429, 'sixth failure from this source');
  t.equal((await logIn(rc.url, 'sam', 'sam-secret-22')).r.status, 429, 'the source is locked for every rep');
  clk.advance(60_001);
  const later = await logIn(rc.url, 'maria', 'maria-secret-1');
  t.equal(later.r.status, 303, 'after the lock the right password works');
  t.ok(later.cookie);
});

t.test('login mode: sessions expire', async (t) => {
  const store = new ScreenPopStore();
  const clk = clock();
  const rc = await startRepConsole({ store, port: 0, log: captureLog().log, reps: await reps(), now: clk.now, sessionMinutes: 30, keepAliveMs: 20 });
  t.teardown(() => rc.close());
  store.add(makePop({ target: { name: 'Maria', extension: '1001' } }));
  const { cookie, r } = await logIn(rc.url, 'maria', 'maria-secret-1');
  t.match(String(r.headers['set-cookie']), /Max-Age=1800/);
  const C = { Cookie: cookie };
  const c = await sse(`${rc.url}/events`, C);
  await c.waitFor((e) => e.length >= 1);
  clk.advance(29 * 60_000);
  t.equal((await http(`${rc.url}/api/pops`, 'GET', C)).status, 200, 'valid before its end');
  const ended = new Promise<void>((res) => c.res.on('close', () => res()));
  clk.advance(60_001);
  t.equal((await http(`${rc.url}/api/pops`, 'GET', C)).status, 401, 'expired');
  t.equal((await http(`${rc.url}/`, 'GET', C)).status, 302);
  await ended;
  t.pass('the open stream ends with the session');
});

t.test('screen-pop links open one pop, read-only, until they expire', async (t) => {
  const store = new ScreenPopStore();
  const clk = clock();
  const { log, lines } = captureLog();
  const rc = await startRepConsole({ store, port: 0, log, reps: await reps(), now: clk.now, popLinkMinutes: 10, keepAliveMs: 20 });
  t.teardown(() => rc.close());
  const pop = store.add(makePop({ target: { name: 'Maria', extension: '1001' } }));
  const other = store.add(makePop({ target: { name: 'Maria', extension: '1001' }, caller: { phone: '+1', name: 'Second Caller', language: 'en' } }));
  const link = rc.popLink(pop.id);
  const t0 = new URL(link).searchParams.get('t')!;
  t.match(link, new RegExp(`^${rc.url}/pops/${pop.id}\\?t=[0-9a-z]+\\.[A-Za-z0-9_-]{22}$`), 'URL with a short token');
  t.ok(link.length < 120, `short enough for a SIP header (${link.length})`);

  const r = await http(link);
  t.equal(r.status, 200, 'opens without a login');
  t.match(r.body, /<p id="pop-reason">caller asked for a person/);
  t.match(r.body, /Opened with a screen-pop link, valid until/);
  t.equal(r.headers['set-cookie'], undefined, 'no session from a link');
  t.equal(r.headers['referrer-policy'], 'no-referrer');
  // nothing else
  t.equal((await http(`${rc.url}/pops/${other.id}?t=${t0}`)).status, 302, "another pop with this pop's token");
  t.equal((await http(`${rc.url}/api/pops/${pop.id}?t=${t0}`)).status, 401, 'the JSON API');
  t.equal((await http(`${rc.url}/api/pops?t=${t0}`)).status, 401, 'the list');
  t.equal((await http(`${rc.url}/events?t=${t0}`)).status, 401, 'the live list');
  t.equal((await http(`${rc.url}/?t=${t0}`)).status, 302, 'the console');
  t.equal((await http(`${rc.url}/events?pop=${other.id}&t=${t0}`)).status, 401, "another pop's stream");

  // its status stream: that pop only
  const c = await sse(`${rc.url}/events?pop=${pop.id}&t=${t0}`);
  t.equal(c.res.statusCode, 200);
  await c.waitFor((e) => e.length >= 1);
  store.update(other.id, { status: 'connected' });
  store.update(pop.id, { status: 'connected', statusReason: 'rep answered' });
  await c.waitFor((e) => e.length >= 2);
  t.same(c.events.map((e) => [(JSON.parse(e.data) as ScreenPop).id, e.event]), [[pop.id, 'pop'], [pop.id, 'update']], 'only its own pop');

  // forged: another signature, another expiry, another id
  const [exp, sig] = t0.split('.') as [string, string];
  const forged = [`${exp}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`, `${(parseInt(exp, 36) + 3600).toString(36)}.${sig}`, 'garbage', ''];
  for (const f of forged) {
    const x = await http(`${rc.url}/pops/${pop.id}?t=${encodeURIComponent(f)}`);
    t.equal(x.status, 302, `forged token ${JSON.stringify(f)} refused`);
    t.equal(x.headers.location, `/login?next=${encodeURIComponent(`/pops/${pop.id}`)}`);
  }
  t.ok(lines.some((l) => l.msg === 'screen-pop link refused' && l.fields?.why === 'invalid'));
  t.notOk(JSON.stringify(lines).includes(sig), 'tokens are not logged');

  // expired: the page sends to the login, the open stream ends
  const ended = new Promise<void>((res) => c.res.on('close', () => res()));
  clk.advance(10 * 60_000 + 1000);
  const x = await http(link);
  t.equal(x.status, 302, 'expired link');
  t.equal(x.headers.location, `/login?next=${encodeURIComponent(`/pops/${pop.id}`)}&expired=1`);
  t.match((await http(`${rc.url}${x.headers.location}`)).body, /That screen-pop link has expired/);
  await ended;
  t.pass('the link stream ended with the link');
  // a logged-in rep who may see the pop opens it with or without the token
  const { cookie } = await logIn(rc.url, 'maria', 'maria-secret-1');
  t.equal((await http(link, 'GET', { Cookie: cookie })).status, 200, 'after expiry a login opens it');
  const sam = await logIn(rc.url, 'sam', 'sam-secret-22');
  t.equal((await http(link, 'GET', { Cookie: sam.cookie })).status, 404, "an expired link does not open another rep's pop");
  t.equal((await http(rc.popLink(pop.id), 'GET', { Cookie: sam.cookie })).status, 200, 'a live link opens its pop for whoever holds it');
});

t.test('https publicUrl: Secure __Host- cookie, links on the public URL', async (t) => {
  const store = new ScreenPopStore();
  const rc = await startRepConsole({ store, port: 0, log: captureLog().log, reps: await reps(), publicUrl: 'https://console.example.com/' });
  t.teardown(() => rc.close());
  const { r } = await logIn(rc.url, 'maria', 'maria-secret-1', {}, { Origin: 'https://console.example.com' });
  t.equal(r.status, 303, 'a POST from the public origin is same-origin');
  t.match(String(r.headers['set-cookie']), /^__Host-va-console=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict; Secure$/);
  t.match(rc.popLink('p1'), /^https:\/\/console\.example\.com\/pops\/p1\?t=/);
  t.equal(rc.popUrl('p1'), 'https://console.example.com/pops/p1');
  // off loopback without https: it works, and says what is wrong with it
  const { log, lines } = captureLog();
  const plain = await startRepConsole({ store, host: '0.0.0.0', port: 0, log, reps: await reps() });
  t.teardown(() => plain.close());
  t.ok(lines.some((l) => l.level === 'warn' && /unencrypted/.test(l.msg)), 'plain http off loopback is logged as a warning');
});

t.test('loopback-demo: no reps only on loopback', async (t) => {
  const store = new ScreenPopStore();
  const { log, lines } = captureLog();
  const rc = await startRepConsole({ store, port: 0, log });
  t.teardown(() => rc.close());
  t.equal(rc.mode, 'loopback-demo');
  t.ok(lines.some((l) => l.level === 'warn' && /loopback-demo mode/.test(l.msg)), 'says so in the log');
  const login = await http(`${rc.url}/login`);
  t.equal(login.status, 303, 'no login page in demo mode');
  t.equal(login.headers.location, '/');
  const page = await http(`${rc.url}/`);
  t.match(page.body, /data-mode="loopback-demo"/);
  t.match(page.body, /loopback-demo: no login/);
  t.match(rc.popLink('p1'), /\/pops\/p1\?t=/, 'links look the same as with reps');
  await t.rejects(startRepConsole({ store, host: '0.0.0.0', port: 0, log }), /no reps configured \(console\.reps\) while listening on 0\.0\.0\.0/, 'refused off loopback');
});
