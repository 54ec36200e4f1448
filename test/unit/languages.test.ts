/**
 * Languages and the second tenant, below the SIP layer: the call's language (CRM contact,
 * else the DID's tenant, else the caller's key), the keypad path in Spanish against the real
 * tool gateway and CRM/ERP (order status by PO digits, a recorded message into a case with
 * its WAV), the voice that follows the language, and tenant isolation — the second tenant's
 * prompts, voice, allowed actions and MCP servers never reach the first tenant's calls, nor
 * the other way round.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadTenants, promptsFor, type Tenant } from '../../src/tenants/index.ts';
import { DEFAULT_TENANTS_FILE } from '../../src/config.ts';
import { createToolGateway } from '../../src/tools/index.ts';
import { createAgent, tenantToolPolicy, type Agent, type AgentAction, type CallContext, type ConversationState } from '../../src/agent/index.ts';
import { KeypadAgent, dateWords, statusWord } from '../../src/agent/keypad.ts';
import { MultilingualAgent, languageOffers, sttUnderstands, tenantLanguage } from '../../src/agent/multilingual.ts';
import { languageInstruction } from '../../src/agent/llm.ts';
import { EscalatingAgent } from '../../src/escalation/agent.ts';
import { LanguageTts } from '../../src/tts/voices.ts';
import type { TtsOptions, TtsProvider } from '../../src/tts/types.ts';
import { OPEN_AT, DANA, collect, openStore, said } from './agent-helpers.ts';

const ROSA = '+12145550188';
const dir = loadTenants(DEFAULT_TENANTS_FILE);
const northwind = dir.lookup('18005550100')!.tenant;
const sur = dir.lookup('18005550122')!.tenant;
const dataDir = mkdtempSync(path.join(tmpdir(), 'languages-test-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

const store = openStore(OPEN_AT);
const gateways = new Map<string, Awaited<ReturnType<typeof createToolGateway>>>();
async function gw(tenant: Tenant) {
  if (!gateways.has(tenant.id)) gateways.set(tenant.id, await createToolGateway(tenantToolPolicy(tenant), { store }));
  return gateways.get(tenant.id)!;
}
t.teardown(async () => { for (const g of gateways.values()) await g.close(); });

/** The service's agent stack for one call: language → speech or keypad agent, escalation around each. */
async function call(tenant: Tenant, ani: string, understands = sttUnderstands.bind(null, 'pocketsphinx')): Promise<{ agent: MultilingualAgent; ctx: CallContext; built: string[] }> {
  const tools = await gw(tenant);
  const ctx: CallContext = { tenant, callId: `call-${Math.random().toString(36).slice(2, 9)}`, ani, dnis: tenant.dids[0]!, now: OPEN_AT, tools };
  const built: string[] = [];
  const agent = new MultilingualAgent(ctx, {
    speechAgent: (c) => { built.push(`speech:${c.language}`); return new EscalatingAgent(createAgent(c, { env: {} }), c); },
    keypadAgent: (c, state: ConversationState) => { built.push(`keypad:${c.language}`); return new EscalatingAgent(new KeypadAgent(c, { state, dataDir }), c); },
    understands,
  });
  return { agent, ctx, built };
}

const sayings = (acts: AgentAction[]) => acts.filter((a): a is Extract<AgentAction, { type: 'say' }> => a.type === 'say');

t.test('the demo tenants: es-US is complete for northwind, the second tenant is Spanish, read-only, consent', async (t) => {
  t.same(dir.warnings, [], 'no prompt falls back in the shipped file');
  const en = northwind.prompts['en-US']!;
  const es = northwind.prompts['es-US']!;
  for (const k of Object.keys(en)) t.ok(es[k as keyof typeof es] && es[k as keyof typeof es] !== en[k as keyof typeof en], `es-US has its own ${k}`);
  for (const k of ['transferFailed', 'noInput', 'noInputGoodbye', 'drainGoodbye', 'disclosureAi', 'disclosureRecorded', 'consentAsk', 'consentThanks', 'consentDeclined'] as const) {
    t.ok(es[k], `es-US says ${k} in Spanish (no English built-in)`);
  }
  t.same(northwind.voices, { 'en-US': { engine: 'flite', voice: 'slt' }, 'es-US': { engine: 'espeak-ng', voice: 'es-419' } });
  t.equal(sur.language, 'es-US');
  t.same(sur.actions, ['read_only', 'sur__order_status']);
  t.equal(sur.recording?.posture, 'consent');
  t.same(sur.voices, { 'es-US': { engine: 'espeak-ng', voice: 'es-419+f3', wpm: 150 } });
  t.same(sur.mcpServers.map((s) => s.name), ['sur']);
  t.same(northwind.mcpServers, []);
});

t.test('tenant isolation: prompts, voices, actions and MCP servers stay with their tenant', async (t) => {
  // prompts: whatever language a call asks for, a tenant's calls hear only that tenant's texts
  for (const lang of ['en-US', 'es-US', 'fr-FR']) {
    t.notMatch(promptsFor(northwind, lang).greeting, /Suministros/, `northwind ${lang} greeting is northwind's`);
    t.notMatch(promptsFor(sur, lang).greeting, /Northwind/, `sur ${lang} greeting is sur's`);
  }
  t.match(promptsFor(sur, 'en-US').greeting, /Suministros del Sur/, 'an English caller of the Spanish tenant still hears its Spanish set (no other tenant\'s English)');
  // voices
  const base: TtsProvider = { name: 'base', synthesize: () => (async function* () {})() };
  t.equal(new LanguageTts({ base, voices: northwind.voices, language: () => 'es-US' }).name, 'espeak-ng');
  // allowed actions and MCP servers, through the real gateways
  const nw = await gw(northwind);
  const su = await gw(sur);
  const nwTools = nw.listTools().map((x) => x.name);
  const suTools = su.listTools().map((x) => x.name);
  t.ok(nwTools.includes('place_order'), 'northwind takes orders');
  t.notOk(nwTools.some((n) => n.startsWith('sur__')), 'northwind never sees the second tenant\'s MCP server');
  t.ok(suTools.includes('sur__order_status'), 'the second tenant\'s own MCP server is offered');
  t.notOk(suTools.includes('place_order') || suTools.includes('sur__place_order'), 'no order placement on the second tenant, neither built-in nor through its own server');
  const ctx = { tenantId: sur.id, callId: 'iso-1' };
  const refused = await su.call('place_order', { account_id: 'ACC-10113', lines: [{ sku: 'HX-4410', qty: 1 }], idempotency_key: 'iso-1' }, ctx);
  t.match(refused, { ok: false, code: 'refused' }, 'place_order refused by the gateway');
  const refused2 = await su.call('sur__place_order', { account_id: 'ACC-10113', lines: [{ sku: 'HX-4410', qty: 1 }], idempotency_key: 'iso-2' }, ctx);
  t.match(refused2, { ok: false }, 'sur__place_order refused too');
  const own = await su.call('sur__order_status', { po_number: '77410' }, ctx);
  t.match(own, { ok: true, data: { found: true, status: 'shipped' } }, 'its own server answers');
  const notHere = await nw.call('sur__order_status', { po_number: '77410' }, { tenantId: northwind.id, callId: 'iso-3' });
  t.match(notHere, { ok: false }, 'northwind cannot reach the second tenant\'s server');
});

t.test('language of the call: the CRM contact first (Rosa is es-US) → Spanish keypad path on the English-only recogniser', async (t) => {
  const { agent, built } = await call(northwind, ROSA);
  await agent.prepare();
  t.equal(agent.state.language, 'es-US', 'decided before anything is said (disclosure/consent in her language too)');
  t.same(built, ['keypad:es-US']);
  const start = await collect(agent.start({ ...(await call(northwind, ROSA)).ctx, tools: await gw(northwind) }));
  const text = said(start);
  t.match(text, /Hola Rosa/);
  t.match(text, /solo entiende inglés por voz/, 'says why the keypad');
  t.match(text, /oprima uno/);
  t.notMatch(text, /Para español/, 'no language offer to a caller already in Spanish');
  t.notMatch(text, /[Hh]ow can I help/);

  const one = said(await collect(agent.turn({ text: '', dtmf: '1' })));
  t.match(one, /Marque los dígitos del número de su orden de compra/);
  const status = await collect(agent.turn({ text: '', dtmf: '77410', expectingDigits: true }));
  t.ok(status.some((a) => a.type === 'tool' && a.name === 'order_status'), 'looked up by the PO digits');
  const st = said(status);
  t.match(st, /orden de compra PO77410 está enviado/);
  t.match(st, /Estes Express/);
  t.match(st, /La entrega está prevista para el \w+ \d+ de \w+/);

  // speech the English recogniser "understood" never reaches the inner agent as words
  const garbage = said(await collect(agent.turn({ text: 'operator please', confidence: 0.9 })));
  t.match(garbage, /teclado/, 'speech on the keypad path: how this line works, not an escalation');

  // a recorded message
  t.match(said(await collect(agent.turn({ text: '', dtmf: '2' }))), /Deje su mensaje/);
  const audio = new Int16Array(8000 * 2).map((_, i) => Math.round(3000 * Math.sin(i / 5)));
  const msg = await collect(agent.turn({ text: 'blah', audio }));
  const tm = msg.find((a) => a.type === 'take_message');
  t.ok(tm, 'the message goes to the case queue');
  const m = (tm as Extract<AgentAction, { type: 'take_message' }>).message;
  const file = m.reason.replace(/^.*: /, '');
  t.match(m, { tenantId: 'northwind', accountId: 'ACC-10113', callerName: 'Rosa Martinez', callbackNumber: '12145550188', kind: 'callback' });
  t.match(m.reason, /Recorded voice message \(es-US, 2 s\)/);
  t.match(m.transcript, new RegExp(`recording: ${file.replace(/[.]/g, '\\.')}`));
  const wav = readFileSync(file);
  t.equal(wav.toString('ascii', 0, 4), 'RIFF');
  t.equal(wav.length, 44 + audio.length * 2, 'the caller\'s audio, whole');
  t.equal(statSync(file).mode & 0o777, 0o600, 'only the service can read it');
  t.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
  t.match(said(msg), /quedó grabado/);

  // 0 for a person: the escalation around the keypad agent routes it, in Spanish
  const zero = await collect(agent.turn({ text: '', dtmf: '0' }));
  t.ok(zero.some((a) => a.type === 'transfer'), '0 hands off to a person');
  t.match(said(zero), /Le voy a transferir/);
});

t.test('the caller\'s choice: an English-language caller hears the offer in Spanish and presses 2', async (t) => {
  const { agent, ctx, built } = await call(northwind, DANA);
  const start = await collect(agent.start(ctx));
  t.equal(agent.state.language, 'en-US');
  const says = sayings(start);
  const offer = says[says.length - 1]!;
  t.same(offer, { type: 'say', text: 'Para español, oprima 2.', language: 'es-US', final: true }, 'the offer, in the Spanish voice, last');
  t.equal(says.filter((s) => s.final).length, 1, 'one final line');
  t.match(said(start), /^Thank you for calling Northwind Industrial Supply\. Hi Dana/);
  const two = await collect(agent.turn({ text: '', dtmf: '2' }));
  t.equal(agent.state.language, 'es-US');
  t.same(built, ['speech:en-US', 'keypad:es-US']);
  t.match(said(two), /Hola Dana.*teclado.*oprima uno/);
  t.ok(agent.state.transcript.some((e) => e.role === 'agent' && /Thank you for calling/.test(e.text)), 'the conversation so far carries over');
  // the offer stands for the first answer only: later a 2 is not a language
  const { agent: b, ctx: cb } = await call(northwind, DANA);
  await collect(b.start(cb));
  await collect(b.turn({ text: 'where is my order' }));
  await collect(b.turn({ text: '', dtmf: '2' }));
  t.equal(b.state.language, 'en-US');
});

t.test('saying the language works where the recogniser knows the word (cloud STT)', async (t) => {
  const { agent, ctx, built } = await call(northwind, DANA, () => true);
  await collect(agent.start(ctx));
  await collect(agent.turn({ text: 'español por favor' }));
  t.equal(agent.state.language, 'es-US');
  t.same(built, ['speech:en-US', 'speech:es-US'], 'with a recogniser that understands Spanish the speech agent runs in Spanish');
});

t.test('with a cloud recogniser Rosa gets the speech agent in Spanish, and the LLM is told the language', async (t) => {
  const { agent, built } = await call(northwind, ROSA, (l) => sttUnderstands('openai', l));
  await agent.prepare();
  t.same(built, ['speech:es-US']);
  t.equal(agent.state.language, 'es-US');
  t.equal(languageInstruction('es-US'), 'The caller speaks Spanish (United States) (es-US). Reply only in Spanish, whatever language the tools return; every reply is read aloud by a voice speaking Spanish.');
});

t.test('the second tenant\'s DID: Spanish by the tenant language, keypad path, its own prompts', async (t) => {
  const { agent, ctx, built } = await call(sur, DANA);
  const text = said(await collect(agent.start(ctx)));
  t.same(built, ['keypad:es-US'], 'Dana is en-US in the CRM but sur has no English prompts: the tenant language');
  t.match(text, /Bienvenido a Suministros del Sur/);
  t.notMatch(text, /Northwind/);
  await collect(agent.turn({ text: '', dtmf: '1' }));
  const st = said(await collect(agent.turn({ text: '', dtmf: '12345', expectingDigits: true })));
  t.match(st, /Su pedido PO12345 está enviado/, 'sur\'s own status wording');
});

t.test('helpers: language matching, offers, status and dates in Spanish', async (t) => {
  t.equal(tenantLanguage(northwind, 'es-MX'), 'es-US', 'same primary language');
  t.equal(tenantLanguage(northwind, 'fr-FR'), undefined);
  t.same(languageOffers(northwind, 'en-US'), [{ key: '2', language: 'es-US', text: 'Para español, oprima 2.' }]);
  t.same(languageOffers(northwind, 'es-US'), [], 'en-US has no languageOffer: nothing offered to a Spanish call');
  t.equal(statusWord('backordered', 'es-US'), 'pendiente por falta de existencias');
  t.equal(statusWord('in_transit', 'es-US'), 'in transit');
  t.equal(dateWords('2026-12-08', 'es-US'), 'martes 8 de diciembre');
  t.ok(sttUnderstands('pocketsphinx', 'en-GB') && !sttUnderstands('pocketsphinx', 'es-US') && sttUnderstands('openai', 'es-US'));
});

t.test('the voice follows the language, per text: the offer in Spanish inside an English call', async (t) => {
  const heard: Array<{ by: string; voice?: string }> = [];
  const fake = (name: string): TtsProvider => ({ name, synthesize: (_: string, o: TtsOptions) => { heard.push({ by: name, ...(o.voice ? { voice: o.voice } : {}) }); return (async function* () {})(); } });
  let lang = 'en-US';
  const tts = new LanguageTts({ base: fake('base'), voices: { 'es-US': { engine: 'espeak-ng', voice: 'es-419' } }, language: () => lang, engines: { 'espeak-ng': fake('espeak') } });
  await collect(tts.synthesize('Hello.', { sampleRate: 8000, voice: 'slt' }) as AsyncIterable<never>);
  await collect(tts.synthesize('Para español, oprima 2.', { sampleRate: 8000, voice: 'slt', language: 'es-US' }) as AsyncIterable<never>);
  lang = 'es-MX';
  await collect(tts.synthesize('Hola.', { sampleRate: 8000, voice: 'slt' }) as AsyncIterable<never>);
  t.same(heard, [{ by: 'base', voice: 'slt' }, { by: 'espeak', voice: 'es-419' }, { by: 'espeak', voice: 'es-419' }]);
});

t.test('a cloud TTS speaks the languages whose voice is the local default (flite); after its fallback, flite with the entry\'s voice', async (t) => {
  const heard: Array<{ by: string; voice?: string }> = [];
  let baseName = 'openai';
  const base: TtsProvider = { get name() { return baseName; }, synthesize: (_: string, o: TtsOptions) => { heard.push({ by: 'base', ...(o.voice ? { voice: o.voice } : {}) }); return (async function* () {})(); } };
  const flite: TtsProvider = { name: 'flite', synthesize: (_: string, o: TtsOptions) => { heard.push({ by: 'flite', ...(o.voice ? { voice: o.voice } : {}) }); return (async function* () {})(); } };
  const espeak: TtsProvider = { name: 'espeak-ng', synthesize: (_: string, o: TtsOptions) => { heard.push({ by: 'espeak', ...(o.voice ? { voice: o.voice } : {}) }); return (async function* () {})(); } };
  let lang = 'en-US';
  const tts = new LanguageTts({ base, voices: { 'en-US': { engine: 'flite', voice: 'slt' }, 'es-US': { engine: 'espeak-ng', voice: 'es-419' } }, language: () => lang, engines: { flite, 'espeak-ng': espeak } });
  t.equal(tts.name, 'openai', 'the cloud provider speaks English');
  await collect(tts.synthesize('Hello.', { sampleRate: 8000 }) as AsyncIterable<never>);
  lang = 'es-US';
  await collect(tts.synthesize('Hola.', { sampleRate: 8000 }) as AsyncIterable<never>);
  lang = 'en-US';
  baseName = 'flite'; // the cloud provider failed mid-call: its wrapper now runs flite
  await collect(tts.synthesize('Hello again.', { sampleRate: 8000 }) as AsyncIterable<never>);
  t.same(heard, [{ by: 'base' }, { by: 'espeak', voice: 'es-419' }, { by: 'flite', voice: 'slt' }]);
});
