/**
 * The impairment relay's decisions (src/qa/impair.ts): seeded and deterministic, the profile's
 * rates within statistical bounds, bursts of the configured mean length, jitter that reorders,
 * constant delay, duplication; SDP rewriting; and the CLI's errors for bad arguments.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Impairer, PROFILES, rewriteSdp, sdpMedia } from '../../src/qa/impair.ts';
import { ROOT } from '../helpers/server.ts';

const N = 20000;
const run = (profile: keyof typeof PROFILES | object, seed = 3): Array<number[] | null> => {
  const imp = new Impairer(typeof profile === 'string' ? PROFILES[profile]! : profile, seed);
  return Array.from({ length: N }, () => imp.decide());
};

t.test('the same seed gives the same decisions; another seed others', async (t) => {
  t.same(run('loss3', 5), run('loss3', 5), 'deterministic');
  t.notSame(run('loss3', 5), run('loss3', 6), 'seed matters');
});

t.test('independent loss at the profile rate', async (t) => {
  for (const [p, rate] of [['loss1', 0.01], ['loss3', 0.03], ['loss5', 0.05]] as const) {
    const lost = run(p).filter((d) => d === null).length / N;
    t.ok(Math.abs(lost - rate) < 0.006, `${p}: ${(lost * 100).toFixed(2)} % lost`);
  }
  t.equal(run('clean').filter((d) => d === null).length, 0, 'clean drops nothing');
});

t.test('burst loss: 2 % on average in runs of about 4', async (t) => {
  const d = run('burst2', 11);
  const lost = d.filter((x) => x === null).length;
  let runs = 0;
  for (let i = 0; i < d.length; i++) if (d[i] === null && (i === 0 || d[i - 1] !== null)) runs++;
  t.ok(Math.abs(lost / N - 0.02) < 0.008, `${((lost / N) * 100).toFixed(2)} % lost`);
  const mean = lost / runs;
  t.ok(mean > 2.5 && mean < 6, `mean burst ${mean.toFixed(2)} packets`);
});

t.test('jitter delays within [0, J] and reorders 20 ms packets; delay is constant; duplicates', async (t) => {
  const j = run('jitter60').map((x) => x![0]!);
  t.ok(Math.min(...j) >= 0 && Math.max(...j) <= 60, 'delays within 0..60 ms');
  // packet k leaves at 20k + d_k: count inversions between neighbours
  let inv = 0;
  for (let k = 1; k < j.length; k++) if (20 * k + j[k]! < 20 * (k - 1) + j[k - 1]!) inv++;
  t.ok(inv > N * 0.1, `${inv} neighbour inversions`);
  t.ok(run('delay150').every((x) => x!.length === 1 && x![0] === 150), '150 ms each');
  const dup = run('dup2').filter((x) => x!.length === 2);
  t.ok(Math.abs(dup.length / N - 0.02) < 0.006, `${dup.length} duplicated`);
  t.ok(dup.every((x) => x![1]! > x![0]! && x![1]! - x![0]! <= 5), 'the copy 1–5 ms after');
});

t.test('SDP: media address read and rewritten (c=, o=, m= port, a=rtcp)', async (t) => {
  const sdp = 'v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtcp:4001\r\na=sendrecv\r\n';
  t.same(sdpMedia(sdp), { address: '10.0.0.5', port: 4000 });
  const out = rewriteSdp(sdp, '127.0.0.1', 24000);
  t.same(sdpMedia(out), { address: '127.0.0.1', port: 24000 });
  t.match(out, /^o=- 1 1 IN IP4 127\.0\.0\.1$/m);
  t.match(out, /^a=rtcp:24001$/m);
  t.match(out, /^m=audio 24000 RTP\/AVP 0 101$/m);
});

t.test('voice-agent impair: clear errors for bad arguments', async (t) => {
  const cli = (...a: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin', 'voice-agent.mjs'), 'impair', ...a], { encoding: 'utf8' });
  let r = cli('--profile', 'loss3');
  t.equal(r.status, 2);
  t.match(r.stderr, /--target must be HOST:PORT/);
  r = cli('--target', '127.0.0.1:5060', '--profile', 'nope');
  t.match(r.stderr, /unknown profile "nope" \(known: clean, loss1/);
  r = cli('--target', '127.0.0.1:5060', '--loss', 'lots');
  t.match(r.stderr, /--loss must be a non-negative number, got "lots"/);
  r = cli('--target', '127.0.0.1:5060', '--burst', '2');
  t.match(r.stderr, /--burst must be LOSS:MEANBURST/);
});
