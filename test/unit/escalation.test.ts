/**
 * Escalation triggers: each fires on a scripted turn (detector alone, then whole scripted
 * calls through the dialogue controller with the real rules agent, the EscalatingAgent and
 * the CRM gateway's routing), none fires on plain in-lane calls, and a failed hand-off
 * becomes a spoken apology plus a CRM message with what was already known.
 */
import t from 'tap';
import { EscalationDetector, rmsDb } from '../../src/escalation/triggers.ts';
import { buildScreenPop, popHeaders, repUriFor } from '../../src/escalation/handoff.ts';
import { holdLoop } from '../../src/escalation/hold.ts';
import { harness } from './dialogue-harness.ts';

t.test('detector: every trigger on its own scripted turn', async (t) => {
  const d = (): EscalationDetector => new EscalationDetector();
  t.match(d().check({ text: 'can i talk to a real person please' }), { trigger: 'explicit', topic: 'my rep' });
  t.match(d().check({ text: 'operator' }), { trigger: 'explicit' });
  t.match(d().check({ text: 'representative' }), { trigger: 'explicit' });
  t.match(d().check({ text: 'get me somebody in billing' }), { trigger: 'explicit', topic: 'billing' });
  t.match(d().check({ text: '', dtmf: '0' }), { trigger: 'dtmf-zero' });
  t.match(d().check({ text: 'billing please' }), { trigger: 'routing', topic: 'billing' });
  t.match(d().check({ text: 'returns' }), { trigger: 'routing', topic: 'returns' });
  t.match(d().check({ text: 'connect me with technical support' }), { trigger: 'routing', topic: 'technical' });
  t.match(d().check({ text: 'i need to talk to the sales department' }), { trigger: 'routing', topic: 'sales' });
  t.equal(d().check({ text: 'what is the status of my sales order' }), null, 'a sales order is not the sales team');
  t.equal(d().check({ text: 'check the status of my invoice' }), null, 'a lane request naming an invoice is not routing');
  t.equal(d().check({ text: '', dtmf: '0', expectingDigits: true }), null, 'a 0 while a number was asked for is an answer');
  t.equal(d().check({ text: '', dtmf: '12345' }), null);
  t.match(d().check({ text: 'i want a better price on the valves' }), { trigger: 'always-human', category: 'price_negotiation' });
  t.match(d().check({ text: 'we can only do this on net sixty payment terms' }), { trigger: 'always-human', category: 'price_negotiation' });
  t.match(d().check({ text: 'i want to make a complaint about the last delivery' }), { trigger: 'always-human', category: 'complaint', topic: 'customer service' });
  t.match(d().check({ text: 'you double charged us on the last invoice' }), { trigger: 'always-human', category: 'financial_dispute', topic: 'billing' });
  t.match(d().check({ text: 'i need the one with the brass fitting that goes on the end of the hose' }), { trigger: 'complex-part', topic: 'sales' });
  t.match(d().check({ text: 'this is ridiculous you are not listening' }), { trigger: 'frustration' });

  // frustration: one lexical cue alone is not enough; with a raised voice it is
  const f = d();
  t.equal(f.check({ text: 'i need twenty of h x four four one zero', voice: { rmsDb: -30, voicedMs: 2500 } }), null);
  t.equal(f.check({ text: 'where is my order p o one two three', voice: { rmsDb: -29, voicedMs: 2200 } }), null);
  t.equal(d().check({ text: 'come on where is my order' }), null, 'one cue, no prosody: no trigger');
  t.match(f.check({ text: 'come on where is my order', voice: { rmsDb: -20, voicedMs: 1200 } }), { trigger: 'frustration', reason: /dB louder/ });

  // repetition: the third time the same request comes
  const r = d();
  t.equal(r.check({ text: 'i need the blue valve for the boiler' }), null);
  t.equal(r.check({ text: 'the blue valve for my boiler' }), null);
  t.match(r.check({ text: 'i need the blue valve for the boiler' }), { trigger: 'repetition', reason: /3 times/ });

  // tenant switches
  const off = new EscalationDetector({ explicit: false, routing: false, dtmfZero: false, alwaysHuman: [], repetition: 0, frustration: false, complexPart: false });
  for (const text of ['operator', 'billing please', 'i want a better price', 'this is ridiculous you are not listening', 'the one with the brass fitting']) {
    t.equal(off.check({ text }), null, `off: ${text}`);
  }
  t.equal(off.check({ text: '', dtmf: '0' }), null);
  t.match(new EscalationDetector({ alwaysHuman: ['complaint'] }).check({ text: 'i want a discount' }), null);
});

t.test('detector: plain in-lane turns never fire', async (t) => {
  const d = new EscalationDetector();
  const plain = [
    'i need twenty of h x four four one zero', 'same as last time', 'yes', 'no', 'yes please',
    'where is my order p o one two three four five', 'what is the status of my order', 'one two three four five',
    'can you take a message', 'please have someone call me back', 'my name is dana reyes', 'that is all thank you goodbye',
    'i would like to reorder', 'ten cases of the usual', 'check the ship date for that', 'the number is four one five five five five',
  ];
  for (const text of plain) t.equal(d.check({ text, voice: { rmsDb: -30, voicedMs: 1500 } }), null, text);
  t.equal(d.skuNotFound('h x four four one zero'), null, 'a SKU look-up miss for a read-out code is not a described part');
  t.match(d.skuNotFound('the valve with the red handle'), { trigger: 'complex-part' });
});

t.test('helpers: rms, rep URI, hold loop, screen pop headers', async (t) => {
  t.equal(rmsDb(new Int16Array(160)), -100);
  t.ok(Math.abs(rmsDb(new Int16Array(160).fill(3277)) - -20) < 0.1);
  t.equal(repUriFor('sip:{extension}@pbx.example.com;transport=tcp', '2101'), 'sip:2101@pbx.example.com;transport=tcp');
  t.equal(repUriFor('sip:{extension}@pbx', '21<01>'), 'sip:2101@pbx', 'extension cleaned');
  const loop = holdLoop();
  t.equal(loop.length, 24000, '3 s loop');
  const lvl = rmsDb(loop);
  t.ok(lvl > -35 && lvl < -15, `hold audio level ${lvl.toFixed(1)} dBFS`);
  const pop = buildScreenPop(
    { callId: 'c1', from: '+14155550142', tenant: { id: 'northwind', name: 'Northwind' } as never },
    { target: '2101', targetName: 'Maria Chen', targetKind: 'rep', reason: 'caller asked for a person: "agent"\r\nInjected: x', trigger: 'explicit' },
    {
      state: {
        callId: 'c1', tenantId: 'northwind', language: 'en-US', ani: '+14155550142', afterHours: false, lane: 'transfer', slots: {},
        caller: { name: 'Dana Reyes', phone: '+14155550142', contactId: 'CON-1' }, account: { id: 'ACC-10042', name: 'Acme Plumbing Supply', number: '10042' },
        order: { placed: [], pending: { lines: [{ sku: 'HX-4410', qty: 20 }] } }, messages: [], transcript: [], engine: 'rules',
      },
      transcript: [{ role: 'agent', text: 'Hi Dana', at: 1 }, { role: 'caller', text: 'agent', at: 2 }],
    },
  );
  t.match(pop, { callId: 'c1', status: 'ringing', trigger: 'explicit', target: { name: 'Maria Chen', extension: '2101' }, caller: { name: 'Dana Reyes' }, account: { id: 'ACC-10042' } });
  t.notMatch(pop.reason, /[\r\n]/, 'reason is one line');
  t.match(pop.summary, /^Dana Reyes \(Acme Plumbing Supply #10042\): caller asked for a person.*reorder in progress: 20 x HX-4410/);
  const h = popHeaders(pop, `http://127.0.0.1:8088/pops/${pop.id}`);
  t.equal(h['X-Screen-Pop-Id'], pop.id);
  t.equal(h['X-Screen-Pop-Url'], `http://127.0.0.1:8088/pops/${pop.id}`);
  t.equal(h['X-Account-Id'], 'ACC-10042');
  for (const v of Object.values(h)) t.notMatch(v, /[\r\n]/);

  // Privacy: id — the rep never sees the withheld number, even when the CRM found the caller by it
  const hidden = buildScreenPop(
    { callId: 'c2', from: 'anonymous', privacy: true, tenant: { id: 'northwind', name: 'Northwind' } as never },
    { target: '2101', reason: 'caller asked for a person' },
    {
      state: {
        callId: 'c2', tenantId: 'northwind', language: 'en-US', ani: '+14155550142', afterHours: false, lane: 'transfer', slots: {},
        caller: { name: 'Dana Reyes', phone: '+14155550142' }, order: { placed: [] }, messages: [], transcript: [], engine: 'rules',
      },
      transcript: [],
    },
  );
  t.equal(hidden.caller.phone, 'anonymous');
  t.notMatch(JSON.stringify(hidden), /4155550142/, 'the number appears nowhere in the pop');
});

const scripted: Array<{ name: string; turns: string[]; trigger: string; target: string; dtmf?: boolean }> = [
  { name: 'routing lane: billing', turns: ['billing please'], trigger: 'routing', target: '2200' },
  { name: 'routing lane: returns', turns: ['i need the returns department'], trigger: 'routing', target: '2300' },
  { name: 'routing lane: my rep', turns: ['my rep please'], trigger: 'explicit', target: '2101' },
  { name: 'routing lane: technical support', turns: ['connect me with technical support'], trigger: 'routing', target: '2400' },
  { name: 'explicit request', turns: ['i want to speak to a human'], trigger: 'explicit', target: '2101' },
  { name: 'DTMF 0', turns: [], dtmf: true, trigger: 'dtmf-zero', target: '2101' },
  { name: 'third repetition', turns: ['i need the blue valve for the boiler', 'the blue valve for my boiler', 'i need the blue valve for the boiler'], trigger: 'repetition', target: '2101' },
  { name: 'frustration', turns: ['this is ridiculous, you are not listening to me'], trigger: 'frustration', target: '2101' },
  { name: 'complex part', turns: ['i need the one with the brass fitting for the hose'], trigger: 'complex-part', target: '2100' },
  { name: 'always-human: price negotiation', turns: ['i want a better price on my order'], trigger: 'always-human', target: '2101' },
  { name: 'always-human: complaint', turns: ['i want to make a complaint'], trigger: 'always-human', target: '2000' },
  { name: 'always-human: financial dispute', turns: ['you overcharged us on the last invoice'], trigger: 'always-human', target: '2200' },
];

t.test('scripted calls: each trigger hands off with the handshake, routed by the CRM', async (t) => {
  for (const c of scripted) {
    await t.test(c.name, async (t) => {
      const h = await harness({ controller: { dtmfTimeoutMs: 50 } });
      t.teardown(() => h.close());
      await h.start();
      h.take();
      h.playOut();
      if (c.dtmf) {
        h.media.emit('dtmf', { digit: '0', durationMs: 100 });
        await h.settle();
      }
      for (const turn of c.turns) {
        await h.say(turn);
        h.playOut();
        await h.settle();
      }
      t.match(h.take(), /I am going to transfer you to .* who can help with that\. Hold on for just a moment\./);
      h.playOut();
      await h.settle();
      t.equal(h.transfers.length, 1, 'one transfer');
      t.match(h.transfers[0], { trigger: c.trigger, target: c.target });
      t.ok(h.transfers[0]!.reason.length > 5, `reason: ${h.transfers[0]!.reason}`);
      t.equal(h.dialogue.state, 'ended');
    });
  }
});

t.test('scripted calls: no trigger on plain in-lane calls', async (t) => {
  const h = await harness();
  t.teardown(() => h.close());
  await h.start();
  h.playOut();
  for (const turn of ['i need twenty of h x four four one zero', 'yes', 'where is my order p o one two three four five']) {
    await h.say(turn);
    h.playOut();
    await h.settle();
  }
  const said = h.take();
  t.match(said, /Your order is booked/);
  t.match(said, /tracking number is/);
  t.equal(h.transfers.length, 0, 'no transfer');
  t.notMatch(said, /transfer you/);
});

t.test('LLM-style transfer from the inner agent keeps its trigger; the rules agent giving up is "agent"', async (t) => {
  const h = await harness();
  t.teardown(() => h.close());
  await h.start();
  h.playOut();
  for (const turn of ['blah', 'flim flam', 'zorp']) {
    await h.say(turn);
    h.playOut();
    await h.settle();
  }
  t.equal(h.transfers.length, 1);
  t.match(h.transfers[0], { trigger: 'agent', target: '2101', targetName: 'Maria Chen' });
});

t.test('hand-off fails (rep busy): apology, message with identity + reason, the call goes on', async (t) => {
  const h = await harness({ transferOutcome: () => ({ ok: false, why: 'busy', status: 486 }) });
  t.teardown(() => h.close());
  await h.start();
  h.playOut();
  await h.say('let me talk to my rep');
  h.playOut();
  await h.settle();
  const said = h.take();
  t.match(said, /I am going to transfer you to Maria Chen/);
  t.match(said, /Maria Chen is not available right now\. I've taken a message, and they will call you back at/);
  t.match(said, /Is there anything else I can help you with\?/);
  t.equal(h.cases.length, 1, 'one message');
  t.match(h.cases[0], { kind: 'handoff', callerName: 'Dana Reyes', callbackNumber: '14155550142', accountId: 'ACC-10042', reason: /caller asked for a person.*transfer to Maria Chen failed: busy \(486\)/ });
  t.match(h.cases[0]!.transcript, /caller: let me talk to my rep/);
  h.playOut();
  t.not(h.dialogue.state, 'ended', 'the agent has the caller back');
  await h.say('where is my order p o one two three four five');
  t.match(h.take(), /tracking number is/);
});
