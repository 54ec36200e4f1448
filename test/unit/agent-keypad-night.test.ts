/**
 * The Spanish keypad path after hours, as the English speech path works at night: the office
 * hours said in Spanish with when it opens, order status by PO digits still served, and only
 * what needs a person (the message key, or 0 for a person) becomes a recorded message — the
 * CRM/ERP store and the case action are the judge.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setLogLevel } from '../../src/ops/log.ts';
import { KeypadAgent, openingWords } from '../../src/agent/keypad.ts';
import { newState, type AgentAction, type CallContext } from '../../src/agent/index.ts';
import { EscalatingAgent } from '../../src/escalation/agent.ts';
import { CLOSED_AT, collect, demoTenant, gatewayFor, openStore, said } from './agent-helpers.ts';

setLogLevel('silent');
const ROSA = '+12145550188';
const dataDir = mkdtempSync(path.join(tmpdir(), 'keypad-night-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

t.test('when the office opens, in Spanish', async (t) => {
  t.equal(openingWords('2026-12-03T07:00:00-06:00', '2026-12-02T22:00:00-06:00', 'es-US'), 'mañana a las 7 de la mañana');
  t.equal(openingWords('2026-12-03T07:30:00-06:00', '2026-12-03T05:00:00-06:00', 'es-US'), 'hoy a las 7:30 de la mañana');
  t.equal(openingWords('2026-12-07T13:00:00-06:00', '2026-12-05T10:00:00-06:00', 'es-US'), 'el lunes a la 1 de la tarde');
  t.equal(openingWords('2026-12-03T07:00:00-06:00', '2026-12-02T22:00:00-06:00', 'en-US'), 'tomorrow at 7 AM');
  t.equal(openingWords(undefined, undefined, 'es-US'), undefined);
});

t.test('after hours the Spanish keypad path still serves order status; a person becomes a message', async (t) => {
  const store = openStore(CLOSED_AT);
  const tenant = demoTenant('northwind');
  const tools = await gatewayFor(tenant, store);
  t.teardown(async () => { await tools.close(); store.close(); });
  const ctx: CallContext = { tenant, callId: 'night-es-1', ani: ROSA, dnis: tenant.dids[0]!, now: CLOSED_AT, tools, language: 'es-US' };
  const state = newState(ctx);
  state.language = 'es-US';
  const agent = new EscalatingAgent(new KeypadAgent(ctx, { state, dataDir }), ctx);
  const start = said(await collect(agent.start(ctx)));
  t.match(start, /Nuestra oficina está cerrada hasta (mañana|hoy|el \w+) a las? \d/, 'says when the office opens, in Spanish');
  t.match(start, /puede consultar un pedido/, 'self-service goes on at night');
  t.match(start, /Para el estado de un pedido, oprima uno/, 'the keypad menu, not straight to a recording');
  t.notMatch(start, /Deje su mensaje/);
  t.notMatch(start, /our next business day|tomorrow at/, 'no English inside the Spanish prompt');

  t.match(said(await collect(agent.turn({ text: '', dtmf: '1' }))), /orden de compra/);
  const status = await collect(agent.turn({ text: '', dtmf: '77410', expectingDigits: true }));
  t.ok(status.some((a) => a.type === 'tool' && a.name === 'order_status'), 'looked up at night');
  t.match(said(status), /está enviado/);

  // 0 for a person at night: no transfer (nobody is there), a recorded message instead
  const zero = await collect(agent.turn({ text: '', dtmf: '0' }));
  t.notOk(zero.some((a) => a.type === 'transfer'), 'no one is rung at night');
  t.match(said(zero), /Deje su mensaje/);
  const audio = new Int16Array(8000 * 2).map((_, i) => Math.round(3000 * Math.sin(i / 5)));
  const msg = await collect(agent.turn({ text: '', audio }));
  const tm = msg.find((a): a is Extract<AgentAction, { type: 'take_message' }> => a.type === 'take_message');
  t.ok(tm, 'the message goes to the case queue');
  t.equal(tm?.message.kind, 'after_hours_message');
});
