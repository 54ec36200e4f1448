/**
 * The outcome benchmark's harness (test/bench/outcomes): the judge reads a real CRM/ERP
 * SQLite file and the reps' phone, and the scripted caller answers read-backs like a person.
 * A whole benchmark call takes longer than a smoke test may (≈ 45 s with a server), so this
 * drives the judge with rows the CRM/ERP store writes itself and an INVITE over UDP.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CrmErpStore } from '../../src/crm-erp/store.ts';
import { SipMessage, newBranch } from '../../src/sip-edge/message.ts';
import { Judge } from '../bench/outcomes/judge.ts';
import { LANES, newCallerState, numberWords, quantitiesIn, respond, type Intent } from '../bench/outcomes/lanes.ts';
import { RepPhones } from '../bench/outcomes/rep.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'bench-outcomes-unit-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const want: Intent = { kind: 'order', sku: 'PF-4420', qty: 40, spoken: ['P F forty-four twenty'], say: ['Send me forty boxes of P F forty-four twenty.'] };

t.test('judge: the order row of the call decides; other lines are a wrong order', async (t) => {
  const db = path.join(tmp, 'crm.sqlite');
  const store = new CrmErpStore({ db });
  const reps = await RepPhones.start(0);
  t.teardown(() => {
    store.close();
    reps.close();
  });
  const judge = new Judge(db, reps);
  t.same((await judge.check('call-a', want, [])).success, false, 'no order yet');
  store.placeOrder({ account_id: 'ACC-10042', lines: [{ sku: 'PF-4420', qty: 40 }], idempotency_key: 'call-a:order:1' });
  const ok = await judge.check('call-a', want, []);
  t.ok(ok.success && !ok.wrongOrder, `40 × PF-4420 booked on call-a is a success (${ok.detail})`);
  // another call's order does not count for call-b; call-b's 60 is a wrong order
  t.notOk((await judge.check('call-b', want, [])).success, 'call-a\'s order is not call-b\'s');
  store.placeOrder({ account_id: 'ACC-10042', lines: [{ sku: 'PF-4420', qty: 60 }], idempotency_key: 'call-b:order:1' });
  const bad = await judge.check('call-b', want, []);
  t.ok(bad.wrongOrder && !bad.success, `60 × PF-4420 when 40 were wanted is a wrong order (${bad.detail})`);
  // any order in a lane that wants none is a wrong order too
  const status: Intent = { kind: 'status', po: '12345', keyed: true, expect: /ship/, say: ['Where is my order?'] };
  t.ok((await judge.check('call-b', status, [])).wrongOrder, 'an order on a status call is a wrong order');
  t.ok((await judge.check('call-c', status, ['purchase order is shipped'])).success, 'the status heard by the caller');
});

t.test('judge: a hand-off needs the CRM activity and the rep phone INVITE with the same pop id', async (t) => {
  const db = path.join(tmp, 'crm2.sqlite');
  const store = new CrmErpStore({ db });
  const reps = await RepPhones.start(0);
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    store.close();
    reps.close();
    sock.close();
  });
  const judge = new Judge(db, reps);
  const routing: Intent = { kind: 'handoff', extensions: ['2200', '2201'], say: ['Billing, please.'] };
  store.logActivity({ account_id: 'ACC-10042', kind: 'handoff', call_id: 'call-h', summary: 'billing', target: 'Accounts Receivable (2200)', idempotency_key: 'handoff:pop-1' });
  t.notOk((await judge.check('call-h', routing, [])).success, 'an activity alone is not a hand-off');
  const answered = new Promise<string>((r) => sock.once('message', (b) => r(b.toString())));
  const inv = SipMessage.request('INVITE', `sip:2200@127.0.0.1:${reps.port}`, [
    { name: 'Via', value: `SIP/2.0/UDP 127.0.0.1:${sock.address().port};branch=${newBranch()}` },
    { name: 'From', value: '<sip:agent@127.0.0.1>;tag=1' }, { name: 'To', value: `<sip:2200@127.0.0.1>` },
    { name: 'Call-ID', value: 'rep-leg-1' }, { name: 'CSeq', value: '1 INVITE' }, { name: 'X-Screen-Pop-Id', value: 'pop-1' },
    { name: 'Content-Length', value: '0' },
  ]);
  sock.send(inv.toBuffer(), reps.port, '127.0.0.1');
  t.match(await answered, /^SIP\/2.0 200 OK/, 'the rep phone answers');
  const v = await judge.check('call-h', routing, []);
  t.ok(v.success && v.handedOff, `handed off to billing (${v.detail})`);
  const other: Intent = { kind: 'handoff', extensions: ['2300'], say: ['Returns.'] };
  t.notOk((await judge.check('call-h', other, [])).success, 'the wrong department is not a success');
});

t.test('caller: "yes" to a correct read-back, "no, forty" to a wrong one, keys the PO when asked', async (t) => {
  t.same(quantitiesIn("That's 48 of PF-4420, 3/4 inch PVC schedule 40 elbow, available to ship Tuesday, December 8th. Shall I place the order?"), [48]);
  const st = newCallerState(want);
  t.same(respond(st, 'How can I help you today?', 0), { say: want.say[0] });
  t.same(respond(st, "That's 48 of PF-4420, 3/4 inch PVC elbow. Shall I place the order?", 1), { say: `No, ${numberWords(40)}.` });
  t.same(respond(st, "That's 40 of PF-4420, 3/4 inch PVC elbow. Shall I place the order?", 1), { say: 'Yes.' });
  t.same(respond(st, "That's 40 of PF-4410, 1/2 inch PVC elbow. Shall I place the order?", 1), { say: 'No, P F forty-four twenty.' }, 'a wrong part is corrected');
  t.same(respond(newCallerState(want), 'How many of PF-4410, 1/2 inch PVC elbow, would you like?', 2), { say: 'No, I said P F forty-four twenty.' }, 'asked how many of the wrong part, the caller corrects the part');
  t.same(respond(newCallerState(want), 'How many of PF-4420 would you like?', 2), { say: 'Forty.' });
  // the agent's confirmations one slot at a time, with the part spelled out
  const hx: Intent = { kind: 'order', sku: 'HX-4410', qty: 20, spoken: ['H X four four one zero', 'H X forty-four ten'], say: ['I need twenty of H X four four one zero.'] };
  t.same(respond(newCallerState(hx), 'Just to check the part: H X, four four one two, half inch brass ball valve. Is that right?', 1), { say: 'No, H X forty-four ten.' });
  t.same(respond(newCallerState(hx), 'Just to check the part: H X, four four one zero, half inch brass ball valve. Is that right?', 1), { say: 'Yes.' });
  t.same(respond(newCallerState(hx), 'Is the part H X, four four one two? Please say yes or no.', 1), { say: 'No, H X forty-four ten.' });
  t.same(respond(newCallerState(hx), 'And the quantity: was that 20, two zero?', 1), { say: 'Yes.' });
  t.same(respond(newCallerState(hx), 'And the quantity: was that 60, six zero?', 1), { say: 'No, twenty.' });
  t.same(respond(newCallerState(hx), "Purchase order P O, one two three four five, is shipped. Is there anything else?", 4).hasOwnProperty('say'), true);
  const rej = newCallerState({ ...hx, kind: 'reject' });
  t.same(respond(rej, 'Just to check the part: H X, four four one zero, half inch brass ball valve. Is that right?', 1), { say: 'Yes.' }, 'the reject lane confirms the part');
  t.notOk(rej.rejected);
  t.same(respond(rej, "That's 20 of HX-4410, half inch brass ball valve. Shall I place the order?", 2), { say: "No, don't place it." });
  t.ok(rej.rejected, 'and rejects the order read-back');
  const keyed = newCallerState(LANES.find((l) => l.id === 'status-keyed')!.intent(0));
  respond(keyed, 'How can I help you today?', 0);
  t.same(respond(keyed, "Sure. What's the PO number?", 1), { dtmf: '12345#' });
  const spoken = newCallerState(LANES.find((l) => l.id === 'status-spoken')!.intent(0));
  respond(spoken, 'How can I help you today?', 0);
  t.same(respond(spoken, "Sure. What's the PO number?", 1), { say: 'P O one two three four five.' });
  t.same(respond(spoken, 'Please key in the PO number and press pound.', 2), { dtmf: '12345#' });
});
