/**
 * The pieces of "safe on a public trunk" in-process: the trunk access config (file and
 * environment, errors naming the field), the trunk policy (known sources, the loopback default,
 * DIDs, call slots), digest authentication (challenge, success, expiry, replay, forged and
 * foreign nonces), the guard (rate limit → ban, exemptions, scanners, limits, rate-limited
 * logs) and the built-in edge's hook on a real SipTransport (UDP drop, 513/413/400 with
 * Warning, 403 on TCP, a banned source's TCP connection closed, ACK never answered).
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type TrunkSettings } from '../../src/config.ts';
import { defaultSipGuard, didAllowed, normalizeDid } from '../../src/sip/guard-settings.ts';
import { TrunkPolicy, checkTrunkTenants, isLoopbackAddress } from '../../src/sip/trunk-policy.ts';
import { DigestAuthenticator, digestResponse, parseDigest, sameResource, digestMiddleware } from '../../src/sip/digest-auth.ts';
import { RejectionLog, SipGuard, sourceKey, type GuardRequest } from '../../src/sip/sip-guard.ts';
import { SipTransport } from '../../src/sip-edge/transport.ts';
import { setLogLevel, type Logger } from '../../src/ops/log.ts';

setLogLevel('silent');

const tmp = mkdtempSync(path.join(tmpdir(), 'sip-guard-unit-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function load(env: Record<string, string>, yaml?: string) {
  const e: Record<string, string> = { ...env };
  if (yaml !== undefined) {
    const f = path.join(tmp, `c${++n}.yaml`);
    writeFileSync(f, yaml);
    e.CONFIG_FILE = f;
  }
  return loadConfig({ argv: [], env: e, cwd: tmp });
}

// ── config ───────────────────────────────────────────────────────────────────────────────

t.test('config: trunk access keys from YAML; the password only through the environment', async (t) => {
  const c = load({ CARRIER_PW: 'pw-1' }, `defaultCountry: US
trunks:
  - name: carrier
    sources: [203.0.113.0/24]
    auth: { realm: sip.example.com, user: carrier-a, passwordEnv: CARRIER_PW, challenge: 407, nonceSeconds: 120 }
    dids: [+14155550100, "4155550101", "+1415555020*"]
    maxCalls: 30
    tenant: acme
  - name: pbx
    sources: [10.0.0.5]
    country: GB
    dids: ["020 7946 0000"]
sipGuard:
  unknownSources: reject
  rateLimit: { requests: 30, seconds: 5, banSeconds: 60, trunkRequests: 500 }
  scanners: [Evil-Bot]
  limits: { maxMessageBytes: 8000, maxHeaders: 50 }
`);
  const tr = c.trunks[0]!;
  t.same({ ...tr.auth }, { realm: 'sip.example.com', user: 'carrier-a', passwordEnv: 'CARRIER_PW', challenge: 407, nonceSeconds: 120 }, 'auth, without the password');
  t.equal(tr.auth!.password, 'pw-1', 'the password is read from the named variable');
  t.notMatch(JSON.stringify(c), /pw-1/, 'and never serialized with the config');
  t.equal(tr.maxCalls, 30);
  t.equal(tr.tenant, 'acme');
  t.same(tr.dids!.map((d) => [d.digits, d.e164, d.prefix]), [['14155550100', '14155550100', false], ['4155550101', '14155550101', false], ['1415555020', undefined, true]]);
  t.same(c.trunks[1]!.dids!.map((d) => d.e164), ['442079460000'], 'a national DID in the trunk\'s country');
  t.same(c.sipGuard, {
    unknownSources: 'reject', rateLimit: { requests: 30, seconds: 5, banSeconds: 60, trunkRequests: 500 },
    scanners: ['evil-bot'], limits: { maxMessageBytes: 8000, maxBodyBytes: 8192, maxHeaders: 50, maxHeaderBytes: 4096 }, logIntervalSeconds: 60,
  });
  t.same(load({}).sipGuard, defaultSipGuard(), 'defaults: auto, 16 per 2 s, ban 300 s');
});

t.test('config: environment variables', async (t) => {
  const c = load({
    TRUNKS: '[{name: c, sources: [192.0.2.1], auth: {realm: r, user: u, passwordEnv: PW}, maxCalls: 2, dids: [18005550100]}]', PW: 'x',
    SIP_UNKNOWN_SOURCES: 'drop', SIP_RATE_LIMIT_REQUESTS: '0', SIP_BAN_SECONDS: '10', SIP_SCANNER_AGENTS: 'a, B',
    SIP_MAX_HEADERS: '20', SIP_TRUNK_RATE_LIMIT_REQUESTS: '100',
  });
  t.equal(c.trunks[0]!.auth!.password, 'x');
  t.equal(c.sipGuard.unknownSources, 'drop');
  t.equal(c.sipGuard.rateLimit.requests, 0, '0 turns the limit off');
  t.equal(c.sipGuard.rateLimit.banSeconds, 10);
  t.equal(c.sipGuard.rateLimit.trunkRequests, 100);
  t.same(c.sipGuard.scanners, ['a', 'b']);
  t.equal(c.sipGuard.limits.maxHeaders, 20);
});

t.test('config: errors name the file and the field', async (t) => {
  const bad: [Record<string, string>, string | undefined, RegExp][] = [
    [{}, 'trunks:\n  - name: a\n    sources: [1.2.3.4]\n    auth: { realm: r, user: u, password: hunter2 }\n', /c\d+\.yaml: trunks\[0\]\.auth\.password: passwords do not go in the config file/],
    [{}, 'trunks:\n  - name: a\n    sources: [1.2.3.4]\n    auth: { realm: r, user: u, passwordEnv: NOPE_PW }\n', /c\d+\.yaml: trunks\[0\]\.auth\.passwordEnv: the environment variable NOPE_PW \(the password of trunk a\) is not set/],
    [{ TRUNKS: '[{name: a, sources: [1.2.3.4], auth: {realm: r, user: u, passwordEnv: NOPE_PW}}]' }, undefined, /^environment: TRUNKS\[0\]\.auth\.passwordEnv: the environment variable NOPE_PW/],
    [{}, 'trunks:\n  - name: a\n    sources: [1.2.3.4]\n    auth: { realm: r, user: u, passwordEnv: P, challenge: 403 }\n', /trunks\[0\]\.auth\.challenge: must be 401 \(WWW-Authenticate\) or 407/],
    [{}, 'trunks:\n  - name: a\n    sources: [1.2.3.4]\n    dids: [+1415x]\n', /trunks\[0\]\.dids\[0\]: must be a telephone number/],
    [{}, 'trunks:\n  - name: a\n    sources: [1.2.3.4]\n    dids: []\n', /trunks\[0\]\.dids: must list at least one number/],
    [{}, 'trunks:\n  - name: a\n    sources: [1.2.3.4]\n    maxCalls: 0\n', /trunks\[0\]\.maxCalls: must be an integer 1-100000, got 0/],
    [{}, 'sipGuard:\n  unknownSources: maybe\n', /sipGuard\.unknownSources: must be one of auto, drop, reject, accept/],
    [{}, 'sipGuard:\n  rateLimit: { requests: -1 }\n', /sipGuard\.rateLimit\.requests: must be an integer 0-1000000/],
    [{}, 'sipGuard:\n  limits: { maxLines: 3 }\n', /sipGuard\.limits\.maxLines: unknown key/],
    [{ SIP_BAN_SECONDS: 'soon' }, undefined, /^environment: SIP_BAN_SECONDS: must be an integer 0-86400/],
  ];
  for (const [env, yaml, re] of bad) t.throws(() => load(env, yaml), re, String(re));
  t.throws(() => checkTrunkTenants([{ name: 'a', sources: ['1.2.3.4/32'], trustIdentity: true, country: 'US', tenant: 'nope' }], ['acme', 'northwind'], '/etc/va.yaml'),
    /\/etc\/va\.yaml: trunks\[0\]\.tenant: names tenant "nope", which is not in the tenants file \(tenants: acme, northwind\)/);
});

// ── trunk policy ─────────────────────────────────────────────────────────────────────────

const trunk = (o: Partial<TrunkSettings> & { name: string; sources: string[] }): TrunkSettings => ({ trustIdentity: true, country: 'US', ...o });

t.test('policy: with no trunk only loopback is known; with trunks only their sources', async (t) => {
  const none = new TrunkPolicy({ trunks: [] });
  t.same(none.classify('127.0.0.1'), { known: true });
  t.same(none.classify('127.0.0.2'), { known: true }, 'all of 127/8');
  t.same(none.classify('::1'), { known: true });
  t.same(none.classify('::ffff:127.0.0.1'), { known: true }, 'IPv4-mapped');
  t.same(none.classify('192.0.2.10'), { known: false });
  const lab = trunk({ name: 'lab', sources: ['127.0.0.1/32'] });
  const carrier = trunk({ name: 'carrier', sources: ['203.0.113.0/24', '2001:db8::/32'] });
  const p = new TrunkPolicy({ trunks: [lab, carrier] });
  t.equal(p.classify('203.0.113.77').trunk, carrier);
  t.equal(p.classify('2001:db8::5').trunk, carrier);
  t.same(p.classify('127.0.0.2'), { known: false }, 'loopback is no longer special once a trunk is configured');
  t.equal(p.classify('127.0.0.1').trunk, lab);
  t.same(p.classify(undefined), { known: false });
  t.ok(isLoopbackAddress('127.9.9.9') && !isLoopbackAddress('10.0.0.1'));
});

t.test('policy: unknown sources per setting and transport', async (t) => {
  const v = (u: 'auto' | 'drop' | 'reject' | 'accept', tr: string) => new TrunkPolicy({ trunks: [], unknownSources: u }).unknownVerdict(tr);
  t.same(['udp', 'tcp', 'tls'].map((tr) => v('auto', tr)), ['drop', 'reject', 'reject'], 'auto: drop on UDP, 403 on TCP/TLS');
  t.same(['udp', 'tcp'].map((tr) => v('drop', tr)), ['drop', 'drop']);
  t.same(['udp', 'tcp'].map((tr) => v('reject', tr)), ['reject', 'reject']);
  t.same(['udp', 'tcp'].map((tr) => v('accept', tr)), ['accept', 'accept']);
});

t.test('policy: DIDs and call slots', async (t) => {
  const c = load({}, 'trunks:\n  - name: a\n    sources: [1.2.3.4]\n    dids: [+18005550100, "8005550111", "+1 (415) 555-02*"]\n    maxCalls: 2\n');
  const a = c.trunks[0]!;
  const p = new TrunkPolicy({ trunks: c.trunks });
  t.ok(p.allowsDialed(a, ['+18005550100']), 'E.164');
  t.ok(p.allowsDialed(a, ['8005550100']) === false && p.allowsDialed(a, ['+18005550100', '8005550100']), 'a national Request-URI: its E.164 form (identity.ts gives both) matches');
  t.ok(p.allowsDialed(a, ['+18005550111']), 'E.164 form of a national entry');
  t.ok(p.allowsDialed(a, ['8005550111']), 'a national entry as written');
  t.ok(p.allowsDialed(a, ['+14155550299']), 'prefix');
  t.notOk(p.allowsDialed(a, ['+18005550199']), 'another number');
  t.notOk(p.allowsDialed(a, []), 'no number at all');
  t.ok(p.allowsDialed(undefined, ['+18005550199']), 'no trunk: no DID rule');
  t.ok(didAllowed([{ written: '123', digits: '123', prefix: false }], ['1 2 3']));
  t.equal(normalizeDid('+1 (415) 555-0100'), '14155550100');
  const r1 = p.acquire(a)!;
  const r2 = p.acquire(a)!;
  t.equal(p.acquire(a), null, 'the third is refused');
  t.equal(p.callsOf('a'), 2);
  r1();
  r1();
  t.equal(p.callsOf('a'), 1, 'a release counts once');
  t.ok(p.acquire(a), 'a slot is free again');
  r2();
  t.type(p.acquire(undefined), 'function', 'no trunk: no limit');
});

t.test('policy: start-up warnings', async (t) => {
  t.match(new TrunkPolicy({ trunks: [] }).startupWarnings('0.0.0.0', 0), [/no trunk configured: SIP listens on 0\.0\.0\.0 but only loopback sources are accepted/]);
  t.same(new TrunkPolicy({ trunks: [] }).startupWarnings('127.0.0.1', 0), [], 'the embedded default says nothing');
  t.match(new TrunkPolicy({ trunks: [trunk({ name: 'w', sources: ['0.0.0.0/0'] })] }).startupWarnings('0.0.0.0', 0), [/trunk w lists wide sources \(0\.0\.0\.0\/0\)/]);
});

// ── digest ───────────────────────────────────────────────────────────────────────────────

const AUTH = { realm: 'voice.test', user: 'carrier', passwordEnv: 'X', challenge: 401 as const, nonceSeconds: 300, password: 's3cret' };
function authed(a: DigestAuthenticator, nonce: string, o: { uri?: string; ruri?: string; nc?: string; qop?: boolean; pw?: string; user?: string; source?: string; header?: string; method?: string } = {}) {
  const ruri = o.ruri ?? 'sip:18005550100@127.0.0.1:5060';
  const uri = o.uri ?? ruri;
  const nc = o.nc ?? '00000001';
  const qop = o.qop ?? true;
  const response = digestResponse({ user: o.user ?? 'carrier', realm: 'voice.test', password: o.pw ?? 's3cret', method: o.method ?? 'INVITE', uri, nonce, ...(qop ? { qop: 'auth', nc, cnonce: 'abc' } : {}) });
  const value = `Digest username="${o.user ?? 'carrier'}", realm="voice.test", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5${qop ? `, qop=auth, nc=${nc}, cnonce="abc"` : ''}`;
  return a.check({ method: o.method ?? 'INVITE', uri: ruri, source_address: o.source ?? '203.0.113.5', get: (h) => (h === (o.header ?? 'Authorization') ? value : undefined) }, AUTH);
}
const nonceOf = (h: Record<string, string>): string => /nonce="([^"]+)"/.exec(h['WWW-Authenticate'] ?? h['Proxy-Authenticate'] ?? '')![1]!;

t.test('digest: challenge, then the right credentials pass and the wrong ones get 403', async (t) => {
  const a = new DigestAuthenticator({ secret: 'k' });
  const c = a.check({ method: 'INVITE', uri: 'sip:x@h', source_address: '203.0.113.5', get: () => undefined }, AUTH);
  t.equal(c.ok, false);
  if (c.ok) return;
  t.equal(c.status, 401);
  t.match(c.headers['WWW-Authenticate'], /^Digest realm="voice\.test", nonce="[^"]+", algorithm=MD5, qop="auth"$/);
  const nonce = nonceOf(c.headers);
  t.same(authed(a, nonce), { ok: true, user: 'carrier' });
  t.match(authed(a, nonce, { pw: 'guess', nc: '00000002' }), { ok: false, status: 403, why: 'bad-password' });
  t.match(authed(a, nonce, { user: 'mallory', nc: '00000003' }), { ok: false, status: 403, why: 'wrong-user' });
  t.match(authed(a, nonce, { uri: 'sip:other@h', nc: '00000004' }), { ok: false, status: 403, why: 'uri-mismatch' });
  t.same(authed(a, nonce, { uri: 'sip:127.0.0.1:5060', nc: '00000005' }), { ok: true, user: 'carrier' }, 'the Request-URI without its user part (SIPp)');
  t.ok(sameResource('sip:127.0.0.1:5060', 'sip:18005550100@127.0.0.1:5060') && !sameResource('sip:10.0.0.1', 'sip:1@127.0.0.1'));
  const p = new DigestAuthenticator({ secret: 'k' });
  const c407 = p.check({ method: 'INVITE', uri: 'sip:x@h', source_address: '203.0.113.5', get: () => undefined }, { ...AUTH, challenge: 407 });
  t.match(c407, { ok: false, status: 407, headers: { 'Proxy-Authenticate': /^Digest realm=/ } }, '407 mode');
});

t.test('digest: replays, expiry, forged and foreign nonces', async (t) => {
  let now = 1_000_000_000;
  const a = new DigestAuthenticator({ secret: 'k', now: () => now });
  const nonce = a.nonce('voice.test', '203.0.113.5');
  t.same(authed(a, nonce), { ok: true, user: 'carrier' });
  t.match(authed(a, nonce), { ok: false, status: 401, why: 'replay', headers: { 'WWW-Authenticate': /stale=true/ } }, 'the same nc again: a replay');
  t.same(authed(a, nonce, { nc: '00000002' }), { ok: true, user: 'carrier' }, 'the next nc: fine');
  t.match(authed(a, nonce, { nc: '00000001' }), { ok: false, why: 'replay' }, 'an older nc: a replay');
  const once = a.nonce('voice.test', '203.0.113.5');
  t.same(authed(a, once, { qop: false }), { ok: true, user: 'carrier' }, 'without qop (RFC 2069)…');
  t.match(authed(a, once, { qop: false }), { ok: false, why: 'replay' }, '…a nonce is good once');
  t.match(authed(a, nonce, { source: '198.51.100.1', nc: '00000009' }), { ok: false, status: 401, why: 'bad-nonce' }, 'a nonce issued to another address');
  const forged = nonce.replace(/\.[^.]+$/, '.AAAAAAAAAAAAAAAAAAAAAA');
  t.match(authed(a, forged), { ok: false, status: 401, why: 'bad-nonce' }, 'a forged nonce');
  const fresh = a.nonce('voice.test', '203.0.113.5');
  now += 301_000;
  t.match(authed(a, fresh), { ok: false, status: 401, why: 'stale', headers: { 'WWW-Authenticate': /stale=true/ } }, 'an expired nonce: stale=true');
  t.match(authed(a, fresh, { pw: 'guess' }), { ok: false, status: 403 }, 'an expired nonce with a wrong password is still a failure');
});

t.test('digest: the replay table is bounded and forgetting never lets a replay in', async (t) => {
  let now = 1_000_000_000;
  const a = new DigestAuthenticator({ secret: 'k', now: () => now, maxTracked: 10 });
  const nonces: string[] = [];
  for (let i = 0; i < 30; i++) {
    nonces.push(a.nonce('voice.test', '203.0.113.5'));
    now += 1000;
    t.ok(authed(a, nonces[i]!).ok);
  }
  t.ok(a.tracked <= 10, `at most 10 nonces remembered (${a.tracked})`);
  t.match(authed(a, nonces[0]!), { ok: false, why: 'replay' }, 'a forgotten nonce is refused, not accepted again');
});

t.test('digest: header parsing', async (t) => {
  t.same(parseDigest('Digest username="a\\"b", realm="r", nc=00000001, qop=auth'), { username: 'a"b', realm: 'r', nc: '00000001', qop: 'auth' });
  t.equal(parseDigest('Basic YWxhZGRpbg=='), undefined);
  t.equal(parseDigest('Digest username="open'), undefined);
  t.equal(parseDigest('Digest a=1, a=2'), undefined, 'a repeated parameter');
});

t.test('digest middleware: only INVITEs from trunks with auth', async (t) => {
  const a = new DigestAuthenticator({ secret: 'k' });
  const trunks: Record<string, { name: string; auth?: typeof AUTH }> = { '203.0.113.5': { name: 'carrier', auth: AUTH }, '198.51.100.1': { name: 'pbx' } };
  const refused: string[] = [];
  const mw = digestMiddleware((addr) => trunks[addr ?? ''], a, { onRefuse: (_res, reason) => refused.push(reason) });
  const run = (method: string, source: string): number | 'next' => {
    let out: number | 'next' = 'next';
    mw({ method, uri: 'sip:1@h', source_address: source, get: () => undefined }, { send: (s: number) => (out = s) }, () => (out = 'next'));
    return out;
  };
  t.equal(run('INVITE', '203.0.113.5'), 401);
  t.equal(run('OPTIONS', '203.0.113.5'), 'next', 'OPTIONS pings are not challenged');
  t.equal(run('INVITE', '198.51.100.1'), 'next', 'a trunk without auth');
  t.same(refused, ['auth-challenge']);
});

// ── the guard ────────────────────────────────────────────────────────────────────────────

function quietLog(lines: string[] = []): Logger {
  const l: Logger = {
    debug: () => undefined, info: () => undefined, error: (m) => lines.push(m),
    warn: (m, f) => lines.push(`${m} ${JSON.stringify(f)}`), child: () => l,
  };
  return l;
}
const req = (o: Partial<GuardRequest> = {}): GuardRequest => ({
  address: '198.51.100.7', port: 5060, transport: 'udp', method: 'INVITE', userAgent: 'PBX 1.0', inDialog: false,
  bytes: 900, bodyBytes: 200, headerCount: 12, longestHeader: { name: 'Via', bytes: 80 }, ...o,
});
const flush = () => new Promise((r) => setImmediate(r));

t.test('guard: more than 16 requests in 2 s ban the source for 300 s; trunk sources are exempt', async (t) => {
  let now = 5_000_000;
  const lines: string[] = [];
  const g = new SipGuard(defaultSipGuard(), new TrunkPolicy({ trunks: [trunk({ name: 'lab', sources: ['10.1.1.1'] })] }), { now: () => now, log: quietLog(lines), collector: false, redisUrl: '' });
  t.teardown(() => g.close());
  const passed: number[] = [];
  for (let i = 1; i <= 30; i++) {
    if (g.screenSource('198.51.100.7', 'udp', true) === null) passed.push(i);
    await flush(); // the limiter answers asynchronously
  }
  t.same(passed, Array.from({ length: 17 }, (_, i) => i + 1), 'the 17th crosses the limit (and still passes); from the 18th on: dropped');
  t.ok(g.isBanned('198.51.100.7'));
  t.same(g.screenSource('198.51.100.7', 'tcp', true), { action: 'close', reason: 'banned' }, 'a stream connection of a banned source is closed');
  t.same(g.screenSource('198.51.100.7', 'udp', false), { action: 'drop', reason: 'banned' }, 'responses from a banned source are dropped too');
  t.match(lines.join('\n'), /SIP source banned: request rate over the limit .*"requests":17.*"limit":"16\/2s".*"banSeconds":300/);
  for (let i = 0; i < 100; i++) {
    t.equal(g.screenSource('10.1.1.1', 'udp', true), null);
    await flush();
  }
  t.notOk(g.isBanned('10.1.1.1'), 'a trunk source is never banned');
  now += 300_001;
  t.equal(g.screenSource('198.51.100.7', 'udp', true), null, 'the ban ends after 300 s');
  t.equal(g.bannedCount, 0);
});

t.test('guard: traffic under the limit is never banned; IPv6 sources share a /64', async (t) => {
  // the limiter keeps real time: 5 per 1 s, and 3 per second sent for 3 s
  const g = new SipGuard({ ...defaultSipGuard(), rateLimit: { requests: 5, seconds: 1, banSeconds: 300, trunkRequests: 0 } }, new TrunkPolicy({ trunks: [] }), { log: quietLog(), collector: false, redisUrl: '' });
  t.teardown(() => g.close());
  t.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(sourceKey('::ffff:192.0.2.1'), '192.0.2.1');
  let passed = 0;
  for (let i = 0; i < 9; i++) {
    if (g.screenSource('192.0.2.50', 'udp', true) === null) passed++;
    await new Promise((r) => setTimeout(r, 340));
  }
  t.equal(passed, 9, 'every request passed');
  t.notOk(g.isBanned('192.0.2.50'));
  for (let i = 0; i < 20; i++) {
    g.screenSource(`2001:db8:1:2::${i + 1}`, 'udp', true);
    await flush();
  }
  t.ok(g.isBanned('2001:db8:1:2:ffff::9'), 'the whole /64 is banned');
});

t.test('guard: scanners, unknown sources, message limits — each counted with its reason', async (t) => {
  const g = new SipGuard({ ...defaultSipGuard(), limits: { maxMessageBytes: 2000, maxBodyBytes: 500, maxHeaders: 20, maxHeaderBytes: 300 } },
    new TrunkPolicy({ trunks: [trunk({ name: 'lab', sources: ['10.1.1.1'] })] }), { log: quietLog(), collector: false, redisUrl: '' });
  t.teardown(() => g.close());
  t.same(g.screenMessage(req({ address: '10.1.1.1', userAgent: 'friendly-scanner' })), { action: 'drop', reason: 'scanner' }, 'even from a trunk');
  t.same(g.screenMessage(req({ address: '10.1.1.1', userAgent: 'SIPVicious/0.3' })), { action: 'drop', reason: 'scanner' }, 'case-insensitive substring');
  t.same(g.screenMessage(req()), { action: 'drop', reason: 'acl' }, 'unknown source, UDP: drop');
  t.match(g.screenMessage(req({ transport: 'tcp' })), { action: 'reject', reason: 'acl', status: 403 }, 'unknown source, TCP: 403');
  t.same(g.screenMessage(req({ transport: 'tcp', method: 'ACK' })), { action: 'drop', reason: 'acl' }, 'an ACK is never answered');
  t.equal(g.screenMessage(req({ inDialog: true, method: 'BYE' })), null, 'in-dialog requests pass the ACL (the UA core answers 481 if no dialog)');
  const trunkReq = (o: Partial<GuardRequest>) => g.screenMessage(req({ address: '10.1.1.1', ...o }));
  t.equal(trunkReq({}), null);
  t.match(trunkReq({ bytes: 2001 }), { action: 'reject', status: 513, phrase: 'Message Too Large', detail: /2001 bytes is over the limit of 2000 \(sipGuard\.limits\.maxMessageBytes\)/ });
  t.match(trunkReq({ bodyBytes: 501 }), { action: 'reject', status: 413, detail: /maxBodyBytes/ });
  t.match(trunkReq({ headerCount: 21 }), { action: 'reject', status: 400, detail: /21 header fields are over the limit of 20 \(sipGuard\.limits\.maxHeaders\)/ });
  t.match(trunkReq({ longestHeader: { name: 'Subject', bytes: 301 } }), { action: 'reject', status: 400, detail: /header Subject of 301 bytes .*maxHeaderBytes/ });
  t.same(trunkReq({ method: 'ACK', bytes: 5000 }), { action: 'drop', reason: 'message-size' });
  const accept = new SipGuard(defaultSipGuard(), new TrunkPolicy({ trunks: [], unknownSources: 'accept' }), { log: quietLog(), collector: false, redisUrl: '' });
  t.teardown(() => accept.close());
  t.equal(accept.screenMessage(req()), null, 'unknownSources accept');
});

t.test('rejection log: the first line at once, then one per interval with the count', async (t) => {
  let now = 0;
  const lines: string[] = [];
  const rl = new RejectionLog(quietLog(lines), 60_000, () => now);
  t.teardown(() => rl.close());
  let built = 0;
  for (let i = 0; i < 500; i++) rl.note('198.51.100.7|acl', 'SIP request dropped', () => ({ built: ++built, source: '198.51.100.7' }));
  t.equal(lines.length, 1, 'one line for 500 events');
  t.equal(built, 1, 'the fields are built once');
  t.match(lines[0], /"count":1/);
  now = 60_000;
  rl.sweep();
  t.equal(lines.length, 2);
  t.match(lines[1], /SIP request dropped .*"count":499.*"total":500.*"perSeconds":60/);
  now = 200_000;
  rl.sweep();
  t.equal(rl.size, 0, 'quiet keys are forgotten');
});

// ── the built-in edge's hook ─────────────────────────────────────────────────────────────

t.test('edge: a real SipTransport with the guard — drops, 513/413/400 with Warning, 403 on TCP, ACK never answered', async (t) => {
  const g = new SipGuard({ ...defaultSipGuard(), limits: { maxMessageBytes: 1500, maxBodyBytes: 300, maxHeaders: 30, maxHeaderBytes: 400 } },
    new TrunkPolicy({ trunks: [trunk({ name: 'lab', sources: ['127.0.0.1'] })] }), { log: quietLog(), collector: false, redisUrl: '' });
  const transport = new SipTransport({ address: '127.0.0.1', port: 0, transports: ['udp', 'tcp'], guard: g });
  const seen: string[] = [];
  transport.on('message', (m) => seen.push(m.method ?? String(m.status)));
  await transport.listen();
  t.teardown(async () => { await transport.close(); g.close(); });
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => sock.close());
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString()));
  const msg = (method: string, extra: string[] = [], body = '', ua = 'Lab PBX') => [
    `${method} sip:1@127.0.0.1 SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${sock.address().port};branch=z9hG4bK-${Math.random()}`,
    'From: <sip:a@127.0.0.1>;tag=1', 'To: <sip:1@127.0.0.1>', `Call-ID: ${Math.random()}@x`, `CSeq: 1 ${method}`, 'Max-Forwards: 70',
    `User-Agent: ${ua}`, ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body,
  ].join('\r\n');
  const send = async (text: string): Promise<string | undefined> => {
    got.length = 0;
    sock.send(text, transport.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 150));
    return got[0];
  };
  t.match(await send(msg('OPTIONS', ['X-Pad: ' + 'x'.repeat(1300)], '', 'Lab')), /^SIP\/2\.0 513 Message Too Large\r\n[\s\S]*Warning: 399 127\.0\.0\.1 "message of \d+ bytes is over the limit of 1500 \(sipGuard\.limits\.maxMessageBytes\)"/);
  t.match(await send(msg('INVITE', ['Content-Type: application/sdp'], 'v=0\r\n' + 'a=x\r\n'.repeat(80))), /^SIP\/2\.0 413 Request Entity Too Large\r\n[\s\S]*To: <sip:1@127\.0\.0\.1>;tag=/);
  t.match(await send(msg('OPTIONS', Array.from({ length: 30 }, (_, i) => `X-H${i}: 1`))), /^SIP\/2\.0 400 Bad Request\r\n[\s\S]*header fields are over the limit of 30/);
  t.equal(await send(msg('ACK', Array.from({ length: 30 }, (_, i) => `X-H${i}: 1`))), undefined, 'an ACK over a limit is dropped, never answered');
  t.equal(await send(msg('OPTIONS', [], '', 'friendly-scanner')), undefined, 'a scanner: nothing');
  t.same(seen, [], 'nothing of it reached the transaction layer');
  await send(msg('OPTIONS'));
  t.same(seen, ['OPTIONS'], 'a clean request from the trunk goes on');

  // TCP from an unknown source (127.0.0.2): 403; once banned, the connection is closed
  const c = net.connect({ host: '127.0.0.1', port: transport.port, localAddress: '127.0.0.2' });
  await new Promise<void>((r) => c.once('connect', () => r()));
  let tcpIn = '';
  c.on('data', (d) => (tcpIn += d.toString()));
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  c.write(msg('OPTIONS').replace(/SIP\/2\.0\/UDP 127\.0\.0\.1:\d+/, 'SIP/2.0/TCP 127.0.0.2:5099'));
  await new Promise((r) => setTimeout(r, 150));
  t.match(tcpIn, /^SIP\/2\.0 403 Forbidden\r\n[\s\S]*Warning: 399 127\.0\.0\.1 "source address is not an allowed trunk"/, 'TCP, unknown source: 403');
  for (let i = 0; i < 20; i++) {
    if (c.destroyed) break;
    c.write(msg('OPTIONS').replace(/SIP\/2\.0\/UDP 127\.0\.0\.1:\d+/, 'SIP/2.0/TCP 127.0.0.2:5099'));
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
  t.ok(c.destroyed || c.readyState === 'closed', 'over the rate limit: banned, the connection closed');
  t.ok(g.isBanned('127.0.0.2'));
});

// ── drachtio-server topology: the same checks as drachtio-srf middleware ─────────────────

t.test('middleware (drachtio-server topology): what the edge would drop is answered 403, counted, never an ACK', async (t) => {
  const g = new SipGuard(defaultSipGuard(), new TrunkPolicy({ trunks: [trunk({ name: 'lab', sources: ['10.1.1.1'] })] }), { log: quietLog(), collector: false, redisUrl: '' });
  t.teardown(() => g.close());
  const mw = g.middleware();
  const raw = (method: string, ua: string) => `${method} sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP x\r\nTo: <sip:1@h>\r\nUser-Agent: ${ua}\r\nContent-Length: 0\r\n\r\n`;
  const run = (method: string, source: string, ua = 'PBX', protocol = 'udp') => {
    const out: { status?: number; reason?: string; next?: boolean } = {};
    mw({ method, source_address: source, source_port: 5060, protocol, raw: raw(method, ua), get: (h) => (h === 'User-Agent' ? ua : h === 'To' ? '<sip:1@h>' : undefined) },
      { send: (status: number, o?: { headers?: Record<string, string> }) => { out.status = status; out.reason = o?.headers?.Reason; } }, () => (out.next = true));
    return out;
  };
  t.same(run('INVITE', '10.1.1.1'), { next: true }, 'a trunk source goes on');
  t.match(run('INVITE', '198.51.100.9'), { status: 403, reason: /not an allowed trunk/ }, 'unknown source on UDP: 403 here (drachtio-server holds the transaction)');
  t.match(run('OPTIONS', '10.1.1.1', 'friendly-scanner'), { status: 403 }, 'a scanner');
  t.same(run('ACK', '198.51.100.9'), {}, 'an ACK is never answered');
});

t.test('trunk gate: digest, DIDs and call slots as srf middleware, each refusal counted', async (t) => {
  const { trunkGate, takeTrunkSlot } = await import('../../src/sip/trunk-gate.ts');
  const { metrics } = await import('../../src/ops/metrics.ts');
  const c = load({ PW: 'pw' }, `trunks:
  - name: carrier
    sources: [203.0.113.5]
    auth: { realm: voice.test, user: carrier, passwordEnv: PW }
  - name: lab
    sources: [10.1.1.1]
    dids: [+18005550100]
    maxCalls: 1
`);
  const chain = trunkGate({ policy: new TrunkPolicy({ trunks: c.trunks }), digest: new DigestAuthenticator({ secret: 'k' }), log: quietLog() });
  const run = (source: string, uri: string, method = 'INVITE') => {
    const req = { method, uri, source_address: source, source_port: 5060, protocol: 'udp', get: (h: string) => (h === 'To' ? `<${uri}>` : h === 'Call-ID' ? 'c1' : undefined) };
    let i = 0;
    const out: { status?: number; next?: boolean; req: object } = { req };
    const res = { send: (status: number) => { out.status = status; } };
    const next = (): void => {
      const mw = chain[i++];
      if (!mw) out.next = true;
      else mw(req, res, next);
    };
    next();
    return out;
  };
  const rejected = async (reason: string) => (await metrics.invitesRejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  const before = { challenge: await rejected('auth-challenge'), did: await rejected('did'), calls: await rejected('trunk-calls') };
  t.equal(run('203.0.113.5', 'sip:18005550100@h').status, 401, 'the carrier is challenged');
  t.equal(run('10.1.1.1', 'sip:18005550199@h').status, 404, 'lab: another number');
  const first = run('10.1.1.1', 'sip:+18005550100@h');
  t.ok(first.next, 'lab: its DID, a free slot');
  t.equal(run('10.1.1.1', 'sip:18005550100@h').status, 503, 'lab: its one slot is taken');
  const release = takeTrunkSlot(first.req);
  t.type(release, 'function', 'the app takes the slot over');
  t.equal(takeTrunkSlot(first.req), undefined, 'once');
  release!();
  t.ok(run('10.1.1.1', 'sip:18005550100@h').next, 'released: the next call gets it');
  t.ok(run('198.51.100.1', 'sip:1@h').next, 'no trunk: nothing to check here (the guard decides about unknown sources)');
  t.ok(run('203.0.113.5', 'sip:1@h', 'OPTIONS').next, 'OPTIONS from the carrier: not challenged');
  t.equal(await rejected('auth-challenge') - before.challenge, 1);
  t.equal(await rejected('did') - before.did, 1);
  t.equal(await rejected('trunk-calls') - before.calls, 1);
});
