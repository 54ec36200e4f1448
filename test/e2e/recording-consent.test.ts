/**
 * Recording posture, disclosure and consent end to end: real SIP calls through the built-in
 * edge to the server on embedded defaults (flite, pocketsphinx, native VAD and recorder), one
 * tenant with `recording.posture: notify` (raised to consent for all-party-consent callers).
 *
 * - a California caller (+1 415…) hears the AI and recording disclosure and the consent
 *   question; a marker tone it sends before answering is NOT in the WAV, a second tone sent
 *   after its "1" (yes) is; the WAV is no longer than the call from the consent onward; the
 *   file is 0600 in a 0700 directory with a JSON sidecar; the CDR row carries posture,
 *   jurisdiction, consent and the path;
 * - a Texas caller (+1 214…) under `notify` hears the notice and is recorded after it (a tone
 *   sent during the notice is not in the file, one after the greeting is);
 * - a California caller who presses 2 produces no file, and the CDR says declined;
 * - an Illinois caller who says "Yes, that is fine." is recorded (consent by speech).
 */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { placeCall, type CallResult } from '../../src/cli/caller.ts';
import { toneAt, blockToneShare, fliteSay } from '../helpers/audio.ts';
import { cdrList } from '../helpers/cdr.ts';
import type { CdrRecord } from '../../src/cdr/index.ts';

t.setTimeout(240_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'rec-e2e-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const REC = path.join(tmp, 'recordings');
const TENANTS = path.join(tmp, 'tenants.yaml');
writeFileSync(TENANTS, `tenants:
  - id: acme
    name: Acme Supply
    default: true
    dids: ["18005550100"]
    greeting: Thank you for calling Acme Supply. How can I help you today?
    recording:
      posture: notify
      dir: ${REC}
      retentionDays: 30
`);
const env = {
  TENANTS_FILE: TENANTS, DATA_DIR: path.join(tmp, 'var'), CDR_DB: path.join(tmp, 'cdr.sqlite'), CRM_DB: path.join(tmp, 'crm.sqlite'),
  VOICE_MEDIA_RT_PRIORITY: '0', ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0',
};

let server: ServerHandle;
t.before(async () => { server = await startServer(env, { rtpPorts: 40, readyTimeoutMs: 60000 }); });
t.teardown(() => server?.stop());

const MARK_BEFORE = 1000; // Hz, sent before consent: must not be recorded
const MARK_AFTER = 1700; // Hz, sent after consent: must be recorded
const markTone = (hz: number): Int16Array => toneAt(8000, 8000, hz, 6000); // 1 s

/** Left (caller) channel and length of a stereo 16-bit WAV. */
function readStereo(file: string): { left: Int16Array; right: Int16Array; rate: number; seconds: number } {
  const b = readFileSync(file);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.readUInt16LE(22) !== 2) throw new Error(`${file}: not a stereo WAV`);
  const rate = b.readUInt32LE(24);
  const n = (b.length - 44) >> 2;
  const left = new Int16Array(n), right = new Int16Array(n);
  for (let i = 0; i < n; i++) { left[i] = b.readInt16LE(44 + i * 4); right[i] = b.readInt16LE(46 + i * 4); }
  return { left, right, rate, seconds: n / rate };
}

/** The recordings of one SIP Call-ID (by sidecar). */
function recordingsOf(callId: string): Array<{ wav: string; side: Record<string, unknown> }> {
  let names: string[] = [];
  try { names = readdirSync(REC); } catch { return []; }
  return names.filter((n) => n.endsWith('.json')).map((n) => ({ wav: path.join(REC, n.replace(/\.json$/, '.wav')), side: JSON.parse(readFileSync(path.join(REC, n), 'utf8')) as Record<string, unknown> }))
    .filter((r) => r.side.callId === callId);
}

async function rowOf(callId: string): Promise<CdrRecord | undefined> {
  for (let i = 0; i < 50; i++) {
    const r = (await cdrList(env)).find((x) => x.sipCallId === callId && x.status === 'completed');
    if (r) return r;
    await new Promise((res) => setTimeout(res, 200));
  }
  return undefined;
}

t.test('California caller: AI + recording disclosure, consent by key 1, recorded only from the consent on', async (t) => {
  const mark = server.log().length;
  let consentAt = 0, endAt = 0;
  const call: CallResult = await placeCall({
    port: server.sipPort, from: '+14155550142', maxCallMs: 60000,
    script: async (ctl) => {
      const disclosure = await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 30000 });
      t.notOk(disclosure.timedOut, 'the agent spoke first');
      await ctl.say(markTone(MARK_BEFORE)); // before consent: must not be in the recording
      await ctl.pause(300);
      await ctl.dtmf('1');
      consentAt = Date.now();
      await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 30000 }); // thanks + greeting
      await ctl.say(markTone(MARK_AFTER));
      await ctl.pause(800);
      endAt = Date.now();
    },
  });
  t.equal(call.status, 200);
  t.notOk(call.scriptError, call.scriptError?.message ?? 'script ran');
  const log = server.log().slice(mark);
  t.match(log, /msg="?recording posture"?[^\n]*posture=consent[^\n]*configured=notify[^\n]*jurisdiction=US-CA/, 'CA: notify raised to consent');
  t.match(log, /msg="?agent said"?[^\n]*You are speaking with an automated assistant/, 'AI disclosure said');
  t.match(log, /msg="?agent said"?[^\n]*This call is recorded/, 'recording disclosure said');
  t.match(log, /msg="?agent said"?[^\n]*Is it OK to record this call/, 'consent asked');
  t.match(log, /msg="?recording started"?[^\n]*consent=granted[^\n]*by=dtmf/, 'recording started on the yes');

  const recs = recordingsOf(call.callId);
  t.equal(recs.length, 1, 'one recording of this call');
  const r = recs[0]!;
  t.equal(statSync(r.wav).mode & 0o777, 0o600, 'WAV is 0600');
  t.equal(statSync(REC).mode & 0o777, 0o700, 'recording directory is 0700');
  t.equal(statSync(r.wav.replace(/\.wav$/, '.json')).mode & 0o777, 0o600, 'sidecar is 0600');
  t.match(r.side, { callId: call.callId, tenant: 'acme', jurisdiction: 'US-CA', posture: 'consent', consent: 'granted', consentBy: 'dtmf' });
  const wav = readStereo(r.wav);
  const sinceConsent = (endAt - consentAt) / 1000 + 1.0; // + the BYE round trip and the writer's last drain
  t.ok(wav.seconds > 1 && wav.seconds <= sinceConsent, `WAV ${wav.seconds.toFixed(2)} s ≤ consent → hang-up ${sinceConsent.toFixed(2)} s`);
  const before = blockToneShare(wav.left, wav.rate, MARK_BEFORE);
  const after = blockToneShare(wav.left, wav.rate, MARK_AFTER);
  t.ok(after > 0.05, `the tone sent after consent is on the caller channel (${after.toFixed(3)})`);
  t.ok(before < 0.01, `the tone sent before consent is not (${before.toFixed(4)})`);

  const row = await rowOf(call.callId);
  t.ok(row, 'CDR row');
  t.match(row, { recordingPosture: 'consent', jurisdiction: 'US-CA', consent: 'granted', recordingPath: r.wav });
  t.ok(row?.consentAt && Date.parse(row.consentAt) > Date.parse(row.answeredAt!), 'consent time after answer');
});

t.test('Texas caller under notify: the notice, then recorded (a tone during the notice is not)', async (t) => {
  const mark = server.log().length;
  const call = await placeCall({
    port: server.sipPort, from: '+12145550123', maxCallMs: 60000,
    script: async (ctl) => {
      await ctl.pause(600); // the notice is playing
      await ctl.say(markTone(MARK_BEFORE));
      await ctl.waitForAgent({ silenceMs: 1500, timeoutMs: 30000 }); // notice + greeting
      await ctl.say(markTone(MARK_AFTER));
      await ctl.pause(800);
    },
  });
  t.equal(call.status, 200);
  const log = server.log().slice(mark);
  t.match(log, /msg="?recording posture"?[^\n]*posture=notify[^\n]*jurisdiction=US-TX/);
  t.notMatch(log, /Is it OK to record this call/, 'no consent question under notify in a one-party state');
  t.match(log, /msg="?recording started"?[^\n]*consent=notified/);
  const recs = recordingsOf(call.callId);
  t.equal(recs.length, 1, 'recorded');
  const wav = readStereo(recs[0]!.wav);
  t.ok(blockToneShare(wav.left, wav.rate, MARK_AFTER) > 0.05, 'caller audio after the notice recorded');
  t.ok(blockToneShare(wav.left, wav.rate, MARK_BEFORE) < 0.01, 'caller audio during the notice not recorded');
  t.ok(blockToneShare(wav.right, wav.rate, 0) >= 0, 'agent channel present');
  const row = await rowOf(call.callId);
  t.match(row, { recordingPosture: 'notify', jurisdiction: 'US-TX', consent: 'notified', recordingPath: recs[0]!.wav });
});

t.test('a caller who declines (key 2) is not recorded, and the call goes on', async (t) => {
  const mark = server.log().length;
  const call = await placeCall({
    port: server.sipPort, from: '+13105550177', maxCallMs: 60000,
    script: async (ctl) => {
      await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 30000 });
      await ctl.dtmf('2');
      const next = await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 30000 }); // "not recorded" + greeting
      t.notOk(next.timedOut, 'the agent goes on after the refusal');
      await ctl.say(markTone(MARK_AFTER));
      await ctl.pause(500);
    },
  });
  t.equal(call.status, 200);
  const log = server.log().slice(mark);
  t.match(log, /msg="?recording declined; not recorded"?[^\n]*consent=declined/);
  t.match(log, /msg="?agent said"?[^\n]*will not be recorded/);
  t.notMatch(log, /msg="?recording started"?/, 'the recorder never started');
  t.equal(recordingsOf(call.callId).length, 0, 'no sidecar for this call');
  t.notOk(readdirSync(REC).some((n) => n.includes(call.callId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 20))), 'no WAV for this call');
  const row = await rowOf(call.callId);
  t.match(row, { recordingPosture: 'consent', jurisdiction: 'US-CA', consent: 'declined', recordingPath: null });
});

t.test('an Illinois caller consents by saying yes', async (t) => {
  const mark = server.log().length;
  const call = await placeCall({
    port: server.sipPort, from: '+13125550188', maxCallMs: 60000,
    script: async (ctl) => {
      await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 30000 });
      await ctl.say(fliteSay('Yes, that is fine.'));
      await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 30000 });
      await ctl.pause(300);
    },
  });
  t.equal(call.status, 200);
  const log = server.log().slice(mark);
  t.match(log, /msg="?recording posture"?[^\n]*jurisdiction=US-IL/);
  t.match(log, /msg="?recording started"?[^\n]*consent=granted[^\n]*by=speech/, 'recorded on the spoken yes');
  t.equal(recordingsOf(call.callId).length, 1);
  const row = await rowOf(call.callId);
  t.match(row, { recordingPosture: 'consent', jurisdiction: 'US-IL', consent: 'granted' });
});
