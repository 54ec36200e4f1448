/**
 * The CDR recorder (src/cdr/recorder.ts) over a real dialogue controller and rules agent
 * (the dialogue harness): the row is written at answer, follows the conversation, is
 * completed at hang-up with outcome, usage, quality and cost; a call never answered still
 * gets its row; a crash mid-call leaves the row `incomplete` at the next start.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CdrRecorder, SqliteCdrStore, deriveOutcome, gapPercentiles, mediaQuality, pricesFor, startCdr, type CdrStore,
} from '../../src/cdr/index.ts';
import { harness } from './dialogue-harness.ts';
import { FakeCall } from './cdr-helpers.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = mkdtempSync(path.join(tmpdir(), 'cdr-rec-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function recorder(store: CdrStore, flushMs = 5): CdrRecorder {
  return new CdrRecorder({
    store, flushMs,
    prices: (id) => pricesFor({ default: { carrier: { perMinute: 0.01, incrementSeconds: 1 } } }, id),
    releaseCauses: { 'agent-hangup': 'Q.850;cause=16;text="normal call clearing"' },
  });
}

const STATS = {
  packetsIn: 980, packetsOut: 1200,
  jitter: { expected: 1000, lost: 20, jitterMs: 4.5, late: 3, concealed: 25 },
  rtcp: { remoteReport: { fractionLost: 0.01, cumulativeLost: 12, jitterMs: 2.25, rttMs: 40 } },
};

t.test('reorder call: open row at answer, progress mid-call, completed at hang-up with outcome, usage and cost', async (t) => {
  const store = new SqliteCdrStore({ file: ':memory:' });
  t.teardown(() => store.close());
  const rec = recorder(store);
  const h = await harness();
  t.teardown(() => h.close());
  const call = new FakeCall(h.ctx.callId);
  rec.track(call);
  call.answer();
  await rec.flush();
  const open = await store.get(call.callId);
  t.match(open, { status: 'open', tenant: 'northwind', fromNumber: '+14155550142', toNumber: '18005550100', source: 'udp/127.0.0.1:5070', endedAt: null, outcome: null });
  t.ok(open!.answeredAt, 'answer time written');

  rec.conversation(call, { controller: h.dialogue, state: h.agent.state, sttProvider: 'pocketsphinx', ttsProvider: 'flite' });
  await h.start();
  h.playOut();
  await h.say('i need twenty of h x four four one zero');
  h.playOut();
  await new Promise((r) => setTimeout(r, 30));
  await rec.flush();
  const mid = await store.get(call.callId);
  t.equal(mid!.status, 'open', 'still open while the call talks');
  t.same(mid!.transcript.map((l) => l.role), ['agent', 'caller', 'agent'], 'the transcript so far is in the row');
  t.match(mid, { accountId: 'ACC-10042', accountName: 'Acme Plumbing Supply', contactName: 'Dana Reyes', turns: 1 });

  await h.say('yes');
  h.playOut();
  const so = h.agent.state.order.placed[0]?.order_number;
  t.ok(so, 'the order was placed');
  call.end('caller-bye', STATS);
  await rec.flush();
  const r = (await store.get(call.callId))!;
  t.match(r, {
    status: 'completed', outcome: 'order_placed', outcomeRef: so, hangupBy: 'caller', endReason: 'caller-bye', sipStatus: 200,
    releaseCause: null, agent: 'rules', language: 'en-US', turns: 2, incompleteReason: null,
  });
  t.ok(r.endedAt && r.durationMs !== null && r.durationMs >= 0);
  const turns = r.transcript.map((l) => l.role).filter((role, i, a) => i === 0 || a[i - 1] !== role);
  t.same(turns, ['agent', 'caller', 'agent', 'caller', 'agent'], 'both sides, in order (agent lines are sentences)');
  t.match(r.transcript.find((l) => l.role === 'caller'), { text: 'i need twenty of h x four four one zero', confidence: 0.9 });
  t.ok(r.transcript.some((l) => l.role === 'agent' && /order is booked/.test(l.text)), "the agent's words are in it");
  t.ok(r.transcript.every((l) => !Number.isNaN(Date.parse(l.at))), 'every line has its time');
  t.ok(r.sttSeconds > 0, `STT seconds counted (${r.sttSeconds})`);
  t.equal(r.ttsChars, h.dialogue.transcript.filter((e) => e.role === 'agent').reduce((n, e) => n + e.text.length, 0), 'TTS characters = what the agent said');
  t.equal(r.llmPromptTokens, 0);
  t.match(r.media, { codec: 'PCMU', packetsIn: 980, packetsOut: 1200, lossInPct: 2, jitterInMs: 4.5, lossOutPct: 1, jitterOutMs: 2.25, rttMs: 40, concealed: 25, late: 3 });
  t.ok(r.media!.mos! > 4 && r.media!.mos! < 4.5, `MOS ${r.media!.mos} from 2 % loss, 4.5 ms jitter, 40 ms RTT`);
  t.equal(r.gapP50Ms, gapPercentiles(h.dialogue.timings).gapP50Ms);
  const items = Object.fromEntries(r.cost!.items.map((i) => [i.item, i]));
  t.match(items.stt, { provider: 'pocketsphinx', amount: 0 });
  t.match(items.tts, { provider: 'flite', quantity: r.ttsChars, amount: 0 });
  t.match(items.carrier, { unitPrice: 0.01 });
  t.same(r.cost!.unpriced, []);
  t.same(r.detail.orders, h.agent.state.order.placed);
});

t.test('a hand-off that finds the rep busy: the message taken is the outcome, the escalation is recorded', async (t) => {
  const store = new SqliteCdrStore({ file: ':memory:' });
  t.teardown(() => store.close());
  const rec = recorder(store);
  const h = await harness({ transferOutcome: () => ({ ok: false, why: 'busy', status: 486 }) });
  t.teardown(() => h.close());
  const call = new FakeCall(h.ctx.callId);
  rec.track(call);
  call.answer();
  rec.conversation(call, { controller: h.dialogue, state: h.agent.state, sttProvider: 'pocketsphinx', ttsProvider: 'flite' });
  await h.start();
  h.playOut();
  await h.say('let me talk to my rep');
  h.playOut();
  await h.settle();
  h.playOut();
  await h.settle();
  t.equal(h.cases.length, 1, 'the hand-off failed and a message was taken');
  // what HandoffService notes on the call
  call.handoffInfo = { handoff: 'warm', handoffTarget: '2101', handoffTrigger: 'routing', handoffOutcome: 'busy (486)' };
  call.end('caller-bye');
  await rec.flush();
  const r = (await store.get(call.callId))!;
  t.match(r, {
    outcome: 'message_taken', outcomeRef: h.cases[0]!.id, outcomes: ['message_taken', 'escalated'],
    escalationTrigger: 'routing', escalationTarget: '2101', escalationOutcome: 'busy (486)', escalationReason: /rep/,
  });
  t.match(r.detail.messages, [{ id: h.cases[0]!.id, kind: 'handoff' }]);
});

t.test('a message taken: the case number replaces the message id when the queue reports it, even after the hang-up', async (t) => {
  const store = new SqliteCdrStore({ file: ':memory:' });
  t.teardown(() => store.close());
  const rec = recorder(store);
  const call = new FakeCall();
  rec.track(call);
  call.answer();
  const state = {
    order: { placed: [] }, messages: [{ id: `${call.callId}:msg:1`, kind: 'after_hours_message', reason: 'valves', callbackNumber: '14155550142' }],
    engine: 'rules' as const, language: 'en-US', lane: 'ended' as const,
  };
  const ctl = Object.assign(new (await import('node:events')).EventEmitter(), { transcript: [], timings: [], usage: { sttSeconds: 0, ttsChars: 0, bargeIns: 0 } });
  rec.conversation(call, { controller: ctl, state: state as never, sttProvider: 'pocketsphinx', ttsProvider: 'flite' });
  ctl.emit('ended', { how: 'hangup', reason: 'message taken' });
  call.end('agent-hangup');
  await rec.flush();
  t.match(await store.get(call.callId), { outcome: 'message_taken', outcomeRef: `${call.callId}:msg:1`, hangupBy: 'agent', releaseCause: /cause=16/ });
  rec.caseCreated(call.callId, `${call.callId}:msg:1`, 'CASE-7')
  await rec.flush();
  const r = (await store.get(call.callId))!;
  t.equal(r.outcomeRef, 'CASE-7');
  t.same(r.detail.cases, { [`${call.callId}:msg:1`]: 'CASE-7' });
  t.equal(r.detail.agentEnd, 'message taken', "the dialogue's own end reason is kept");
  // a case created by a later process (spool replay) for a call this one never saw
  const other = new SqliteCdrStore({ file: ':memory:' });
  t.teardown(() => other.close());
  const later = recorder(store);
  later.caseCreated(call.callId, `${call.callId}:msg:1`, 'CASE-7B');
  await later.flush();
  t.equal((await store.get(call.callId))!.outcomeRef, 'CASE-7B', 'patched through the store by SIP Call-ID');
});

t.test('calls never answered get their row too', async (t) => {
  const store = new SqliteCdrStore({ file: ':memory:' });
  t.teardown(() => store.close());
  const rec = recorder(store);
  const canceled = new FakeCall();
  rec.track(canceled);
  canceled.end('canceled');
  const rejected = new FakeCall();
  rec.track(rejected);
  rejected.end('rejected');
  await rec.flush();
  t.match(await store.get(canceled.callId), { status: 'completed', answeredAt: null, durationMs: 0, outcome: 'abandoned', hangupBy: 'caller', sipStatus: 487, carrierSeconds: 0 });
  t.match(await store.get(rejected.callId), { status: 'completed', outcome: 'failed', hangupBy: 'system', sipStatus: 480 });
});

t.test('crash mid-call: the row stays, marked incomplete at the next start', async (t) => {
  const file = path.join(tmp, 'crash', 'cdr.sqlite');
  const script = path.join(tmp, 'crash-child.mts');
  writeFileSync(script, `
import { EventEmitter } from 'node:events';
import { startCdr } from ${JSON.stringify(path.join(ROOT, 'src', 'cdr', 'index.ts'))};
const cdr = (await startCdr({ settings: { db: ${JSON.stringify(file)}, retentionDays: 90, prices: {} }, tenants: [] }))!;
const call = Object.assign(new EventEmitter(), {
  callId: 'crash-1@test', from: '+14155550142', to: '18005550100', tenant: { id: 'northwind' }, source: 'udp/127.0.0.1:5070',
  startedAt: Date.now(), answeredAt: null as number | null, endedAt: null, endReason: null, audio: { codec: 'PCMU' },
});
cdr.recorder.track(call);
call.answeredAt = Date.now();
call.emit('answered');
await cdr.recorder.flush();
process.stdout.write('answered\\n');
process.kill(process.pid, 'SIGKILL');
`);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'error' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const sig = await new Promise((r) => child.on('exit', (code, signal) => r(signal ?? code)));
  t.equal(sig, 'SIGKILL', `the process died (${err.trim().slice(-300)})`);
  t.match(out, /answered/);
  const before = new SqliteCdrStore({ file, readonly: true });
  t.match(await before.get('crash-1@test'), { status: 'open', endedAt: null }, 'the row was written at answer');
  await before.close();

  const cdr = (await startCdr({ settings: { db: file, retentionDays: 90, prices: {} }, tenants: [] }))!;
  t.teardown(() => cdr.close());
  t.equal(cdr.recovered, 1);
  const r = (await cdr.store.get('crash-1@test'))!;
  t.match(r, { status: 'incomplete', endedAt: null, durationMs: null, outcome: null, fromNumber: '+14155550142' });
  t.match(r.incompleteReason, /process ended before the call did .* pid \d+; last written 20/);
  t.same((await cdr.store.list({ status: 'incomplete' })).map((x) => x.sipCallId), ['crash-1@test'], 'listed, not absent');
});

t.test('retention from tenants.yaml overrides and the config default, at start', async (t) => {
  const file = path.join(tmp, 'ret', 'cdr.sqlite');
  const s = new SqliteCdrStore({ file });
  const old = new Date(Date.now() - 40 * 86_400_000).toISOString();
  await s.insert((await import('./cdr-helpers.ts')).record({ id: 'a', tenant: 'short', startedAt: old, status: 'completed' }));
  await s.insert((await import('./cdr-helpers.ts')).record({ id: 'b', tenant: 'long', startedAt: old, status: 'completed' }));
  await s.close();
  const cdr = (await startCdr({ settings: { db: file, retentionDays: 365, prices: {} }, tenants: [{ id: 'short', cdr: { retentionDays: 30 } }, { id: 'long' }] }))!;
  t.teardown(() => cdr.close());
  t.same((await cdr.store.list()).map((r) => r.id), ['b']);
});

t.test('deriveOutcome: the most significant outcome first', async (t) => {
  const st = (o: Partial<{ placed: Array<{ order_number: string }>; status: Record<string, unknown>; messages: Array<{ id: string }> }>) => ({
    order: { placed: (o.placed ?? []) as never[], ...(o.status ? { status: o.status } : {}) }, messages: (o.messages ?? []) as never[],
  });
  t.same(deriveOutcome({ endReason: 'caller-bye', answered: true, state: st({ placed: [{ order_number: 'SO-1' }, { order_number: 'SO-2' }] }), handoff: null }),
    { outcome: 'order_placed', ref: 'SO-1,SO-2', outcomes: ['order_placed'] });
  t.same(deriveOutcome({ endReason: 'agent-hangup', answered: true, state: st({ status: { found: true, order_number: 'SO-9', po_number: 'PO12345' } }), handoff: null }),
    { outcome: 'status_given', ref: 'SO-9', outcomes: ['status_given'] });
  t.same(deriveOutcome({ endReason: 'transferred', answered: true, state: st({}), handoff: { handoff: 'blind', handoffTarget: '2101', handoffOutcome: 'referred' } }),
    { outcome: 'transferred', ref: '2101', outcomes: ['transferred'] });
  t.same(deriveOutcome({ endReason: 'caller-bye', answered: true, state: st({}), handoff: { handoff: 'warm', handoffTarget: '2101', handoffOutcome: 'connected' } }).outcome, 'transferred');
  t.same(deriveOutcome({ endReason: 'agent-hangup', answered: true, state: st({ messages: [{ id: 'm1' }] }), handoff: { handoffTarget: '2101', handoffOutcome: 'busy (486)' } }),
    { outcome: 'message_taken', ref: 'm1', outcomes: ['message_taken', 'escalated'] }, 'rep busy → message: the escalation is still listed');
  t.same(deriveOutcome({ endReason: 'caller-bye', answered: true, state: st({}), handoff: { handoffTarget: '2101', handoffOutcome: 'no-answer' } }).outcome, 'escalated');
  t.same(deriveOutcome({ endReason: 'caller-bye', answered: true, state: st({}), handoff: null }).outcome, 'abandoned');
  t.same(deriveOutcome({ endReason: 'agent-hangup', answered: true, state: st({}), handoff: null }).outcome, 'none');
  t.same(deriveOutcome({ endReason: 'agent-hangup', answered: true, state: st({}), handoff: null, agentEnd: 'no input' }).outcome, 'abandoned', 'the caller went silent until the agent gave up');
  t.same(deriveOutcome({ endReason: 'rtp-timeout', answered: true, state: null, handoff: null }), { outcome: 'failed', ref: 'rtp-timeout', outcomes: ['failed'] });
  t.same(deriveOutcome({ endReason: 'canceled', answered: false, state: null, handoff: null }).outcome, 'abandoned');
  t.same(deriveOutcome({ endReason: 'error', answered: false, state: null, handoff: null }).outcome, 'failed');
  t.same(deriveOutcome({ endReason: 'agent-hangup', answered: true, state: st({ messages: [{ id: 'm1' }, { id: 'm2' }] }), handoff: null, cases: { m1: 'CASE-1' } }).ref, 'CASE-1,m2');
});

t.test('mediaQuality and gapPercentiles', async (t) => {
  t.equal(mediaQuality('PCMU', null), null);
  const noRtcp = mediaQuality('PCMA', { packetsIn: 0, packetsOut: 50 })!;
  t.match(noRtcp, { lossInPct: null, lossOutPct: null, rttMs: null, rFactor: null, mos: null });
  const clean = mediaQuality('PCMU', { packetsIn: 500, packetsOut: 500, jitter: { expected: 500, lost: 0, jitterMs: 0 } })!;
  t.match(clean, { lossInPct: 0, rFactor: 93, mos: 4.4 }, 'no loss, no jitter, no RTT known');
  const lossy = mediaQuality('PCMU', { packetsIn: 900, packetsOut: 1000, jitter: { expected: 1000, lost: 100, jitterMs: 30 }, rtcp: { remoteReport: { fractionLost: 0, cumulativeLost: 10, jitterMs: 5, rttMs: 100 } } })!;
  t.match(lossy, { lossInPct: 10, lossOutPct: 1, rttMs: 100 });
  t.equal(lossy.rFactor, Math.round((93.2 - 170 / 10 + 12 - 25) * 10) / 10, 'the worse direction: 10 % loss, 30 ms jitter, 100 ms RTT');
  const dtmf = mediaQuality('PCMU', { packetsIn: 1000, packetsOut: 1000, jitter: { expected: 1000, lost: 54, jitterMs: 1 } })!;
  t.equal(dtmf.lossInPct, 0, 'sequence numbers of DTMF packets (counted in packetsIn, not by the jitter buffer) are not loss');
  t.same(gapPercentiles([]), { gapP50Ms: null, gapP95Ms: null });
  const ts = [900, 100, 500, 300, 700, 200, 400, 800, 600, 1000].map((gapMs, i) => ({ turn: i, endpointSilenceMs: 700, sttMs: 0, replyMs: 0, gapMs }));
  t.same(gapPercentiles(ts), { gapP50Ms: 500, gapP95Ms: 1000 });
});
