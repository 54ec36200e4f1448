/**
 * Benchmark (offline, no SIP): the outcome bench's scripted caller (outcomes/lanes.ts) against
 * the rules agent behind the escalation layer, each caller utterance synthesized as in the
 * outcome bench (espeak-ng / flite, clean or sox noise; G.711 µ-law round trip) and decoded by
 * pocketsphinx with the state the agent asked for (`state.expect`, the account's history) —
 * no VAD, RTP or SIP, so a call costs its decodes only (16 reorder calls ≈ 20 s on 2 cores).
 * For trying dialogue changes before the live `outcomes` bench; its numbers are not the live
 * bench's (no endpointing, and noise clips are not repeatable run to run).
 *
 *   npm run bench -- outcomes-sim [--lanes reorder-accept,reorder-reject] [--voices espeak:en-us@150,…]
 *                                 [--noise clean,15] [--reps 4] [--max-turns 6] [--verbose]
 *
 * Judged on the in-memory CRM/ERP store (voice order rows) and the agent's transfer action
 * (hand-off lanes); status and after-hours lanes are not judged here. Turn limit as in the live
 * bench (each keyed answer moves it one turn on, up to 3). Failed calls print their transcript
 * (with what the recogniser heard) on stderr.
 * Last stdout line: JSON {"bench":"outcomes-sim","ok":…,"calls":…,"wrong_orders":…}.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CallerVoices } from './outcomes/audio.ts';
import { LANES, newCallerState, respond } from './outcomes/lanes.ts';
import { PocketsphinxStt } from '../../src/stt/pocketsphinx.ts';
import { agentVocabulary } from '../../src/cli/conversation.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { RulesAgent, type AgentAction } from '../../src/agent/index.ts';
import { EscalatingAgent } from '../../src/escalation/agent.ts';
import { ulawEncode, ulawDecode } from '../../src/media/audio.ts';
import { OPEN_AT, DANA, collect, context, demoTenant, gatewayFor, openStore, said } from '../unit/agent-helpers.ts';
setLogLevel('silent');
const v = new CallerVoices(mkdtempSync(path.join(tmpdir(), 'b16s3-sim-')));
const stt = new PocketsphinxStt();
const vocab = await agentVocabulary();
const { values } = parseArgs({ options: {
  lanes: { type: 'string', default: 'reorder-accept,reorder-reject' },
  voices: { type: 'string', default: 'espeak:en-us@150,espeak:en-us+f3@170,espeak:en-us+m7@140,espeak:en-gb-x-rp@180' },
  noise: { type: 'string', default: 'clean' }, reps: { type: 'string', default: '4' }, 'max-turns': { type: 'string', default: '6' },
  verbose: { type: 'boolean', default: false },
} });
const lanes = values.lanes!.split(',');
for (const l of lanes) if (!LANES.some((x) => x.id === l)) { console.log(JSON.stringify({ bench: 'outcomes-sim', error: `--lanes: unknown lane "${l}"` })); process.exit(2); }
const voices = values.voices!.split(',');
const noises = values.noise!.split(',').map((n) => (n === 'clean' ? undefined : Number(n)));
const reps = Number(values.reps);
const MAX = Number(values['max-turns']);
let ok = 0, n = 0, wrong = 0;
for (const laneId of lanes) for (const noise of noises) for (const voice of voices) for (let i = 0; i < reps; i++) {
  const lane = LANES.find((l) => l.id === laneId)!;
  const intent = lane.intent(i);
  const st = newCallerState(intent);
  const store = openStore(OPEN_AT);
  const tenant = demoTenant('northwind');
  const gw = await gatewayFor(tenant, store);
  const ctx = context(tenant, gw, { now: OPEN_AT, ani: DANA });
  const rules = new RulesAgent(ctx);
  const agent = new EscalatingAgent(rules, ctx);
  let acts: AgentAction[] = await collect(agent.start(ctx));
  const tr: string[] = [];
  let turns = 0, keyed = 0, end = '';
  for (let turn = 0; ; turn++) {
    const text = said(acts);
    tr.push(`  agent: ${text}`);
    if (acts.some((a) => a.type === 'transfer')) { end = 'transfer'; break; }
    if (acts.some((a) => a.type === 'hangup')) { end = 'hangup'; break; }
    const orders = store.db.prepare("SELECT l.sku, l.qty FROM orders o JOIN order_lines l ON l.order_number = o.order_number WHERE o.source = 'voice'").all() as Array<{ sku: string; qty: number }>;
    if (orders.length) { end = `order ${orders.map((o) => `${o.qty}x${o.sku}`).join(',')}`; break; }
    if (st.rejected && intent.kind === 'reject') { end = 'rejected'; break; }
    if (turns >= MAX + Math.min(3, keyed)) { end = 'turn limit'; break; }
    const act = respond(st, text, turn);
    st.last = act;
    if ('end' in act) { end = 'caller ended'; break; }
    turns++;
    if ('dtmf' in act) {
      keyed++;
      tr.push(`  caller: [keys ${act.dtmf}]`);
      acts = await collect(agent.turn({ text: '', dtmf: act.dtmf.replace('#', '') }));
      continue;
    }
    const pcm = ulawDecode(ulawEncode(v.say(voice, act.say, noise, i + turn + 1)));
    const r = await stt.recognize(pcm, 8000, vocab, { expect: agent.state.expect ?? 'open', ...(agent.state.history?.length ? { history: agent.state.history } : {}) });
    tr.push(`  caller: ${act.say}   [heard "${r.text}" ${r.confidence.toFixed(2)}${r.inDomain ? '' : ' offDomain'} ${r.grammar}]`);
    acts = await collect(agent.turn({ text: r.text, confidence: r.confidence, ...(!r.inDomain && r.text ? { offDomain: true } : {}), ...(r.alternatives?.length ? { alternatives: r.alternatives } : {}) }));
  }
  const want = intent.kind === 'order' || intent.kind === 'reject' ? `${intent.qty}x${intent.sku}` : '';
  const success = intent.kind === 'order' ? end === `order ${want}` : intent.kind === 'reject' ? end === 'rejected' : end === 'transfer';
  const isWrong = end.startsWith('order') && (intent.kind !== 'order' || end !== `order ${want}`);
  n++; if (success) ok++; if (isWrong) wrong++;
  process.stderr.write(`${success ? 'ok  ' : isWrong ? 'WRONG' : 'FAIL'} ${laneId} ${voice} ${noise ?? 'clean'} #${i} (${want}): ${end}, turns ${turns}\n`);
  if (!success || values.verbose) process.stderr.write(`${tr.join('\n')}\n`);
  await gw.close(); store.close();
}
console.log(JSON.stringify({ bench: 'outcomes-sim', lanes, voices, noise: values.noise!.split(','), reps, ok, calls: n, wrong_orders: wrong }));
process.exit(0);
