/**
 * Flood defence with real SIPp peers: one source sends requests faster than the per-source
 * limit (more than 16 in 2 s) and is banned — the requests after that get nothing, trunk
 * sources are unaffected, and the ban is counted in /metrics and logged. Two servers on one
 * Redis (REDIS_URL) share the ban. The unknown source is accepted here
 * (`SIP_UNKNOWN_SOURCES=accept`) so that its requests are answered until the ban: the
 * difference is visible on the wire.
 */
import t from 'tap';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage, type SippOptions, type SippResult } from '../helpers/sipp.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { metric } from '../helpers/metrics.ts';
import { requireTool } from '../helpers/require.ts';

if (!haveSipp()) {
  requireTool(t, 'sip flood', false, 'sipp', 'sip-tester');
} else {
  t.setTimeout(180_000);
  let redis: TestRedis;
  let a: ServerHandle;
  let b: ServerHandle;
  t.before(async () => {
    redis = await startTestRedis();
    const env = {
      TRUNKS: '[{name: lab, sources: [127.0.0.1]}]', SIP_UNKNOWN_SOURCES: 'accept', REDIS_URL: redis.url,
      ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0',
    };
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
  });
  t.teardown(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  const flood = (s: ServerHandle, localIp: string, o: SippOptions = {}): Promise<SippResult> => runSipp('uac-flood', {
    target: `127.0.0.1:${s.sipPort}`, localIp, timeoutSec: 30, ...o, args: ['-nr', ...(o.args ?? [])],
  });
  const count = (r: SippResult, word: string): number => r.log.split('\n').filter((l) => l.trim() === word).length;
  const metrics = async (s: ServerHandle): Promise<string> => (await fetch(`${s.opsUrl}/metrics`)).text();

  t.test('one source over the limit is banned: the rest of its flood gets nothing', async (t) => {
    const r = await flood(a, '127.0.0.2', { calls: 60, rate: 60 });
    t.equal(r.code, 0, sippMessage(r));
    const answered = count(r, 'ANSWERED');
    const dropped = count(r, 'DROPPED');
    t.equal(answered + dropped, 60, 'every request accounted for');
    t.ok(answered >= 16 && answered <= 18, `the first 16 are answered, the ban starts at the 17th (answered ${answered})`);
    t.equal(dropped, 60 - answered, 'the rest got no response');
    const m = await metrics(a);
    t.equal(metric(m, 'voice_agent_sip_bans_total'), 1, 'sip_bans_total 1');
    t.equal(metric(m, 'voice_agent_sip_banned_sources'), 1, 'sip_banned_sources 1');
    t.equal(metric(m, 'voice_agent_sip_dropped_total', { reason: 'banned' }), dropped, 'sip_dropped_total{reason="banned"} = the unanswered requests');
    t.match(a.log(), /msg="SIP source banned: request rate over the limit"[^\n]*source=127\.0\.0\.2[^\n]*limit=16\/2s[^\n]*banSeconds=300[^\n]*shared=redis/, 'the ban is logged');
    t.match(a.log(), /msg="SIP request dropped" reason=banned source=udp\/127\.0\.0\.2[^\n]*ua="SIPp uac-flood"[^\n]*count=1/, 'the first dropped request is logged with source and User-Agent');
    const lines = a.log().split('\n').filter((l) => /msg="SIP request dropped" reason=banned/.test(l)).length;
    t.ok(lines <= 2, `dropped requests are logged rate-limited (${lines} line(s) for ${dropped} drops)`);
  });

  t.test('later requests from the banned source get nothing; a trunk source is not touched', async (t) => {
    const later = await flood(a, '127.0.0.2', { calls: 3, rate: 1 });
    t.equal(count(later, 'DROPPED'), 3, 'banned: nothing comes back, even at a gentle rate');
    const trunk = await flood(a, '127.0.0.1', { calls: 60, rate: 60 });
    t.equal(count(trunk, 'ANSWERED'), 60, 'the same flood from the trunk source is answered in full (trunk sources are exempt)');
    t.equal(metric(await metrics(a), 'voice_agent_sip_bans_total'), 1, 'no second ban');
  });

  t.test('the ban is shared through Redis: the other node drops the source after its first request', async (t) => {
    const r = await flood(b, '127.0.0.2', { calls: 5, rate: 5 });
    t.equal(r.code, 0, sippMessage(r));
    t.ok(count(r, 'ANSWERED') <= 1, `at most the first request passes on the other node (it learns of the ban from Redis) — answered ${count(r, 'ANSWERED')}`);
    t.ok(count(r, 'DROPPED') >= 4, 'the rest are dropped');
    t.equal(metric(await metrics(b), 'voice_agent_sip_banned_sources'), 1, 'banned on the other node too');
  });
}
