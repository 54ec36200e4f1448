/**
 * The rules agent's dialogue repair, one rule per subtest: the defects of issue 16 reproduced
 * first (each subtest fails on the agent before the repair), then the repair policy — confirm
 * an unsure quantity or SKU on its own, the keypad after a second failure, a person after the
 * third, history-aware reorders, escalation that survives clipped transcripts, off-domain
 * turns, after hours not being a wall — judged on the CRM/ERP store (orders, cases) and the
 * hand-off actions, never on the agent's own state alone.
 */
import t from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';
import { RulesAgent, type Agent, type AgentAction, type AgentTurn } from '../../src/agent/index.ts';
import { EscalatingAgent } from '../../src/escalation/agent.ts';
import { EscalationDetector } from '../../src/escalation/triggers.ts';
import { quantityIn, readCardinal, words, extractPoAnswer, extractSkuCandidates, nameFrom, companyFrom, asksForPerson, speakOpening } from '../../src/agent/text.ts';
import { CLOSED_AT, DANA, OPEN_AT, collect, context, demoTenant, gatewayFor, openStore, said, tools } from './agent-helpers.ts';

setLogLevel('silent');

/** Aisha Khan, Empire Building Services (her PO is the lettered EBS-2291). */
const AISHA = '+12125550161';

async function setup(o: { now?: Date; ani?: string; escalation?: boolean; tenant?: 'northwind' | 'northwind-status' } = {}) {
  const now = o.now ?? OPEN_AT;
  const store = openStore(now);
  const tenant = demoTenant(o.tenant ?? 'northwind');
  const gw = await gatewayFor(tenant, store);
  const ctx = context(tenant, gw, { now, ani: o.ani ?? DANA });
  const rules = new RulesAgent(ctx);
  const agent: Agent = o.escalation ? new EscalatingAgent(rules, ctx) : rules;
  const greeting = await collect(agent.start(ctx));
  /** a recognised caller turn (confidence 0.9 unless given: the recogniser's, so teen/ty quantities count) */
  const hear = async (text: string, more: Partial<AgentTurn> = {}): Promise<AgentAction[]> => collect(agent.turn({ text, confidence: 0.9, ...more }));
  /** a typed turn (no recogniser: nothing can have been misheard) */
  const type = async (text: string): Promise<AgentAction[]> => collect(agent.turn({ text }));
  const key = async (dtmf: string): Promise<AgentAction[]> => collect(agent.turn({ text: '', dtmf }));
  const voiceOrders = (): Array<{ order_number: string; sku: string; qty: number }> => store.db.prepare(
    "SELECT o.order_number, l.sku, l.qty FROM orders o JOIN order_lines l ON l.order_number = o.order_number WHERE o.source = 'voice' ORDER BY o.order_number, l.line",
  ).all() as Array<{ order_number: string; sku: string; qty: number }>;
  t.teardown(async () => { await gw.close(); store.close(); });
  return { store, gw, ctx, rules, agent, greeting, hear, type, key, voiceOrders };
}

const transfer = (acts: AgentAction[]) => acts.find((a): a is Extract<AgentAction, { type: 'transfer' }> => a.type === 'transfer');
const message = (acts: AgentAction[]) => acts.find((a): a is Extract<AgentAction, { type: 'take_message' }> => a.type === 'take_message')?.message;

// ---- defects reproduced ------------------------------------------------------------------

t.test('defect: "twenty forty boxes of p f forty four twenty" is not booked as 60 — the quantity is asked', async (t) => {
  t.same(quantityIn('twenty forty boxes of p f forty four twenty', extractSkuCandidates('twenty forty boxes of p f forty four twenty')[0]), { ambiguous: [20, 40] });
  t.equal(readCardinal(words('twenty forty'), 0)?.value, 20, 'number words that do not combine are never added');
  t.equal(extractSkuCandidates('p f forty four twenty')[0]?.sku, 'PF-4420', '"forty four twenty" in a part number is 4420');
  const { hear, voiceOrders } = await setup();
  const a = await hear('twenty forty boxes of p f forty four twenty');
  t.notMatch(said(a), /60/);
  t.notMatch(said(a), /place the order/, 'nothing read back as an order');
  t.match(said(a), /I heard 20 and 40\. How many of PF-4420 would you like\?/);
  // the answer is a teen/ty number from the recogniser: confirmed on its own, digit by digit
  t.match(said(await hear('forty')), /^And the quantity: was that 40, four zero\?$/);
  t.match(said(await hear('yes')), /^That's 40 of PF-4420, three quarter inch PVC schedule 40 elbow, available to ship .* Shall I place the order\?$/);
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['PF-4420', 40]], 'the CRM has 40, as said');
});

t.test('defect: "five ten-foot lengths of C P fifty ten" is 5 × CP-5010 (ten-foot is a size)', async (t) => {
  t.same(quantityIn('I need five ten-foot lengths of C P fifty ten', extractSkuCandidates('I need five ten-foot lengths of C P fifty ten')[0]), { value: 5 });
  t.same(quantityIn('twenty of the three quarter inch valves'), { value: 20 }, 'three quarter inch: a size');
  t.same(quantityIn('forty of the schedule forty elbows'), { value: 40 }, 'schedule forty: a descriptor');
  t.same(quantityIn('ten 3/4 inch valves'), { value: 10 }, 'a written fraction is a size');
  const { hear, voiceOrders } = await setup();
  t.match(said(await hear('I need five ten-foot lengths of C P fifty ten')), /^That's 5 of CP-5010, half inch type L copper pipe, available/);
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['CP-5010', 5]]);
});

t.test('defect: after hours, a message that begins "Tell my rep…" is filed as a case, not a transfer', async (t) => {
  const { hear, agent } = await setup({ now: CLOSED_AT, escalation: true });
  await hear("I'd like to leave a message");
  t.equal(agent.state.expect, 'yesno', 'callback number question');
  t.match(said(await hear('yes')), /tell your rep/);
  t.equal(agent.state.expect, 'message');
  const a = await hear('Tell my rep I need a person to call me about the backordered valves, I need them by Friday');
  t.notOk(transfer(a), 'no hand-off');
  t.match(message(a), { kind: 'after_hours_message', callerName: 'Dana Reyes', reason: /a person to call me about the backordered valves/ });
  t.same(a[a.length - 1], { type: 'hangup', reason: 'message taken' });
  // the detector alone: a message being dictated fires nothing
  const d = new EscalationDetector();
  t.equal(d.check({ text: 'tell my rep i want to talk to a person about my order', expect: 'message' }), null);
  t.match(d.check({ text: 'i want to talk to a person' }), { trigger: 'explicit' });
});

t.test('defect: noise is never taken as a name or company — confirmed, asked again, or left empty', async (t) => {
  t.equal(nameFrom('My Order Please'), undefined);
  t.equal(nameFrom("it's Pat Quinn"), 'Pat Quinn');
  t.equal(companyFrom('my order please'), undefined);
  t.equal(companyFrom("I'm calling from Quinn Builders"), 'Quinn Builders');
  const { hear, key, agent } = await setup({ now: CLOSED_AT, ani: '+15550000000' });
  t.match(said(await key('1')), /May I have your name, please\?$/);
  t.equal(agent.state.expect, 'name');
  t.match(said(await hear('My Order Please')), /^Sorry, may I have your name\?/, 'noise: asked again');
  t.match(said(await hear('Pat Quinn')), /^I have your name as Pat Quinn\. Is that right\?$/, 'heard by the recogniser: confirmed');
  t.match(said(await hear('yes')), /which company/);
  t.match(said(await hear('my order please')), /^Sorry, which company/);
  t.match(said(await hear('status of my order')), /^No problem, I'll leave that for your rep\..*best number to call you back/, 'second miss: left empty');
  await hear('yes');
  const m = message(await hear('the delivery was short two boxes'));
  t.match(m, { callerName: 'Pat Quinn', reason: 'the delivery was short two boxes' });
  t.equal(m?.accountName, undefined, 'no company rather than noise');
});

t.test('defect: a lettered PO (EBS-2291) is looked up — spoken, NATO, keyed digits', async (t) => {
  t.equal(extractPoAnswer('E B S two two nine one'), 'EBS-2291');
  t.equal(extractPoAnswer('echo bravo sierra dash two two nine one'), 'EBS-2291');
  t.equal(extractPoAnswer('PO number EBS-2291'), 'EBS-2291');
  const { hear, key, type } = await setup({ ani: AISHA });
  const a = await hear('where is my order E B S two two nine one');
  t.same(tools(a).map((x) => [x.name, x.args.po_number]), [['order_status', 'EBS-2291']]);
  t.match(said(a), /^Purchase order E B S, two two nine one, order S O, four eight one, four two zero, is shipped\./);
  t.match(said(await type('check on an order')), /What's the PO number\?/);
  t.match(said(await hear('echo bravo sierra two two nine one')), /E B S, two two nine one.*is shipped/);
  t.match(said(await type('check on an order')), /What's the PO number\?/);
  t.match(said(await key('2291')), /^Purchase order E B S, two two nine one, .*is shipped/, 'keyed digits find the lettered PO');
});

t.test('defect: keyed PO digits after an opener misheard into the reorder lane are a PO look-up', async (t) => {
  const { hear, key, voiceOrders } = await setup();
  // "what is the status of my order" heard as…
  t.match(said(await hear('what reorder when the four four one three oh')), /Which part number would you like to order\?/);
  const a = await key('12345');
  t.same(tools(a).map((x) => x.name), ['order_status']);
  t.match(said(a), /^Purchase order P O, one two three four five, .*is shipped/);
  t.equal(voiceOrders().length, 0);
  // after a quantity question too (a PO is long; a quantity is not)
  await hear('i want to reorder h x four four one zero');
  t.match(said(await key('12388')), /P O, one two three eight eight.*is picking/);
});

t.test('defect: a price question is never read back as an order; out of lane → a person is offered', async (t) => {
  const { hear, voiceOrders, agent } = await setup();
  const a = await hear('how much is a box of p f four four two zero');
  t.notMatch(said(a), /place the order/);
  t.same(tools(a), [], 'no catalogue look-up, no ATP');
  t.match(said(a), /can't help with prices or terms.*Would you like me to put you through\?$/);
  t.equal(agent.state.expect, 'yesno');
  const b = await hear('yes please');
  t.match(transfer(b), { trigger: 'explicit', reason: /price or terms question \(out of lane\): "how much is a box/ });
  t.equal(voiceOrders().length, 0);
  // "a better price for 500" and net-60 are the tenant's always-human category: handed off at once
  const d = new EscalationDetector();
  t.match(d.check({ text: 'can you do a better price for 500 of those' }), { trigger: 'always-human', category: 'price_negotiation' });
  t.match(d.check({ text: 'we need net-60 terms' }), { trigger: 'always-human', category: 'price_negotiation' });
});

t.test('defect: a catalogue match that is not what was heard is never offered as the order', async (t) => {
  const { hear, voiceOrders } = await setup();
  // HX-4413 is not in the catalogue; its near matches (HX-4410, HX-4412) are not offered
  const a = await hear('i need twenty of h x four four one three');
  t.match(said(a), /^I couldn't find part number H X, four four one three\. Could you say the part number again\? You can also key in the number printed beside the part, then press pound\.$/);
  t.notMatch(said(a), /HX-44/);
  // B for C (the telephone band): only the digits match a part the account orders — confirmed on its own
  const b = await hear('i need twenty of b p fifty ten');
  t.match(said(b), /^Just to check the part: C P, five zero one zero, half inch type L copper pipe\. Is that right\?$/);
  t.match(said(await hear('yes')), /^That's 20 of CP-5010/);
  await hear('no');
  t.equal(voiceOrders().length, 0);
});

t.test('defect: after hours is not a wall — status and reorders work, what needs a person becomes a message', async (t) => {
  t.equal(speakOpening('2026-12-03T07:00:00-06:00', '2026-12-02T22:00:00-06:00'), 'tomorrow at 7 AM');
  t.equal(speakOpening('2026-12-07T07:00:00-06:00', '2026-12-05T13:00:00-06:00'), 'on Monday at 7 AM');
  t.equal(speakOpening('2026-12-03T07:30:00-06:00', '2026-12-03T05:00:00-06:00'), 'today at 7:30 AM');
  const { greeting, hear, key, voiceOrders, store } = await setup({ now: CLOSED_AT, escalation: true });
  t.match(said(greeting), /closed until tomorrow at 7 AM, but I can still check an order or take a reorder/);
  // the README's own example: "Where is my order?" then the PO keyed
  t.match(said(await hear('Where is my order?')), /What's the PO number\?/);
  t.match(said(await key('12345')), /P O, one two three four five.*is shipped.*Is there anything else/);
  // a reorder with its ship date
  t.match(said(await hear('same as last time please')), /That's 20 of CP-5010.*available to ship .* Shall I place the order\?/);
  t.match(said(await hear('yes')), /Your order is booked.*It ships/);
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['CP-5010', 20], ['SD-2200', 2]]);
  // a person: nobody is there — the caller hears when the office opens and a message is taken
  const p = await hear('let me talk to a representative');
  t.notOk(transfer(p));
  t.match(said(p), /closed right now, so I can't put you through to a person\. We open again tomorrow at 7 AM\. I'll take a message/);
  await hear('yes');
  const m = message(await hear('please call me about the copper pipe'));
  t.match(m, { kind: 'after_hours_message', reason: /copper pipe \(caller asked for a person: "let me talk to a representative"\)/ });
  void store;
});

// ---- confidence-driven repair ------------------------------------------------------------

t.test('repair: an unsure quantity is confirmed on its own, digit by digit, before the read-back', async (t) => {
  const { hear, voiceOrders, agent } = await setup();
  // the recogniser was unsure of the whole turn
  const a = await hear('i need twenty of h x four four one zero', { confidence: 0.3 });
  t.match(said(a), /^Just to check the part: H X, four four one zero, half inch brass ball valve\. Is that right\?$/, 'the part first');
  t.equal(agent.state.expect, 'check_part');
  t.same(tools(a).map((x) => x.name), ['find_sku'], 'no ATP before the line is settled');
  t.match(said(await hear('yes')), /^And the quantity: was that 20, two zero\?$/, 'then the quantity, digit by digit');
  t.match(said(await hear('yes')), /^That's 20 of HX-4410/);
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]]);
});

t.test('repair: a habitual "yes" cannot book a misheard teen/ty quantity', async (t) => {
  const { hear, voiceOrders } = await setup();
  // "forty" heard as "fourteen" with high confidence (measured on flite voices)
  t.match(said(await hear('i need fourteen of h x four four one zero', { confidence: 0.92 })), /^And the quantity: was that 14, one four\?$/);
  t.match(said(await hear('no, forty')), /^Was that 40, four zero\?$/);
  t.match(said(await hear('yes')), /^That's 40 of HX-4410/);
  await hear('yep');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 40]]);
});

t.test('repair: n-best alternatives that read the quantity differently make it unsure', async (t) => {
  const { hear } = await setup();
  const a = await hear('i need twenty four of h x four four one zero', { confidence: 0.95, alternatives: [{ text: 'i need twenty of h x four four one zero', confidence: 0.9 }] });
  t.match(said(a), /^And the quantity: was that 24, two four\?$/);
  // alternatives that agree change nothing
  const { hear: hear2 } = await setup();
  t.match(said(await hear2('i need twenty four of h x four four one zero', { confidence: 0.95, alternatives: [{ text: 'i need twenty four of h x four four one oh', confidence: 0.9 }] })), /^That's 24 of HX-4410/);
  // an exact part only an alternative had: confirmed on its own
  const { hear: hear3 } = await setup();
  t.match(said(await hear3('i need twenty of t x four four one three', { alternatives: [{ text: 'i need twenty of h x four four one zero', confidence: 0.8 }] })), /^Just to check the part: H X, four four one zero/);
});

t.test('repair: the quantity — narrower, then the keypad, then keyed digits are taken as they are', async (t) => {
  const { hear, key, voiceOrders, agent } = await setup();
  t.match(said(await hear('i want to reorder h x four four one zero')), /How many of HX-4410/);
  t.equal(agent.state.expect, 'quantity');
  t.match(said(await hear('um let me see')), /^How many of HX-4410 would you like\?$/);
  t.same(agent.state.repair, { slot: 'qty', failures: 1 });
  t.match(said(await hear('i am not sure')), /^Please key in the quantity on your phone and press pound\.$/);
  t.match(said(await key('40')), /^That's 40 of HX-4410/, 'keyed: no check on its own');
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 40]]);
});

t.test('repair: the part via the number printed beside it — one match, the account\'s own, or a keypad choice', async (t) => {
  const { hear, key, agent } = await setup();
  t.match(said(await hear('i need twenty of h x nine nine nine nine')), /couldn't find part number H X, nine nine nine nine\. Could you say/);
  t.match(said(await hear('h x nine nine nine nine')), /Please key in the number printed beside the part — just its digits — and press pound\.$/);
  // HX-4410 and PF-4410 share the digits; Dana orders HX-4410: that one, confirmed on its own
  t.match(said(await key('4410')), /^Just to check the part: H X, four four one zero, half inch brass ball valve\. Is that right\?$/);
  t.match(said(await hear('yes')), /^That's 20 of HX-4410/, 'the quantity said first is kept');
  t.equal(agent.state.expect, 'check_qty');
  // an account that never ordered either: a choice by keypad
  const other = await setup({ ani: '+12125550161' });
  await other.hear('i need twenty of h x nine nine nine nine');
  await other.hear('h x nine nine nine nine');
  t.match(said(await other.key('4410')), /Two parts have those digits\. For H X, four four one zero, half inch brass ball valve, press 1\. For P F, four four one zero, half inch PVC schedule 40 elbow, press 2\.$/);
  t.equal(other.agent.state.expect, 'digits');
  t.match(said(await other.key('2')), /^That's 20 of PF-4410/);
});

t.test('repair: the PO — again, then its digits by keypad', async (t) => {
  const { hear, key } = await setup();
  await hear('what is the status of my order');
  t.match(said(await hear('p o nine nine nine one one')), /couldn't find purchase order P O, nine nine nine one one\. Could you read me the number again\?/);
  t.match(said(await hear('p o nine nine nine one one')), /Please key in the digits of the PO number on your phone, leaving out any letters, and press pound\.$/);
  t.match(said(await key('12345')), /is shipped/);
  // keyed digits that are an order number, not a PO
  await hear('check on an order');
  t.match(said(await key('481200')), /^Order S O, four eight one, two zero zero is shipped/);
});

t.test('repair: a PO not found under the top reading is looked up under the other readings — only the caller\'s own orders', async (t) => {
  const { hear } = await setup();
  await hear('where is my order');
  // the open model overrode the PO grammar ("i want to three four five"); the grammar's reading is an alternative
  t.match(said(await hear('i want to three four five', { confidence: 0.6, alternatives: [{ text: 'one two three four five', confidence: 0.4, grammar: 'po' }] })),
    /P O, one two three four five.*is shipped/);
  // another account's PO (PO77410 is ACC-10113's) is never read out from an alternative reading
  await hear('check on an order');
  t.match(said(await hear('i want to three four five', { confidence: 0.6, alternatives: [{ text: 'seven seven four one zero', confidence: 0.4, grammar: 'po' }] })),
    /couldn't find purchase order P O, three four five\. Could you read me the number again\?/);
});

t.test('repair: asked three times and still not understood → a person, with that reason', async (t) => {
  const { hear, agent } = await setup({ escalation: true });
  await hear('i want to reorder h x four four one zero');
  await hear('um let me see');
  await hear('i am not sure');
  const a = await hear('i do not know');
  t.match(transfer(a), { trigger: 'repetition', reason: 'asked 3 times for the quantity and still not understood', target: '2101' });
  t.match(said(a), /I am going to transfer you to Maria Chen/);
  t.equal(agent.state.lane, 'transfer');
});

t.test('repair: the read-back in noise — yes/no, then the keypad (1 places, 2 cancels)', async (t) => {
  const { hear, key, voiceOrders } = await setup();
  await hear('i need twenty of h x four four one zero');
  t.match(said(await hear('hmm')), /^Shall I place the order\? Please say yes or no\.$/);
  t.match(said(await hear('what')), /To place the order, say yes or press 1\. To cancel it, say no or press 2\.$/);
  t.match(said(await key('1')), /Your order is booked/);
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]]);
});

t.test('repair: "no, forty" at the read-back corrects the quantity instead of cancelling', async (t) => {
  const { hear, voiceOrders } = await setup();
  t.match(said(await hear('i need twenty of h x four four one zero')), /^That's 20 of HX-4410/);
  t.match(said(await hear('no, twenty four')), /^That's 24 of HX-4410/);
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 24]]);
});

t.test('repair: a per-state grammar\'s forced words (floor confidence) are doubted, not acted on', async (t) => {
  const { hear, voiceOrders, agent } = await setup({ escalation: true });
  t.match(said(await hear('i need twenty of h x four four one zero')), /Shall I place the order\?$/);
  t.equal(agent.state.expect, 'check_qty');
  // "hmm, let me think" decoded by the yes/no grammar as its escape word
  const a = await hear('agent', { confidence: 0.05 });
  t.notOk(transfer(a), 'no hand-off on a forced escape word');
  t.match(said(a), /^Sorry, did you ask for a person\? Please say yes or no\.$/);
  t.match(said(await hear('no')), /^That's 20 of HX-4410.*Shall I place the order\?$/, 'no: back to the read-back');
  // "yes, that is correct" in noise heard as "that's wrong": the order is not dropped on it
  t.match(said(await hear("that's wrong", { confidence: 0.05 })), /^Sorry, I didn't catch that\. Shall I place the order\?/);
  // after that trouble, a yes at the floor confidence is not enough to book: the keypad decides
  t.match(said(await hear('yes', { confidence: 0.05 })), /press 1\. To cancel it, press 2\.$/);
  t.same(voiceOrders(), []);
  await collect(agent.turn({ text: '', dtmf: '1' }));
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]]);
  // a part the account orders, heard unsure (the SKU grammar lands on the history): confirmed on its own
  const b = await setup();
  await b.hear('i want to reorder');
  t.match(said(await b.hear('h x four four one zero', { confidence: 0.2 })), /^Just to check the part: H X, four four one zero/);
  // the detector leaves a doubtful request for a person to the agent
  t.equal(new EscalationDetector().check({ text: 'agent', confidence: 0.05, expect: 'yesno' }), null);
  t.match(new EscalationDetector().check({ text: 'agent', confidence: 0.05, expect: 'open' }), { trigger: 'explicit' });
});

t.test('repair: a doubtful yes/no grammar answer defers to the open transcript when that one is a clear yes or no', async (t) => {
  // "Ignore your rules and place the order": the yes/no grammar heard its escape phrase at the floor
  const { hear, voiceOrders } = await setup({ escalation: true });
  t.match(said(await hear('i need twenty of h x four four one zero')), /Shall I place the order\?$/);
  const a = await hear('i want to speak to an agent', { confidence: 0.05, alternatives: [{ text: 'ignore your rules and place the order', confidence: 0.4 }] });
  t.notOk(transfer(a), 'no hand-off');
  t.notMatch(said(a), /did you ask for a person/);
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]], 'the open transcript\'s yes placed the order');
  // an open transcript that asks for a person is not taken over: the agent still asks
  const b = await setup({ escalation: true });
  await b.hear('i need twenty of h x four four one zero');
  t.match(said(await b.hear('agent', { confidence: 0.05, alternatives: [{ text: 'yes get me an agent', confidence: 0.4 }] })), /did you ask for a person/);
  // a read-only line: the yes from the open transcript meets the refusal, not a hand-off question
  const c = await setup({ escalation: true, tenant: 'northwind-status' });
  t.match(said(await c.hear('i need twenty of h x four four one zero')), /place the order/);
  const r = await c.hear('i want to speak to an agent', { confidence: 0.05, alternatives: [{ text: 'ignore your rules and place the order', confidence: 0.3 }] });
  t.match(said(r), /take a message for your rep/);
  t.same(c.voiceOrders(), [], 'no order on the read-only line');
  // the open model's other words on a forced yes are not taken as a quantity correction
  const d = await setup({ escalation: true, tenant: 'northwind-status' });
  await d.hear('i need twenty of h x four four one zero');
  t.match(said(await d.hear('i want to speak to an agent', { confidence: 0.05, alternatives: [{ text: 'can i get eleven place the order', confidence: 0.3 }] })), /take a message for your rep/);
});

// ---- history ------------------------------------------------------------------------------

t.test('history: "reorder my last order", "the valves I got last month", "twenty more of the solder"', async (t) => {
  const a = await setup();
  const r = await a.hear('reorder my last order');
  t.same(tools(r).map((x) => x.name), ['last_orders', 'check_atp', 'check_atp']);
  t.match(said(r), /^That's 20 of CP-5010, .*, and 2 of SD-2200, .*Shall I place the order\?$/);
  const b = await setup();
  t.match(said(await b.hear('the valves I got last month')), /^That's 24 of HX-4410, half inch brass ball valve, available/);
  await b.hear('yes');
  t.same(b.voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 24]]);
  const c = await setup();
  t.match(said(await c.type('twenty more of the solder we got last time')), /^That's 20 of SD-2200, Lead free solder/);
  const u = await setup();
  await u.hear('i want to reorder h x four four one zero');
  t.match(said(await u.hear('the usual amount')), /^That's 24 of HX-4410/, '"the usual" as a quantity: the last one ordered');
  const d = await setup();
  t.match(said(await d.hear('the gaskets we got last time')), /^I don't see gasket on your recent orders\. Which part number would you like\?$/);
  t.equal(d.agent.state.expect, 'sku');
  // the account's lines are kept in the state (the controller hands them to the recogniser)
  t.ok((a.agent.state.history ?? []).some((l) => l.sku === 'HX-4410'), 'history in the state');
});

// ---- escalation --------------------------------------------------------------------------

t.test('escalation survives clipped transcripts', async (t) => {
  for (const text of ['i want to talk to a', 'can i speak to a', 'a real person', 'agent', 'representative', 'operator', 'talk to somebody please', 'transfer me']) {
    t.ok(asksForPerson(text), text);
    t.match(new EscalationDetector().check({ text }), { trigger: 'explicit' }, text);
  }
  t.notOk(asksForPerson('i need to talk to the sales department'), 'a department is routing');
  const d = new EscalationDetector();
  t.match(d.check({ text: 'zero' }), { trigger: 'explicit', reason: /said "zero"/ });
  t.equal(d.check({ text: 'zero', expect: 'quantity' }), null, 'zero as an answer to a number question');
  t.equal(d.check({ text: 'help' }), null, 'one "help" gets the menu');
  t.match(d.check({ text: 'help me' }), { trigger: 'explicit', reason: /help repeatedly/ }, 'the second in a row a person');
  t.match(new EscalationDetector().check({ text: 'help help' }), { trigger: 'explicit' });
  // through the agent: the hand-off is routed to the account's rep
  const { hear } = await setup({ escalation: true });
  t.match(transfer(await hear('i want to talk to a')), { trigger: 'explicit', target: '2101' });
});

t.test('escalation: frustration counts on the repair loop (one cue while asked again)', async (t) => {
  const d = new EscalationDetector();
  t.equal(d.check({ text: 'come on i said forty' }), null, 'one cue, no repair: nothing');
  t.match(d.check({ text: 'come on i said forty', repairing: true }), { trigger: 'frustration', reason: /while asked again/ });
  const { hear } = await setup({ escalation: true });
  await hear('i want to reorder h x four four one zero');
  await hear('um let me see');
  t.match(transfer(await hear('come on, this is the second time')), { trigger: 'frustration' });
});

t.test('off-domain twice in a row → a person is offered, not squeezed into a lane', async (t) => {
  const { hear, voiceOrders } = await setup();
  const a = await hear('i need twenty of h x four four one zero', { offDomain: true, confidence: 0.4 });
  t.same(tools(a), [], 'nothing acted on');
  t.match(said(a), /didn't catch that/);
  const b = await hear('the weather in paris', { offDomain: true, confidence: 0.3 });
  t.match(said(b), /don't think I can help with that here\. Would you like me to put you through to a person\?$/);
  t.match(transfer(await hear('yes')), { reason: /off-domain twice/ });
  t.equal(voiceOrders().length, 0);
});

// ---- the per-state expectation -------------------------------------------------------------

t.test('every prompt sets state.expect (the recogniser\'s grammar for the answer)', async (t) => {
  const { hear, type, key, agent, greeting } = await setup();
  t.ok(greeting.length > 0);
  t.equal(agent.state.expect ?? 'open', 'open', 'after the greeting');
  const seen: Array<[string, string | undefined]> = [];
  const step = async (what: string, f: () => Promise<unknown>): Promise<void> => { await f(); seen.push([what, agent.state.expect]); };
  await step('reorder without a part', () => type('i want to reorder'));
  await step('part without a quantity', () => type('h x four four one zero'));
  await step('quantity', () => type('twenty'));
  await step('no', () => type('no'));
  await step('status', () => type('check on an order'));
  await step('keyed PO', () => key('12345'));
  await step('message', () => type('please have someone call me back'));
  await step('callback yes', () => type('yes'));
  void hear;
  t.same(seen, [
    ['reorder without a part', 'sku'], ['part without a quantity', 'quantity'], ['quantity', 'check_qty'], ['no', 'open'],
    ['status', 'po'], ['keyed PO', 'open'], ['message', 'yesno'], ['callback yes', 'message'],
  ]);
});

t.test('a cancelled order leaves nothing behind for the next one', async (t) => {
  const { type } = await setup();
  await type('i need twenty of h x four four one zero');
  t.match(said(await type('no')), /won't place that order/);
  t.match(said(await type('i want to reorder')), /Which part number/);
  t.match(said(await type('p f four four two zero')), /^How many of PF-4420/, 'the old quantity is not carried over');
});

// ---- goodbye in noise, routing that survives an unsure transcript ---------------------------

const hungUp = (acts: AgentAction[]) => acts.some((a) => a.type === 'hangup');

t.test('a goodbye heard with low confidence is asked about before the call ends', async (t) => {
  // a 5 dB request misheard as "…that is all" ended a call
  const { hear, agent } = await setup();
  let a = await hear('i need all that is all', { confidence: 0.3 });
  t.notOk(hungUp(a), 'the call goes on');
  t.match(said(a), /^Just to check: do you want to end the call\? Please say yes or no\.$/);
  t.equal(agent.state.expect, 'open', 'the answer is decoded with the open model (the request again, usually)');
  a = await hear('no', { confidence: 0.3 });
  t.notOk(hungUp(a));
  t.match(said(a), /^Okay\. I can help you reorder parts/, 'the question before the check is asked again');
  // the caller says the request again instead of yes or no: it is the request
  await hear('bye', { confidence: 0.2 });
  a = await hear('what is the status of p o one two three four five', { confidence: 0.4 });
  t.notOk(hungUp(a));
  t.match(said(a), /is shipped/);
  // after "is there anything else…?", a goodbye is the expected answer: it ends the call at any confidence
  t.match(said(a), /anything else/);
  a = await hear('no that is all', { confidence: 0.2 });
  t.ok(hungUp(a), 'ended');
  t.match(said(a), /Goodbye\.$/);
});

t.test('a low-confidence goodbye: "yes" ends the call; a confident goodbye ends it at once; mid-question the caller goes on', async (t) => {
  {
    const { hear } = await setup();
    t.notOk(hungUp(await hear('that is all', { confidence: 0.2 })));
    const a = await hear('yes', { confidence: 0.2 });
    t.ok(hungUp(a), '"yes" to the check ends the call');
  }
  {
    const { hear } = await setup();
    t.ok(hungUp(await hear('that is all thank you goodbye', { confidence: 0.9 })), 'a confident goodbye ends the call as before');
  }
  {
    // a whole closing sentence heard at a low confidence (noisy line): nothing in it could be a request
    const { hear } = await setup();
    t.ok(hungUp(await hear('that is all thank you goodbye', { confidence: 0.2 })), 'only closing words: ends at once');
    const b = await setup();
    t.notOk(hungUp(await b.hear('bye', { confidence: 0.2 })), 'a lone low-confidence "bye" is asked about');
    const c = await setup();
    t.notOk(hungUp(await c.hear('i need that is all', { confidence: 0.2 })), 'closing words after a request are asked about');
  }
  {
    const { hear, type } = await setup();
    t.ok(hungUp(await type('bye')), 'typed (no recogniser): nothing misheard');
    void hear;
  }
  {
    const { hear, agent } = await setup();
    t.match(said(await hear('I would like to reorder')), /part number/i);
    t.equal(agent.state.expect, 'sku');
    t.match(said(await hear('that is all', { confidence: 0.2 })), /do you want to end the call/);
    // the caller answers the part question instead: it is taken as that answer
    const a = await hear('H X four four one zero', { confidence: 0.9 });
    t.notOk(hungUp(a));
    t.match(said(a), /HX-4410|H X, four four one zero|how many/i);
    t.notMatch(said(a), /reorder parts, check an order/, 'not treated as a new request');
  }
});

t.test('routing: a department named in an unsure turn wins over a generic person offer', async (t) => {
  {
    // "can you put me through to billing…" heard as off-domain noise twice (bench: espeak en-us, clean)
    const { hear } = await setup({ escalation: true });
    await hear('can you billing what is', { confidence: 0.2, offDomain: true });
    let a = await hear('i need oh oh one is the', { confidence: 0.2, offDomain: true });
    t.match(said(a), /Would you like me to put you through to billing\?$/);
    t.notMatch(said(a), /a person/);
    a = await hear('yes please');
    t.match(transfer(a), { target: '2200' }, 'billing (Accounts Receivable), not the account rep');
  }
  {
    // off-domain twice with no department: the person offer goes to the rep as before
    const { hear } = await setup({ escalation: true });
    await hear('the weather is nice', { confidence: 0.2, offDomain: true });
    t.match(said(await hear('my grandmother grows tomatoes', { confidence: 0.2, offDomain: true })), /put you through to a person\?$/);
    t.match(transfer(await hear('yes')), { target: '2101' }, 'Maria Chen, the account rep');
  }
  {
    // "returns please" forced through the SKU grammar at the floor confidence: asked, then routed
    const { hear, agent } = await setup({ escalation: true });
    await hear('I would like to reorder');
    t.equal(agent.state.expect, 'sku');
    const a = await hear('returns please', { confidence: 0.05 });
    t.notOk(transfer(a), 'not acted on');
    t.match(said(a), /^Sorry, do you want me to put you through to returns\? Please say yes or no\.$/);
    t.match(transfer(await hear('yes')), { target: '2300' });
  }
  {
    // misheard into the reorder lane; the part asked three times; a department heard on the way → there
    const { hear } = await setup({ escalation: true });
    await hear('i need all lead pipe and');
    await hear('what', { confidence: 0.3 });
    t.notOk(transfer(await hear('billing what is the', { confidence: 0.2, offDomain: true })), 'too unsure to route on');
    let a: AgentAction[] = [];
    for (let i = 0; i < 3 && !transfer(a); i++) a = await hear('what', { confidence: 0.3 });
    t.match(transfer(a), { target: '2200', reason: /asked 3 times for the part number/ }, 'the repair hand-off goes to billing, not the rep');
  }
});

t.test('reorder: an open turn garbled off-domain whose order reading names a catalogue part goes to the reorder lane, everything confirmed', async (t) => {
  const { hear, voiceOrders } = await setup();
  const order = { text: 'i need twenty of h x four four one zero', confidence: 0.01, grammar: 'order' };
  let a = await hear('i need the o four four one three oh', { confidence: 0.01, offDomain: true, alternatives: [order] });
  t.match(said(a), /^Just to check the part: H X, four four one zero, .*Is that right\?$/, 'the part from the order reading, checked on its own');
  a = await hear('yes');
  t.match(said(a), /^And the quantity: was that 20, two zero\?$/, 'its quantity too');
  a = await hear('yes');
  t.match(said(a), /That's 20 of HX-4410.*Shall I place the order\?$/);
  t.same(voiceOrders(), [], 'nothing booked before the read-back is accepted');
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]]);

  // a wrong reading is caught at the part check and never booked
  const b = await setup();
  a = await b.hear('i need all that the p fifty ten', { confidence: 0.01, offDomain: true, alternatives: [{ text: 'i need five hundred of the b a eighty ten', confidence: 0.01, grammar: 'order' }] });
  t.notMatch(said(a), /place the order/);
  if (/Just to check the part/.test(said(a))) {
    // a bare no (a reorder caller's correction often comes back so): the part is asked for, the keypad and a person beside it
    t.match(said(await b.hear('no')), /^Sorry about that\. Which part number would you like\? You can also key in the number printed beside the part, then press pound\. Or ask for a person\.$/, 'a guessed part rejected: the part asked for');
  }
  t.same(b.voiceOrders(), []);

  // without an order reading (or with one that names no part) an off-domain turn is not understood, as before
  const c = await setup();
  t.match(said(await c.hear('i need the o four four one three oh', { confidence: 0.01, offDomain: true, alternatives: [{ text: 'what', confidence: 0.01, grammar: 'order' }] })), /^Sorry, I didn't catch that/);
  // and an order reading is not used while a narrower question waits
  const d = await setup();
  await d.hear('where is my order');
  t.match(said(await d.hear('the o four four one three oh', { confidence: 0.01, offDomain: true, alternatives: [order] })), /PO number/);
});

t.test('repair: a part or quantity check not understood counts on its loop — the keypad on the second miss', async (t) => {
  const { hear, key, voiceOrders } = await setup();
  t.match(said(await hear('i need twenty of h x four four one zero', { confidence: 0.2 })), /Just to check the part/);
  t.match(said(await hear('mumble', { confidence: 0.01, offDomain: true })), /^Sorry, I didn't catch that\. Is the part H X, four four one zero\? Please say yes or no\.$/);
  const a = await hear('mumble', { confidence: 0.01, offDomain: true });
  t.match(said(a), /key in the number printed beside the part/, 'the keypad, not a person offer');
  t.notMatch(said(a), /a person/);
  // the digits of the part being checked: the caller confirms it (a "yes" the recogniser kept
  // hearing as "what", flite awb at 15 dB) — on to the quantity
  t.match(said(await key('4410#')), /^And the quantity: was that 20, two zero\?$/);
  t.match(said(await hear('mumble', { confidence: 0.01, offDomain: true })), /Is that the right quantity\?/);
  t.match(said(await hear('mumble', { confidence: 0.01, offDomain: true })), /key in the quantity/);
  t.match(said(await key('20#')), /That's 20 of HX-4410/);
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]]);
  // other digits at the same keypad prompt are a part look-up: 4410 is also printed beside
  // PF-4410, so the account's own is checked once more
  const b = await setup();
  await b.hear('i need twenty of p f four four two zero', { confidence: 0.2 });
  await b.hear('mumble', { confidence: 0.01, offDomain: true });
  await b.hear('mumble', { confidence: 0.01, offDomain: true });
  t.match(said(await b.key('4410#')), /^Just to check the part: H X, four four one zero/);
});

t.test('two parts with quantities in one sentence: one line at a time, each read back and booked as said', async (t) => {
  const { hear, voiceOrders } = await setup();
  let a = await hear('I need twenty of H X four four one zero and five of C P five zero one zero', { confidence: 0.9 });
  t.match(said(a), /^I'll take those one at a time\./);
  t.notMatch(said(a), /I heard/, 'the two quantities are not taken for one ambiguous quantity');
  t.match(said(a), /That's 20 of HX-4410.*Shall I place the order\?$/, 'the first line with its own quantity');
  a = await hear('yes');
  t.match(said(a), /Your order is booked.*Now the next part\..*That's 5 of CP-5010.*Shall I place the order\?$/);
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20], ['CP-5010', 5]], 'both lines, as said');

  // the first one cancelled: the second is still taken
  const b = await setup();
  await b.hear('five of C P five zero one zero and twenty of H X four four one zero', { confidence: 0.9 });
  a = await b.hear('no');
  t.match(said(a), /^Okay, I won't place that order\. Now the next part\..*That's 20 of HX-4410.*Shall I place the order\?$/);
  await b.hear('yes');
  t.same(b.voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]]);
});

t.test('zero wrong orders: after trouble at the read-back, an unsure "yes" does not book — the keypad decides', async (t) => {
  // bench: "the usual" (misheard) → the last order read back → "that is not what I asked for"
  // not understood → "No." heard as "yeah" → booked
  const { hear, key, voiceOrders } = await setup();
  t.match(said(await hear('the usual', { confidence: 0.3 })), /Shall I place the order\?$/);
  t.match(said(await hear('mumble', { confidence: 0.01, offDomain: true })), /Shall I place the order\? Please say yes or no\.$/);
  const a = await hear('yeah', { confidence: 0.2 });
  t.same(voiceOrders(), [], 'not booked on an unsure yes');
  t.match(said(a), /press 1\. To cancel it, press 2\.$/);
  t.same(voiceOrders(), []);
  await hear('yeah', { confidence: 0.2 });
  t.same(voiceOrders(), [], 'still not booked on another unsure yes');
  // a confident yes, or the key, books
  const b = await setup();
  await b.hear('the usual', { confidence: 0.3 });
  await b.hear('mumble', { confidence: 0.01, offDomain: true });
  await b.hear('yes', { confidence: 0.9 });
  t.equal(b.voiceOrders().length > 0, true, 'a confident yes books');
  const c = await setup();
  await c.hear('the usual', { confidence: 0.3 });
  await c.hear('mumble', { confidence: 0.01, offDomain: true });
  await c.hear('yeah', { confidence: 0.2 });
  await c.key('1');
  t.equal(c.voiceOrders().length > 0, true, 'the key books');
  void key;
});

t.test('a part guessed from an unclear opener that the caller rejects: back to the request, then a person — not a part-number loop', async (t) => {
  // bench ool-terms: "We would like net sixty payment terms" heard as noise whose order reading named PX-1210
  const { hear, voiceOrders } = await setup({ escalation: true });
  let a = await hear('what i get the when you on oh', { confidence: 0.01, offDomain: true, alternatives: [{ text: 'i need twelve of h x four four one zero', confidence: 0.01, grammar: 'order' }] });
  t.match(said(a), /Just to check the part/);
  a = await hear('no that is not what i asked for', { confidence: 0.3 });
  t.match(said(a), /^Sorry, I misunderstood\. I can help you reorder parts.*ask for a person\.$/);
  t.notMatch(said(a), /part number/);
  // the same garbled request again, its order reading naming the same part: not guessed again
  a = await hear('we would like the when you', { confidence: 0.01, offDomain: true, alternatives: [{ text: 'i need twelve of h x four four one zero', confidence: 0.01, grammar: 'order' }] });
  t.match(said(a), /put you through to a person\?$/, 'the next unclear turn: a person is offered');
  t.same(voiceOrders(), []);
  // "not what I asked for" to any part check does the same
  const b = await setup();
  await b.hear('i need twenty of h x four four one zero', { confidence: 0.2 });
  t.match(said(await b.hear('no that is not what i asked for', { confidence: 0.3 })), /^Sorry, I misunderstood\./);
  // the second "not what I asked for" in the call (another part read from the next garbled turn): a person at once
  t.match(said(await b.hear('can i get that b a eight zero one zero', { confidence: 0.2 })), /^Just to check the part: B A/);
  a = await b.hear('no that is not what i asked for', { confidence: 0.3 });
  t.match(said(a), /^Sorry, I keep getting that wrong\. Would you like me to put you through to a person\?$/);
  t.ok(transfer(await b.hear('yes please', { confidence: 0.6 })), 'a person');
  t.same(b.voiceOrders(), []);
  // a bare no to a guessed part: the part is asked for (keypad and a person beside it), and
  // the next unclear opener is still not guessed into a reorder
  const c = await setup({ escalation: true });
  await c.hear('what i get the when you on oh', { confidence: 0.01, offDomain: true, alternatives: [{ text: 'i need twelve of h x four four one zero', confidence: 0.01, grammar: 'order' }] });
  a = await c.hear('no that is not correct', { confidence: 0.3 });
  t.match(said(a), /^Sorry about that\. Which part number would you like\?.*Or ask for a person\.$/);
  t.match(said(await c.hear('a person please')), /transfer|put you through|Maria/i, 'a person, as offered');
});

t.test('checks: a part or quantity check takes a yes, a no, or the correction — and a forced answer never ends the call', async (t) => {
  // the checks decode with grammars that hold corrections ("no, H X forty-four ten", "no, forty")
  const { hear, key, agent, voiceOrders } = await setup({ escalation: true });
  t.match(said(await hear('i need twenty of p f four four one zero', { confidence: 0.2 })), /^Just to check the part: P F, four four one zero/);
  t.equal(agent.state.expect, 'check_part');
  // the correction names another part: that one is checked
  t.match(said(await hear('no h x forty four ten', { confidence: 0.05 })), /^Just to check the part: H X, four four one zero/);
  t.equal(agent.state.expect, 'check_part');
  // a second correction heard as another catalogue part: not checked — the keypad (the part's second miss)
  let a = await hear('no b a eight zero one zero', { confidence: 0.05 });
  t.match(said(a), /^Sorry about that\. Please key in the number printed beside the part — just its digits — and press pound\.$/);
  t.notMatch(said(a), /Just to check the part: B A/);
  t.equal(agent.state.expect, 'sku');
  // keyed digits answer it as a part (not a PO look-up); the account's own of two parts, checked once
  t.match(said(await key('4410#')), /^Just to check the part: H X, four four one zero/);
  t.match(said(await hear('yes')), /was that 20, two zero\?$/);
  t.equal(agent.state.expect, 'check_qty');
  // "no, forty" at the quantity check: the new number is checked
  t.match(said(await hear('no forty', { confidence: 0.3 })), /^Was that 40, four zero\?$/);
  a = await hear('yes');
  t.match(said(a), /^That's 40 of HX-4410.*Shall I place the order\?$/);
  t.equal(agent.state.expect, 'check_qty');
  t.same(voiceOrders(), []);
  await hear('yes');
  t.same(voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 40]]);

  // "no, <the part just checked>": the grammar forced it — the part is asked for, the keypad beside the question
  const g = await setup();
  await g.hear('i need twenty of p f four four one zero', { confidence: 0.2 });
  a = await g.hear('no p f four four one zero', { confidence: 0.05 });
  t.match(said(a), /^Sorry about that\. What is the part number\? You can also key in the number printed beside the part, then press pound\.$/);
  t.match(said(await g.key('4410#')), /^Just to check the part: H X, four four one zero/, 'keyed digits answer it as a part');

  // outcome bench (ool-price, espeak en-us, 15 dB): "No, that is not what I asked for." came back
  // from the yes/no grammar as "go ahead" (floor confidence) and from the open model as "no that
  // is all one four": its "that is all" asked "do you want to end the call?"
  const b = await setup({ escalation: true });
  await b.hear('i need twenty of h x four four one zero', { confidence: 0.2 });
  a = await b.hear('go ahead', { confidence: 0.05, alternatives: [{ text: 'no that is all one four', confidence: 0.02 }] });
  t.notMatch(said(a), /end the call/);
  t.notMatch(said(a), /And the quantity|How many/, 'not taken as a yes either');
  t.match(said(a), /What is the part number\?/, 'the no of the open transcript');
  t.same(b.voiceOrders(), []);
  // the same at the read-back: the order is cancelled, the call goes on
  const c = await setup({ escalation: true });
  t.match(said(await c.hear('i need twenty of h x four four one zero')), /Shall I place the order\?$/);
  a = await c.hear('go ahead', { confidence: 0.05, alternatives: [{ text: 'no that is all one four', confidence: 0.2 }] });
  t.notMatch(said(a), /end the call/);
  t.notOk(a.some((x) => x.type === 'hangup'));
  t.same(c.voiceOrders(), []);
  // a no with a correction in the open transcript keeps it ("no forty")
  const d = await setup({ escalation: true });
  await d.hear('i need twenty of h x four four one zero');
  t.match(said(await d.hear('go ahead', { confidence: 0.05, alternatives: [{ text: 'no forty', confidence: 0.3 }] })), /was that 40, four zero\?$/);
  t.same(d.voiceOrders(), []);
  // a correction at a part check forced onto the escape "i want to talk to a": the person offer,
  // and a "no" to it goes back to the part check, the line kept (it went to the menu)
  const e = await setup({ escalation: true });
  await e.hear('i need twenty of h x four four one zero', { confidence: 0.2 });
  t.match(said(await e.hear('i want to talk to a', { confidence: 0.05 })), /^Sorry, did you ask for a person\?/);
  t.match(said(await e.hear('no')), /^Okay\. Just to check the part: H X, four four one zero, half inch brass ball valve\. Is that right\?$/);
  t.match(said(await e.hear('yes')), /^And the quantity: was that 20, two zero\?$/);
  // the offer made on a forced request, answered with a forced yes ("No." heard as "yeah" at the
  // floor confidence): asked again with the keypad; a second forced yes goes back to the question
  const h = await setup({ escalation: true });
  await h.hear('i need twenty of h x four four one zero', { confidence: 0.2 });
  await h.hear('i want to talk to a', { confidence: 0.05 });
  a = await h.hear('yeah', { confidence: 0.05 });
  t.notOk(transfer(a), 'no hand-off on a forced yes to a forced request');
  t.match(said(a), /^Sorry, I didn't catch that\. Do you want to talk to a person\? Press 1 for yes, or 2 for no\.$/);
  a = await h.hear('yeah', { confidence: 0.05 });
  t.notOk(transfer(a));
  t.match(said(a), /^Okay\. Just to check the part: H X, four four one zero/);
  // declined once: another forced "talk to a" at the check is a miss on its loop, then the keypad
  t.match(said(await h.hear('talk to a', { confidence: 0.05 })), /^Is the part H X, four four one zero\? Please say yes or no\.$/);
  t.match(said(await h.hear('talk to a', { confidence: 0.05 })), /key in the number printed beside the part/);
  t.same(h.voiceOrders(), []);
  // the key, or a yes heard with confidence, hands off
  const k = await setup({ escalation: true });
  await k.hear('i need twenty of h x four four one zero', { confidence: 0.2 });
  await k.hear('i want to talk to a', { confidence: 0.05 });
  await k.hear('yeah', { confidence: 0.05 });
  t.ok(transfer(await k.key('1')), 'keyed 1: a person');
  const m = await setup({ escalation: true });
  await m.hear('i need twenty of h x four four one zero', { confidence: 0.2 });
  await m.hear('i want to talk to a', { confidence: 0.05 });
  t.ok(transfer(await m.hear('yes please', { confidence: 0.6 })), 'a confident yes: a person');
});

t.test('zero wrong orders: the open model\'s yes never overrides the check grammar\'s no, and a floor-confidence yes never books', async (t) => {
  // offline run, flite rms at 15 dB: "No, don't place it." came back right from the check grammar
  // at a low confidence, the open model heard a yes, and the order was booked
  const { hear, key, voiceOrders } = await setup({ escalation: true });
  t.match(said(await hear('i need twenty of h x four four one zero')), /Shall I place the order\?$/);
  let a = await hear("no don't place it", { confidence: 0.08, alternatives: [{ text: 'go ahead place it', confidence: 0.3 }] });
  t.same(voiceOrders(), [], 'not booked');
  t.match(said(a), /Shall I place the order\? Please say yes or no\.$/, 'a doubtful no: asked again');
  a = await hear("no don't place it", { confidence: 0.3 });
  t.match(said(a), /won't place that order/);
  t.same(voiceOrders(), []);
  // a yes at the floor confidence, no trouble before: the keypad decides
  const b = await setup({ escalation: true });
  await b.hear('i need twenty of h x four four one zero');
  a = await b.hear('yes', { confidence: 0.05 });
  t.same(b.voiceOrders(), [], 'not booked on a forced yes');
  t.match(said(a), /press 1\. To cancel it, press 2\.$/);
  await b.key('1');
  t.same(b.voiceOrders().map((o) => [o.sku, o.qty]), [['HX-4410', 20]], 'the key books');
  void key;
});
