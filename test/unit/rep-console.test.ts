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
function http(url: string, method = 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

interface SseEvent {
  event: string;
  data: string;
}
/** A tiny SSE client: collects events and comments; `waitFor` resolves on a matching event. */
function sse(url: string): Promise<{
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
    const req = request(url, (res) => {
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
