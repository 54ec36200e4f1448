/**
 * "Safe on a public trunk", against a freshly started server (built-in edge) with real SIPp
 * peers on several loopback addresses, each playing a different source:
 *
 *   127.0.0.1  trunk "lab": at most 2 calls at once, may only call +1 800 555 0100 / 0111
 *   127.0.0.3  trunk "carrier": digest authentication, its calls go to tenant northwind-status
 *   127.0.0.5  trunk "pbx": no rules (the no-ACK caller)
 *   127.0.0.2  no trunk: an unknown source
 *
 * What is checked: a scanner's User-Agent gets no response at all; an unknown source is
 * dropped silently on UDP and refused 403 on TCP; digest authentication (401 challenge →
 * authenticated INVITE → 200; a wrong password → 403); allowed DIDs (404 otherwise); the
 * per-trunk call limit (503 + Retry-After); tenant binding; a 200 that is never ACKed (no
 * conversation, no tool calls, at most a packet of RTP, CDR `no-ack`); every refusal counted
 * in /metrics. The flood → ban flows are in sip-flood.test.ts.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage, type SippOptions, type SippResult } from '../helpers/sipp.ts';
import { metric } from '../helpers/metrics.ts';
import type { CdrRecord } from '../../src/cdr/index.ts';
import { cdrList as cdrListCli } from '../helpers/cdr.ts';
import { requireTool } from '../helpers/require.ts';

if (!haveSipp()) {
  requireTool(t, 'sip guard', false, 'sipp', 'sip-tester');
} else {
  t.setTimeout(240_000);
  const tmp = mkdtempSync(path.join(tmpdir(), 'sip-guard-e2e-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const CDR_DB = path.join(tmp, 'cdr.sqlite');
  const TRUNKS = JSON.stringify([
    { name: 'lab', sources: ['127.0.0.1'], maxCalls: 2, dids: ['+18005550100', '+1 800 555 0111'] },
    { name: 'carrier', sources: ['127.0.0.3'], tenant: 'northwind-status', auth: { realm: 'voice.test', user: 'carrier', passwordEnv: 'CARRIER_SIP_PASSWORD' } },
    { name: 'pbx', sources: ['127.0.0.5/32'] },
  ]);

  let server: ServerHandle;
  t.before(async () => {
    server = await startServer({
      TRUNKS, CARRIER_SIP_PASSWORD: 'c4rr13r-s3cret', CDR_DB, DATA_DIR: path.join(tmp, 'var'),
      // this suite is about access, not load: load-based admission off (a busy box would 503)
      ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0',
      // a 200 never ACKed is given up after 64·T1: 6.4 s instead of 32 s
      SIP_T1_MS: '100',
    });
  });
  t.teardown(() => server?.stop());

  const target = (): string => `127.0.0.1:${server.sipPort}`;
  const guard = (o: SippOptions & { ua?: string } = {}): Promise<SippResult> => runSipp('uac-guard', {
    target: target(), durationMs: 500, timeoutSec: 20, ...o, args: ['-key', 'ua', o.ua ?? 'SIPp uac-guard', ...(o.args ?? [])],
  });
  const metrics = async (): Promise<string> => (await fetch(`${server.opsUrl}/metrics`)).text();
  /** The server's log from `from` on, once a line matches `until` (or after 5 s). */
  const logSince = async (from: number, until: RegExp): Promise<string> => {
    for (let i = 0; i < 50 && !until.test(server.log().slice(from)); i++) await new Promise((r) => setTimeout(r, 100));
    return server.log().slice(from);
  };

  t.test('a scanner (User-Agent friendly-scanner) gets no response at all, even from a trunk source', async (t) => {
    const before = await metrics();
    const r = await guard({ ua: 'friendly-scanner', args: ['-nr'] });
    t.equal(r.code, 0, sippMessage(r));
    t.equal(r.log.trim(), 'NO-RESPONSE', 'no 100, no final response');
    const after = await metrics();
    t.equal(metric(after, 'voice_agent_sip_dropped_total', { reason: 'scanner' }) - metric(before, 'voice_agent_sip_dropped_total', { reason: 'scanner' }), 1, 'sip_dropped_total{reason="scanner"} +1');
    t.match(server.log(), /msg="SIP request dropped"[^\n]*reason=scanner[^\n]*source=udp\/127\.0\.0\.1[^\n]*ua=friendly-scanner/, 'logged with the source and User-Agent');
  });

  t.test('an unknown source: silently dropped on UDP, 403 on TCP', async (t) => {
    const before = await metrics();
    const udp = await guard({ localIp: '127.0.0.2', args: ['-nr'] });
    t.equal(udp.code, 0, sippMessage(udp));
    t.equal(udp.log.trim(), 'NO-RESPONSE', 'UDP: nothing comes back');
    const tcp = await guard({ localIp: '127.0.0.2', transport: 'tcp' });
    t.equal(tcp.code, 0, sippMessage(tcp));
    t.equal(tcp.log.trim(), 'FINAL 403', 'TCP: 403 Forbidden');
    const after = await metrics();
    const d = (name: string, labels: Record<string, string>): number => metric(after, name, labels) - metric(before, name, labels);
    t.equal(d('voice_agent_sip_dropped_total', { reason: 'acl' }), 1, 'sip_dropped_total{reason="acl"} +1');
    t.equal(d('voice_agent_invites_rejected_total', { reason: 'acl' }), 1, 'invites_rejected_total{reason="acl"} +1');
    t.equal(d('voice_agent_sip_refused_total', { reason: 'acl', method: 'INVITE' }), 1, 'sip_refused_total{reason="acl",method="INVITE"} +1');
    t.match(server.log(), /msg="SIP request dropped"[^\n]*reason=acl[^\n]*source=udp\/127\.0\.0\.2/, 'the drop is logged with the source');
  });

  t.test('digest: 401 challenge → authenticated INVITE → 200 (UDP and TCP); wrong password → 403', async (t) => {
    const before = await metrics();
    for (const transport of ['udp', 'tcp'] as const) {
      const r = await runSipp('uac-auth', {
        target: target(), localIp: '127.0.0.3', transport, durationMs: 500, timeoutSec: 20,
        args: ['-au', 'carrier', '-ap', 'c4rr13r-s3cret'],
      });
      t.equal(r.code, 0, sippMessage(r, `${transport}: authenticated call`));
      t.same(r.log.trim().split('\n'), ['CHALLENGED 401', 'FINAL 200'], `${transport}: challenged, then answered`);
    }
    const bad = await runSipp('uac-auth', {
      target: target(), localIp: '127.0.0.3', durationMs: 500, timeoutSec: 20, args: ['-au', 'carrier', '-ap', 'guess'],
    });
    t.equal(bad.code, 0, sippMessage(bad));
    t.same(bad.log.trim().split('\n'), ['CHALLENGED 401', 'FINAL 403'], 'wrong password: 403');
    const after = await metrics();
    const d = (reason: string): number => metric(after, 'voice_agent_invites_rejected_total', { reason }) - metric(before, 'voice_agent_invites_rejected_total', { reason });
    t.equal(d('auth-challenge'), 3, 'three challenges (invites_rejected_total{reason="auth-challenge"})');
    t.equal(d('auth'), 1, 'one failure (invites_rejected_total{reason="auth"})');
    t.match(server.log(), /msg="INVITE failed digest authentication"[^\n]*trunk=carrier[^\n]*why=bad-password[^\n]*source=udp\/127\.0\.0\.3/, 'the failure is logged');
  });

  t.test('tenant binding: the carrier trunk\'s calls go to its tenant whatever the number', async (t) => {
    const from = server.log().length;
    const r = await runSipp('uac-auth', {
      target: target(), localIp: '127.0.0.3', service: '18005550100', durationMs: 500, timeoutSec: 20,
      args: ['-au', 'carrier', '-ap', 'c4rr13r-s3cret'],
    });
    t.equal(r.code, 0, sippMessage(r));
    const log = await logSince(from, /msg="?call start/);
    t.match(log, /msg="call start"[^\n]*to=\+18005550100[^\n]*tenant=northwind-status[^\n]*matched=trunk:carrier[^\n]*trunk=carrier/, '+1 800 555 0100 (northwind\'s DID) → northwind-status');
  });

  t.test('allowed DIDs: the lab trunk reaches its numbers, any other gets 404', async (t) => {
    const before = await metrics();
    const ok = await guard({ service: '18005550111' });
    t.equal(ok.code, 0, sippMessage(ok));
    t.equal(ok.log.trim(), 'FINAL 200', '+1 800 555 0111 (written with spaces in the config): answered');
    const no = await guard({ service: '18005550199' });
    t.equal(no.code, 0, sippMessage(no));
    t.equal(no.log.trim(), 'FINAL 404', 'another number: 404');
    const after = await metrics();
    t.equal(metric(after, 'voice_agent_invites_rejected_total', { reason: 'did' }) - metric(before, 'voice_agent_invites_rejected_total', { reason: 'did' }), 1, 'invites_rejected_total{reason="did"} +1');
  });

  t.test('per-trunk call limit: the third concurrent call from the lab trunk gets 503 + Retry-After', async (t) => {
    const before = await metrics();
    const r = await guard({ calls: 3, limit: 3, rate: 30, durationMs: 2500 });
    t.equal(r.code, 0, sippMessage(r));
    const finals = r.log.split('\n').filter((l) => l.startsWith('FINAL')).sort();
    t.same(finals, ['FINAL 200', 'FINAL 200', 'FINAL 503'], 'two answered, one refused');
    t.match(r.log, /RETRY-AFTER [1-9]/, 'the 503 says when to retry');
    const after = await metrics();
    t.equal(metric(after, 'voice_agent_invites_rejected_total', { reason: 'trunk-calls' }) - metric(before, 'voice_agent_invites_rejected_total', { reason: 'trunk-calls' }), 1, 'invites_rejected_total{reason="trunk-calls"} +1');
    // the slots come back when the calls end
    const again = await guard({});
    t.equal(again.log.trim(), 'FINAL 200', 'a call after them is answered');
  });

  t.test('a 200 never ACKed: no conversation, no tool calls, at most one RTP packet, CDR no-ack', async (t) => {
    const sock = createSocket('udp4');
    let packets = 0;
    sock.on('message', () => packets++);
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    t.teardown(() => sock.close());
    const from = server.log().length;
    const r = await runSipp('uac-no-ack', {
      target: target(), localIp: '127.0.0.5', timeoutSec: 60, args: ['-key', 'rtp_port', String(sock.address().port)],
    });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /GOT 200/, 'the INVITE was answered 200');
    t.match(r.log, /BYE Reason: .*ACK timeout/, 'the server hung up for want of an ACK (64·T1, T1 = 100 ms)');
    const log = await logSince(from, /msg="?cdr written/);
    const callId = /msg="call start" callId=(\S+)/.exec(log)?.[1];
    t.ok(callId, 'the call started');
    t.ok(packets <= 1, `no greeting RTP to the offered address (${packets} packet(s); the bound is 1)`);
    t.notMatch(log, /msg="call answered"/, 'never answered');
    t.notMatch(log, /msg="tool call"/, 'no tool calls');
    t.notMatch(log, /mod=dialogue/, 'no conversation');
    t.match(log, /msg=cdr [^\n]*reason=no-ack[^\n]*durationMs=0/, 'the call line says no-ack');
    const rows = await cdrList();
    const row = rows.find((x) => x.sipCallId === callId);
    t.ok(row, 'its CDR row');
    t.equal(row?.endReason, 'no-ack', 'CDR end reason no-ack');
    t.equal(row?.answeredAt, null, 'not answered');
    t.equal(row?.durationMs, 0);
    t.equal(row?.outcome, 'failed');
    t.equal(row?.outcomeRef, 'no-ack');
  });

  /** `voice-agent cdr list --json` on the suite's CDR file. */
  const cdrList = (): Promise<CdrRecord[]> => cdrListCli({ CDR_DB });
}
