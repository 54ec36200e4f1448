/**
 * Recording and consent below the model: the gate's flows (disclosure, consent by word or
 * key, unclear answers, a decline that continues or goes to a person, notify after the
 * notice), the recording that only starts on consent (files 0600 in a 0700 directory, the
 * JSON sidecar), the retention purge and its CLI, the CDR columns added to an older file,
 * and the screen pop telling the rep whether the call is recorded.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parseTenants, type Tenant } from '../../src/tenants/index.ts';
import { CallRecording, ConsentGate, consentAnswer, purgeRecordings, type HandOffAgent, type RecordableCall } from '../../src/consent/index.ts';
import { main as recordingsCli } from '../../src/consent/cli.ts';
import type { AgentAction, AgentTurn, CallContext, ConversationState } from '../../src/agent/types.ts';
import { SqliteCdrStore } from '../../src/cdr/sqlite.ts';
import { buildScreenPop, popHeaders } from '../../src/escalation/handoff.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { record } from './cdr-helpers.ts';

setLogLevel('silent');
const tmp = mkdtempSync(path.join(tmpdir(), 'consent-unit-'));

function tenant(recording: unknown, extra: Record<string, unknown> = {}): Tenant {
  return parseTenants({ tenants: [{ id: 'acme', name: 'Acme', dids: ['1'], greeting: 'Hello from Acme.', recording, ...extra }] }, 'f.yaml').tenants[0]!;
}

class FakeSession {
  started: string[] = [];
  stopped = 0;
  startRecording(p: string): void {
    this.started.push(p);
    writeFileSync(p, Buffer.alloc(44 + 8000 * 4)); // the native writer truncates the 0600 file ("wb")
  }
  stopRecording(): { path: string; frames: number; dropped: number; sampleRate: number } | null {
    this.stopped++;
    return this.started.length ? { path: this.started[0]!, frames: 8000, dropped: 0, sampleRate: 8000 } : null;
  }
}

let callSeq = 0;
function recordingFor(ani: string, rec: unknown, dir = path.join(tmp, `rec-${++callSeq}`)): { r: CallRecording; session: FakeSession; dir: string; call: RecordableCall } {
  const session = new FakeSession();
  const tn = tenant(typeof rec === 'string' ? { posture: rec, dir } : { dir, ...(rec as object) });
  const call: RecordableCall = { callId: `call-${callSeq}@test`, tenant: tn, ani, from: ani, session };
  return { r: new CallRecording(call, tn.recording, tmp), session, dir, call };
}

class FakeAgent implements HandOffAgent {
  readonly state = { language: 'en-US', transcript: [] } as unknown as ConversationState;
  handed: string[] = [];
  turns: string[] = [];
  async *start(): AsyncGenerator<AgentAction> { yield { type: 'say', text: 'GREETING', final: true }; }
  async *turn(input: AgentTurn): AsyncGenerator<AgentAction> { this.turns.push(input.text || input.dtmf || ''); yield { type: 'say', text: 'INNER', final: true }; }
  async *handOff(hit: { reason: string }): AsyncGenerator<AgentAction> {
    this.handed.push(hit.reason);
    yield { type: 'transfer', target: 'rep', reason: hit.reason, trigger: 'recording-declined' };
  }
}

async function collect(it: AsyncIterable<AgentAction>): Promise<AgentAction[]> {
  const out: AgentAction[] = [];
  for await (const a of it) out.push(a);
  return out;
}
const says = (as: AgentAction[]): string[] => as.map((a) => (a.type === 'say' ? `${a.uninterruptible ? '!' : ''}${a.text}` : a.type));

function gate(ani: string, rec: unknown, extra: Record<string, unknown> = {}) {
  const x = recordingFor(ani, rec);
  const tn = extra.prompts ? tenant({ ...(typeof rec === 'string' ? { posture: rec } : rec as object), dir: x.dir }, extra) : x.call.tenant;
  const inner = new FakeAgent();
  const played: string[] = [];
  const g = new ConsentGate(inner, x.r, { playedOut: async (text) => { played.push(text); } });
  const ctx = { tenant: tn, callId: x.call.callId } as unknown as CallContext;
  return { ...x, inner, g, ctx, played };
}

t.test('consent answers: key 1/2, yes/no words (English and Spanish), unclear', async (t) => {
  const cases: [Partial<AgentTurn>, boolean | null][] = [
    [{ dtmf: '1' }, true], [{ dtmf: '2' }, false], [{ dtmf: '5' }, null],
    [{ text: 'yes' }, true], [{ text: 'Yes, that is fine.' }, true], [{ text: 'sure go ahead' }, true], [{ text: 'okay' }, true],
    [{ text: 'no' }, false], [{ text: "No, I'd rather not." }, false], [{ text: 'please do not' }, null], [{ text: "don't record me" }, false],
    [{ text: 'sí' }, true], [{ text: 'Sí, claro' }, true], [{ text: 'no gracias' }, false],
    [{ text: 'what is the status of my order' }, null], [{ text: '' }, null], [{ text: 'yes no' }, true],
  ];
  for (const [input, want] of cases) {
    const a = consentAnswer({ text: input.text ?? '', ...(input.dtmf ? { dtmf: input.dtmf } : {}) });
    t.equal(a === null ? null : a.yes, want, JSON.stringify(input));
  }
});

t.test('consent posture: disclosures uninterruptible, question, yes → recording from then on, then the greeting', async (t) => {
  const x = gate('+14155550100', 'notify'); // CA: raised to consent
  t.equal(x.r.posture, 'consent');
  const start = await collect(x.g.start(x.ctx));
  t.same(says(start), ['!You are speaking with an automated assistant.', '!This call is recorded for quality and training.', 'To allow it, say yes or press 1; if not, say no or press 2. Is it OK to record this call?']);
  t.equal(x.g.asking, true, 'asking: one key answers');
  t.equal(x.inner.state.expect, 'yesno');
  t.same(x.session.started, [], 'nothing recorded before the answer');
  t.notOk(existsSync(x.dir), 'not even the directory');
  const ans = await collect(x.g.turn({ text: 'yes please' }));
  t.same(says(ans), ['Thank you.', 'GREETING']);
  t.equal(x.session.started.length, 1, 'recording started on the yes');
  const wav = x.session.started[0]!;
  t.equal(statSync(wav).mode & 0o777, 0o600, 'WAV 0600');
  t.equal(statSync(x.dir).mode & 0o777, 0o700, 'dir 0700');
  const side = wav.replace(/\.wav$/, '.json');
  t.equal(statSync(side).mode & 0o777, 0o600, 'sidecar 0600');
  t.match(JSON.parse(readFileSync(side, 'utf8')), { callId: x.call.callId, tenant: 'acme', jurisdiction: 'US-CA', rule: 'all-party', posture: 'consent', configured: 'notify', consent: 'granted', consentBy: 'speech', wav: path.basename(wav) });
  t.match(x.r.facts, { recorded: true, consent: 'granted', path: wav });
  t.same(says(await collect(x.g.turn({ text: 'order status' }))), ['INNER'], 'after consent the agent has the turns');
  t.same(x.inner.turns, ['order status'], 'the consent answer never reached the agent');
  x.r.finish();
  t.equal(x.session.stopped, 1);
  t.match(JSON.parse(readFileSync(side, 'utf8')), { seconds: 1 });
  t.ok(JSON.parse(readFileSync(side, 'utf8')).endedAt);
});

t.test('a no (word or key 2): nothing recorded, the call goes on; onDecline human hands off', async (t) => {
  const a = gate('+13105550100', { posture: 'consent' });
  await collect(a.g.start(a.ctx));
  t.same(says(await collect(a.g.turn({ text: '', dtmf: '2' }))), ['No problem, this call will not be recorded.', 'GREETING']);
  t.same(a.session.started, []);
  t.match(a.r.facts, { recorded: false, consent: 'declined', consentBy: 'dtmf' });
  t.notOk(existsSync(a.dir), 'no directory, no file');
  a.r.allow('granted');
  t.same(a.session.started, [], 'after a no, nothing can start the recorder for this call');
  const b = gate('+13105550100', { posture: 'consent', onDecline: 'human' });
  await collect(b.g.start(b.ctx));
  const acts = await collect(b.g.turn({ text: 'no' }));
  t.same(says(acts), ['No problem, this call will not be recorded.', 'transfer']);
  t.same(b.inner.handed, ['caller declined call recording']);
  t.same(b.session.started, []);
});

t.test('unclear answers are asked again twice, then taken as a no', async (t) => {
  const x = gate('+4930123456', { posture: 'notify' }); // DE: consent
  await collect(x.g.start(x.ctx));
  for (let i = 0; i < 2; i++) t.same(says(await collect(x.g.turn({ text: 'what' }))), ['To allow it, say yes or press 1; if not, say no or press 2. Is it OK to record this call?']);
  t.same(says(await collect(x.g.turn({ text: 'hmm' }))), ['No problem, this call will not be recorded.', 'GREETING']);
  t.match(x.r.facts, { consent: 'no-answer', recorded: false, jurisdiction: 'DE' });
  t.same(x.session.started, []);
});

t.test('notify (one-party state): the notice, recording once it played out, then the greeting; off: only the AI disclosure', async (t) => {
  const x = gate('+12145550100', 'notify');
  const acts: string[] = [];
  for await (const a of x.g.start(x.ctx)) {
    acts.push(a.type === 'say' ? a.text : a.type);
    if (a.type === 'say' && a.text === 'GREETING') t.equal(x.session.started.length, 1, 'recording runs when the greeting is said');
    if (a.type === 'say' && a.text.startsWith('This call is recorded')) t.same(x.session.started, [], 'not yet while the notice is queued');
  }
  t.same(acts, ['You are speaking with an automated assistant.', 'This call is recorded for quality and training.', 'GREETING']);
  t.same(x.played, ['This call is recorded for quality and training.'], 'waited for the notice to play out');
  t.match(x.r.facts, { posture: 'notify', consent: 'notified', recorded: true, jurisdiction: 'US-TX' });
  t.equal(x.g.asking, false);

  // a notice that never played (TTS failed): no recording
  const silent = recordingFor('+12145550100', 'notify');
  const sg = new ConsentGate(new FakeAgent(), silent.r, { playedOut: async () => false });
  t.same(says(await collect(sg.start({ tenant: silent.call.tenant, callId: silent.call.callId } as unknown as CallContext))).slice(-1), ['GREETING']);
  t.same(silent.session.started, [], 'notice not played out → not recorded');
  t.equal(silent.r.facts.recorded, false);

  const off = gate('+12145550100', 'off');
  t.same(says(await collect(off.g.start(off.ctx))), ['!You are speaking with an automated assistant.', 'GREETING']);
  t.same(off.session.started, []);
  t.equal(off.r.facts.consent, 'none');
});

t.test('the prompts come in the call language (tenant prompts win over the defaults)', async (t) => {
  const x = gate('+13105550100', { posture: 'consent' }, { language: 'es-US', prompts: { 'es-US': { greeting: 'Hola.', disclosureAi: 'Le atiende una asistente automatizada.', consentAsk: '¿Está de acuerdo? Oprima uno o dos.' } } });
  x.inner.state.language = 'es-US';
  const start = says(await collect(x.g.start(x.ctx)));
  t.same(start, ['!Le atiende una asistente automatizada.', '!This call is recorded for quality and training.', '¿Está de acuerdo? Oprima uno o dos.']);
  t.same(says(await collect(x.g.turn({ text: 'sí' }))), ['Thank you.', 'GREETING']);
});

t.test('retention purge: per tenant, by sidecar start time; no sidecar → file time; 0 keeps; the CLI', async (t) => {
  const dir = path.join(tmp, 'purge');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const now = new Date('2026-12-07T12:00:00Z');
  const put = (name: string, tenantId: string | null, daysAgo: number): void => {
    writeFileSync(path.join(dir, `${name}.wav`), 'x');
    const at = new Date(now.getTime() - daysAgo * 86_400_000);
    if (tenantId) writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ tenant: tenantId, startedAt: at.toISOString() }));
    else utimesSync(path.join(dir, `${name}.wav`), at, at);
  };
  put('a-old', 'acme', 10); put('a-new', 'acme', 2); put('k-old', 'keep', 400); put('orphan-old', null, 20); put('orphan-new', null, 1);
  const tenants = parseTenants({ tenants: [
    { id: 'acme', name: 'A', dids: ['1'], greeting: 'x', recording: { posture: 'notify', dir, retentionDays: 7 } },
    { id: 'keep', name: 'K', dids: ['2'], greeting: 'x', recording: { posture: 'notify', dir, retentionDays: 0 } },
    { id: 'none', name: 'N', dids: ['3'], greeting: 'x' },
  ] }, 'f.yaml').tenants;
  t.equal(purgeRecordings(tenants, tmp, now), 1, 'only acme\'s old one (orphans: a tenant keeps forever, so they stay)');
  t.same(readdirSync(dir).sort(), ['a-new.json', 'a-new.wav', 'k-old.json', 'k-old.wav', 'orphan-new.wav', 'orphan-old.wav']);
  const only = tenants.filter((x) => x.id === 'acme');
  t.equal(purgeRecordings(only, tmp, now), 2, 'with acme alone (7 days): the old orphan and the unknown tenant\'s go');
  t.same(readdirSync(dir).sort(), ['a-new.json', 'a-new.wav', 'orphan-new.wav']);

  // the CLI reads the same tenants file
  const tf = path.join(tmp, 'cli-tenants.yaml');
  writeFileSync(tf, `tenants:\n  - id: acme\n    name: A\n    default: true\n    greeting: x\n    recording: { posture: notify, dir: ${dir}, retentionDays: 1 }\n`);
  let out = '';
  const code = await recordingsCli(['purge', '--now', '2026-12-07T12:00:00Z'], { out: (s) => { out += s; }, err: () => {}, env: { TENANTS_FILE: tf, DATA_DIR: tmp }, cwd: tmp });
  t.equal(code, 0);
  t.match(out, /purged 1 recording from /, 'a-new (2 days) goes, the 1-day-old orphan stays');
  t.same(readdirSync(dir).sort(), ['orphan-new.wav']);
  let err = '';
  t.equal(await recordingsCli(['wipe'], { out: () => {}, err: (s) => { err += s; }, env: {}, cwd: tmp }), 2);
  t.match(err, /unknown subcommand "wipe"/);
  const bad = path.join(tmp, 'bad-tenants.yaml');
  writeFileSync(bad, `tenants:\n  - id: acme\n    name: A\n    default: true\n    greeting: x\n    recording: { posture: always }\n`);
  err = '';
  t.equal(await recordingsCli(['purge'], { out: () => {}, err: (s) => { err += s; }, env: { TENANTS_FILE: bad }, cwd: tmp }), 2);
  t.match(err, /config error: .*bad-tenants\.yaml: tenants\[0\]\.recording\.posture: must be one of off, notify, consent, got "always"/);
});

t.test('CDR: an older file gets the recording columns and keeps its rows; new rows carry the fields', async (t) => {
  const file = path.join(tmp, 'old-cdr.sqlite');
  const db = new Database(file);
  db.exec('CREATE TABLE cdr (id TEXT PRIMARY KEY, sip_call_id TEXT, tenant TEXT, status TEXT, started_at TEXT, updated_at TEXT, transcript TEXT, outcomes TEXT, detail TEXT, turns INTEGER, owner TEXT, cost_total REAL, currency TEXT)');
  db.prepare("INSERT INTO cdr (id, sip_call_id, tenant, status, started_at, updated_at, transcript, outcomes, detail, turns) VALUES ('old-1', 'sip-old', 'acme', 'completed', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', '[]', '[]', '{}', 2)").run();
  db.close();
  const store = new SqliteCdrStore({ file });
  const old = await store.get('old-1');
  t.match(old, { id: 'old-1', turns: 2, recordingPosture: null, jurisdiction: null, consent: null, recordingPath: null }, 'old row kept, new fields null');
  await store.insert(record({ id: 'new-1', sipCallId: 'sip-new', recordingPosture: 'consent', jurisdiction: 'US-CA', consent: 'granted', consentAt: '2026-12-07T12:00:01.000Z', recordingPath: '/r/x.wav' }));
  t.match(await store.get('new-1'), { recordingPosture: 'consent', jurisdiction: 'US-CA', consent: 'granted', consentAt: '2026-12-07T12:00:01.000Z', recordingPath: '/r/x.wav' });
  await store.close();
});

t.test('screen pop: the rep sees whether the call is recorded (pop field, summary, SIP header)', async (t) => {
  const tn = tenant({ posture: 'consent' });
  const state = { language: 'en-US', transcript: [], order: { placed: [] } } as unknown as ConversationState;
  const req = { target: '2001', reason: 'caller asked for a person', trigger: 'explicit' as const };
  const rec = { recorded: true, posture: 'consent' as const, jurisdiction: 'US-CA', consent: 'granted', consentAt: '2026-12-07T12:00:01.000Z' };
  const pop = buildScreenPop({ callId: 'c1', from: '+14155550100', tenant: tn, recording: rec }, req, { state, transcript: [] });
  t.same(pop.recording, rec);
  t.match(pop.summary, /\[call recorded\]$/);
  t.ok(pop.summary.length <= 200);
  t.equal(popHeaders(pop)['X-Call-Recorded'], 'yes;posture=consent;jurisdiction=US-CA;consent=granted');
  const declined = buildScreenPop({ callId: 'c2', from: '+14155550100', tenant: tn, recording: { ...rec, recorded: false, consent: 'declined' } }, req, { state, transcript: [] });
  t.match(declined.summary, /\[not recorded\]$/);
  t.equal(popHeaders(declined)['X-Call-Recorded'], 'no;posture=consent;jurisdiction=US-CA;consent=declined');
  const none = buildScreenPop({ callId: 'c3', from: '+14155550100', tenant: tn }, req, { state, transcript: [] });
  t.equal(none.recording, undefined);
  t.equal(popHeaders(none)['X-Call-Recorded'], undefined);
});
