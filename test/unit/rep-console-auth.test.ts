import t from 'tap';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  hashPassword, verifyPassword, parseScryptHash, PopLinks, SessionStore, LoginLimiter, newLoginToken,
  verifyLoginToken, loginTokenHash, isLoopback, repSees,
} from '../../src/escalation/console/auth.ts';
import { demoRefusal } from '../../src/escalation/console/settings.ts';
import { main as hashCli } from '../../src/escalation/console/hash-cli.ts';
import { loadConfig, ConfigError } from '../../src/config.ts';

const FAST = { ln: 10, r: 8, p: 1 };

t.test('scrypt password hashes', async (t) => {
  const h = await hashPassword('correct horse', FAST);
  t.match(h, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/, 'PHC string');
  t.ok(await verifyPassword('correct horse', h), 'right password');
  t.notOk(await verifyPassword('correct horse ', h), 'wrong password');
  t.notOk(await verifyPassword('', h), 'empty password');
  t.notOk(await verifyPassword('correct horse', undefined), 'no hash (unknown rep) never matches');
  t.notOk(await verifyPassword('correct horse', 'not a hash'), 'malformed hash never matches');
  t.not(await hashPassword('correct horse', FAST), h, 'salted: another hash each time');
  t.ok(await verifyPassword('caf\u00e9 ol\u00e9', await hashPassword('cafe\u0301 ole\u0301', FAST)), 'Unicode normalised (NFC)');
  t.equal(parseScryptHash('$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), null, 'absurd cost refused');
  t.match(parseScryptHash(h), { ln: 10, r: 8, p: 1 });
});

t.test('login-link secrets', async (t) => {
  const { token, hash } = newLoginToken();
  t.match(token, /^[A-Za-z0-9_-]{43}$/);
  t.equal(hash, loginTokenHash(token));
  t.ok(verifyLoginToken(token, hash));
  t.notOk(verifyLoginToken(token + 'x', hash));
  t.notOk(verifyLoginToken(token, undefined));
  t.notOk(verifyLoginToken(token, 'sha256:zz'));
});

t.test('pop links: bound to one pop, expire, unforgeable', async (t) => {
  let now = 1_700_000_000_000;
  const links = new PopLinks(10 * 60_000, () => now);
  const tok = links.mint('pop-1');
  t.match(links.check('pop-1', tok), { ok: true, expiresAt: now + 600_000 });
  t.match(links.check('pop-2', tok), { ok: false, why: 'invalid' }, 'another pop');
  t.match(links.check('pop-1', null), { ok: false, why: 'invalid' });
  t.match(new PopLinks(600_000, () => now).check('pop-1', tok), { ok: false, why: 'invalid' }, 'another process (key)');
  const [exp, sig] = tok.split('.') as [string, string];
  t.match(links.check('pop-1', `${(parseInt(exp, 36) + 1).toString(36)}.${sig}`), { ok: false, why: 'invalid' }, 'a later expiry is not signed');
  now += 600_000;
  t.match(links.check('pop-1', tok), { ok: false, why: 'expired' });
  t.match(links.check('pop-1', links.mint('pop-1', 1000)), { ok: true }, 'per-link lifetime');
});

t.test('sessions and the login limiter', async (t) => {
  let now = 0;
  const rep = { id: 'a', name: 'A', extensions: ['1'] };
  const s = new SessionStore(1000, () => now, 3);
  const a = s.create(rep);
  t.match(a.id, /^[A-Za-z0-9_-]{43}$/);
  t.equal(s.get(a.id), a);
  t.equal(s.get(undefined), undefined);
  s.create(rep);
  s.create(rep);
  s.create(rep);
  t.equal(s.size, 3, 'bounded');
  t.equal(s.get(a.id), undefined, 'the oldest went');
  now = 1000;
  t.equal(s.size, 3);
  s.create(rep);
  t.equal(s.size, 1, 'expired sessions swept');

  const l = new LoginLimiter({ perRepSource: 2, perSource: 3, perRep: 4, lockMs: 100, windowMs: 100 }, () => now, 5);
  t.equal(l.lockedFor('a', 'ip1'), 0);
  t.equal(l.fail('a', 'ip1'), 0);
  t.equal(l.fail('a', 'ip1'), 100, 'second failure locks (rep, source)');
  t.equal(l.lockedFor('a', 'ip1'), 100);
  t.equal(l.lockedFor('b', 'ip1'), 0, 'other reps from the source are not locked yet');
  l.fail('a', 'ip2');
  l.fail('a', 'ip3');
  t.ok(l.lockedFor('a', 'ip9') > 0, 'four failures of rep a from anywhere lock rep a');
  now += 101;
  t.equal(l.lockedFor('a', 'ip1'), 0, 'locks end');
  for (let i = 0; i < 50; i++) l.fail(`r${i}`, `s${i}`);
  t.ok(l.size <= 5, `bounded (${l.size})`);
});

t.test('loopback and visibility', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) t.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.5', 'console.example.com', '::ffff:10.0.0.1']) t.notOk(isLoopback(h), h);
  t.ok(repSees({ id: 'a', name: 'a', extensions: ['1001'] }, '1001'));
  t.notOk(repSees({ id: 'a', name: 'a', extensions: ['1001'] }, '1002'));
  t.ok(repSees({ id: 'a', name: 'a', extensions: ['*'] }, '1002'), '* sees all');
  t.equal(demoRefusal({ address: '127.0.0.1', reps: [] }), null);
  t.equal(demoRefusal({ address: '127.0.0.1', publicUrl: 'http://localhost:8088', reps: [] }), null);
  t.match(demoRefusal({ address: '0.0.0.0', reps: [] }), /listens on 0\.0\.0\.0, off loopback/);
  t.match(demoRefusal({ address: '127.0.0.1', publicUrl: 'https://console.example.com', reps: [] }), /publicUrl .* reachable off this host/);
  t.equal(demoRefusal({ address: '0.0.0.0', reps: [{ id: 'a', name: 'a', extensions: ['1'] }] }), null);
});

t.test('config: console.reps and the loopback-demo default', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'console-config-'));
  let n = 0;
  const file = (text: string): string => {
    const f = join(dir, `c${++n}.yaml`);
    writeFileSync(f, text);
    return f;
  };
  const load = (text: string | null, env: Record<string, string> = {}) =>
    loadConfig({ env, argv: text === null ? [] : ['--config', file(text)], cwd: dir });
  const strong = await hashPassword('maria-secret-1');

  const d = load(null);
  t.same([d.console.reps, d.console.sessionMinutes, d.console.popLinkMinutes], [[], 720, 10], 'defaults: no reps (loopback-demo)');

  const c = load(`
console:
  address: 0.0.0.0
  publicUrl: https://console.example.com
  sessionMinutes: 480
  popLinkMinutes: 5
  reps:
    - id: maria
      name: Maria Chen
      extensions: [2101]
      queues: ['2100']
      passwordHash: "${strong}"
    - id: desk-7
      extensions: ['*']
      loginTokenHash: ${loginTokenHash('x')}
`);
  t.same(c.console.reps, [
    { id: 'maria', name: 'Maria Chen', extensions: ['2101', '2100'], passwordHash: strong },
    { id: 'desk-7', name: 'desk-7', extensions: ['*'], loginTokenHash: loginTokenHash('x') },
  ]);
  t.equal(c.console.sessionMinutes, 480);
  t.equal(c.console.popLinkMinutes, 5);

  // refusals name the file and the field
  const refuse = (text: string | null, env: Record<string, string>, field: string, msg: RegExp): void => {
    let err: unknown;
    try {
      load(text, env);
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, `${field}: a ConfigError`);
    t.equal((err as ConfigError).field, field);
    t.match((err as Error).message, msg);
  };
  refuse('console: { address: 0.0.0.0 }\n', {}, 'console.reps', /^\/.*\.yaml: console\.reps: must not be empty when the console listens on 0\.0\.0\.0, off loopback/);
  refuse(null, { CONSOLE_ADDRESS: '10.0.0.5' }, 'console.reps', /^environment: console\.reps: must not be empty when the console listens on 10\.0\.0\.5/);
  refuse('console: { publicUrl: "https://console.example.com" }\n', {}, 'console.reps', /publicUrl \(https:\/\/console\.example\.com\) is reachable off this host/);
  t.doesNotThrow(() => load(null, { CONSOLE_ADDRESS: 'off' }), 'console off: nothing to protect');
  const rep = (body: string) => `console:\n  reps:\n    - ${body}\n`;
  refuse(rep('{ id: maria, extensions: [1] }'), {}, 'console.reps[0]', /needs a passwordHash or a loginTokenHash/);
  refuse(rep('{ id: maria, passwordHash: "x" }'), {}, 'console.reps[0].extensions', /at least one extension or queue/);
  refuse(rep('{ id: maria, extensions: [1], passwordHash: "plain-text" }'), {}, 'console.reps[0].passwordHash', /must be a scrypt hash .*console-hash/);
  refuse(rep(`{ id: maria, extensions: [1], passwordHash: "${await hashPassword('x', FAST)}" }`), {}, 'console.reps[0].passwordHash', /too cheap/);
  refuse(rep('{ id: maria, extensions: [1], loginTokenHash: abc }'), {}, 'console.reps[0].loginTokenHash', /sha256:<64 hex digits>/);
  refuse(rep('{ id: "bad id", extensions: [1], loginTokenHash: abc }'), {}, 'console.reps[0].id', /login name/);
  refuse(rep('{ id: maria, extensions: ["<b>"], loginTokenHash: abc }'), {}, 'console.reps[0].extensions[0]', /extension or queue number/);
  refuse(rep('{ id: maria, extension: [1] }'), {}, 'console.reps[0].extension', /unknown key/);
  refuse(`console:\n  reps:\n    - { id: a, extensions: [1], loginTokenHash: ${loginTokenHash('a')} }\n    - { id: a, extensions: [2], loginTokenHash: ${loginTokenHash('b')} }\n`, {}, 'console.reps[1].id', /listed twice/);
  refuse('console: { popLinkMinutes: 0 }\n', {}, 'console.popLinkMinutes', /integer 1-1440/);
  refuse('console: { reps: maria }\n', {}, 'console.reps', /must be a list of reps/);
});

t.test('voice-agent console-hash', async (t) => {
  const run = async (args: string[], input = ''): Promise<{ code: number; out: string; err: string }> => {
    const stdin = new PassThrough() as unknown as NodeJS.ReadStream;
    const out = new PassThrough();
    const err = new PassThrough();
    let o = '';
    let e = '';
    out.on('data', (d: Buffer) => (o += d));
    err.on('data', (d: Buffer) => (e += d));
    (stdin as unknown as PassThrough).end(input);
    const code = await hashCli(args, { stdin, stdout: out, stderr: err });
    return { code, out: o, err: e };
  };
  const h = await run([], 'maria-secret-1\n');
  t.equal(h.code, 0);
  t.match(h.out, /^\$scrypt\$ln=15,r=8,p=3\$\S+\n$/);
  t.ok(await verifyPassword('maria-secret-1', h.out.trim()), 'the printed hash checks the password (first line, newline dropped)');
  t.equal((await run([], 'short\n')).code, 2, 'too short');
  t.equal((await run(['--bogus'])).code, 2);
  const l = await run(['--link', '--rep', 'desk-7', '--url', 'https://console.example.com/']);
  t.equal(l.code, 0);
  const hash = /^loginTokenHash: (sha256:[0-9a-f]{64})$/m.exec(l.out)?.[1];
  const token = /^link: https:\/\/console\.example\.com\/login#rep=desk-7&token=([A-Za-z0-9_-]{43})$/m.exec(l.out)?.[1];
  t.ok(hash && token, l.out);
  t.ok(verifyLoginToken(token!, hash), 'the link logs in as that hash');
  t.equal((await run(['--link'])).code, 2, '--link needs --rep');
});
