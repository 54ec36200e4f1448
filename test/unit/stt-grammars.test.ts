/**
 * Per-state recognition: the state grammars (JSGF / state LM) built from the tenant
 * vocabulary, the words → slot helpers, and real audio — espeak-ng voices the recogniser was
 * never tuned on and flite voices, at 8 kHz through G.711 µ-law — where the state grammar
 * returns the right SKU / quantity / PO / yes-no / escape and the open model does not.
 * (Synthesis and decoding are deterministic, so the cases are stable; the benchmark
 * `npm run bench -- stt-grammars` measures the same over the whole corpus.)
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrmErpStore } from '../../src/crm-erp/store.ts';
import { PocketsphinxStt, STATE_MODEL_DEFAULTS } from '../../src/stt/pocketsphinx.ts';
import {
  ESCAPE_PHRASES, GRAMMAR_STATES, codeFromWords, codeNode, numbersInWords, pruneGrammar, sampleSentences, stateGrammar, toJsgf,
} from '../../src/stt/grammar.ts';
import { buildStateModel, defaultModelPaths } from '../../src/stt/model.ts';
import type { Expectation, Vocabulary } from '../../src/stt/types.ts';
import { ESPEAK_VOICES, FLITE_VOICES, phone, speak, type CallerVoice } from '../bench/stt-grammars/audio.ts';
import { slotOf } from '../bench/stt-grammars/corpus.ts';
import { extractSkuCandidates } from '../../src/agent/text.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'stt-grammars-test-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
const store = new CrmErpStore();
// the open model depends on the whole vocabulary: the audio cases below were picked with this one
const vocab: Vocabulary = { ...store.vocabulary(), poNumbers: ['PO12345', 'EBS-2291'] };
const withNames: Vocabulary = { ...vocab, names: ['Dana Reyes'] };
store.close();

t.test('numbers in words: read as said, never summed', async (t) => {
  t.same(numbersInWords('a hundred and twenty cases'), [120]);
  t.same(numbersInWords('twenty five'), [25]);
  t.same(numbersInWords('make it two thousand'), [2000]);
  t.same(numbersInWords('three hundred twelve'), [312]);
  t.same(numbersInWords('a dozen'), [12]);
  t.same(numbersInWords('twenty forty boxes'), [20, 40], 'two numbers stay two');
  t.same(numbersInWords('five ten foot lengths'), [5, 10]);
});

t.test('codes from words: letters spelled or NATO, digits single or paired', async (t) => {
  t.equal(codeFromWords('hotel x-ray forty four one zero'), 'HX-4410');
  t.equal(codeFromWords('h x forty four ten'), 'HX-4410');
  t.equal(codeFromWords('h x four four one oh'), 'HX-4410');
  t.equal(codeFromWords('e b s twenty two ninety one'), 'EBS-2291');
  t.equal(codeFromWords('echo bravo sierra two two nine one'), 'EBS-2291');
  t.equal(codeFromWords('part number c p fifty ten'), 'CP-5010');
  t.equal(codeFromWords('twenty of p x twelve fifty'), 'PX-1250', 'a quantity before the code is not part of it');
  t.equal(codeFromWords('my p o number is five five zero two one'), '55021');
  t.equal(codeFromWords('yes'), undefined);
});

t.test('state grammars: forms, history weights, escape in every state', async (t) => {
  const hx = toJsgf({ name: 'x', rules: { top: codeNode('HX-4410')! } });
  t.match(hx, /\( h \| hotel \) \( x \| x-ray \) \[ dash \] \( \( four four \| forty four \) \( one zero \| one oh \| ten \) \)/);
  for (const e of GRAMMAR_STATES) {
    const g = stateGrammar(e, vocab, [{ sku: 'CP-5010' }])!;
    t.ok(g, `${e} has a grammar`);
    const jsgf = toJsgf(g);
    t.match(jsgf, /^#JSGF V1\.0;/);
    t.match(jsgf, /public <top> = .*<escape>/, `${e}: the escape rule is an answer`);
    for (const p of ['agent', 'representative', 'a person', 'operator', 'help', 'no', 'cancel']) t.ok(ESCAPE_PHRASES.includes(p), p);
  }
  t.equal(stateGrammar('open', vocab), undefined);
  t.equal(stateGrammar('message', vocab), undefined);
  const sku = toJsgf(stateGrammar('sku', vocab, [{ sku: 'CP-5010' }])!);
  t.match(sku, /\/5\/ \( \( c \| charlie \) \( p \| papa \)/, 'the history SKU weighs 5');
  t.match(sku, /\/1\/ \( \( h \| hotel \)/, 'the others 1');
  t.match(toJsgf(stateGrammar('po', vocab)!), /\( e \| echo \) \( b \| bravo \) \( s \| sierra \)/, 'lettered PO numbers');
  t.match(toJsgf(stateGrammar('department', withNames)!), /dana reyes/, 'people by name');
  // the checks: a yes, a no, or the correction — a part (history first) or a quantity
  const part = toJsgf(stateGrammar('check_part', vocab, [{ sku: 'CP-5010' }])!);
  t.match(part, /\/3\/ \( yes \| yeah/, 'check_part: the yes answers');
  t.match(part, /no that is not what i asked for/, 'check_part: "not what I asked for" is a no');
  t.match(part, /\[ \( no \| nope \| no i said .*\] .*<code>/, 'check_part: "no, <part>"');
  t.match(part, /<code> = \( .*\/5\/ \( \( c \| charlie \) \( p \| papa \)/, 'check_part: the history SKU weighs 5');
  const qty = toJsgf(stateGrammar('check_qty', vocab)!);
  t.match(qty, /no don't place it/, 'check_qty (also the read-back): "no, don\'t place it"');
  t.match(qty, /<number> \[ <unit>/, 'check_qty: "no, <quantity>"');
  t.notMatch(qty, /<code>/, 'check_qty: no part numbers');
  // pruning words the dictionary lacks
  const pruned = pruneGrammar({ name: 'p', rules: { top: { alt: ['yes', 'zzyzx', { seq: ['no', { opt: 'qqq' }] }] } } }, (w) => w !== 'zzyzx' && w !== 'qqq');
  t.equal(toJsgf(pruned).split('\n')[4], 'public <top> = ( yes | no );');
  // the state LM's corpus is sampled from the same grammar, deterministically
  const s1 = sampleSentences(stateGrammar('quantity')!, 50);
  t.same(s1, sampleSentences(stateGrammar('quantity')!, 50));
  t.ok(s1.every((s) => numbersInWords(s).length === 1 || ESCAPE_PHRASES.includes(s) || /\b(agent|operator|person)\b/.test(s)), 'quantity sentences hold one number');
});

t.test('state models on disk: JSGF and LM, cached by content', async (t) => {
  const paths = { ...defaultModelPaths(), cacheDir };
  const j = (await buildStateModel('quantity', vocab, [], 'jsgf', paths))!;
  t.ok(j.jsgf && j.lm === '' && j.state === 'quantity');
  t.match(readFileSync(j.jsgf!, 'utf8'), /grammar quantity;/);
  const dict = readFileSync(j.dict, 'utf8');
  t.match(dict, /^hundred /m);
  t.match(dict, /^operator /m);
  t.same(await buildStateModel('quantity', vocab, [], 'jsgf', paths), j, 'second build is a cache hit');
  const l = (await buildStateModel('po', vocab, [], 'lm', paths))!;
  t.ok(l.lm && !l.jsgf);
  t.equal(await buildStateModel('open', vocab, [], 'jsgf', paths), undefined);
  t.same(STATE_MODEL_DEFAULTS, { yesno: 'jsgf', check_part: 'jsgf', check_qty: 'jsgf', quantity: 'jsgf', sku: 'jsgf', department: 'jsgf', po: 'lm', digits: 'off' });
});

const stt = new PocketsphinxStt({ cacheDir });
async function decode(pcm: Int16Array, expect: Expectation) {
  const s = stt.createStream({ sampleRate: 8000, vocabulary: vocab, expect });
  for (let i = 0; i < pcm.length; i += 160) s.push(pcm.subarray(i, i + 160));
  return s.end();
}
const [en, f3] = [ESPEAK_VOICES[0]!, ESPEAK_VOICES[1]!];
const slt = FLITE_VOICES[1]!;

/** [voice, state, what the caller says, the slot the state must get] — cases where the open model gets it wrong. */
const CASES: Array<[CallerVoice, Expectation, string, string]> = [
  [f3, 'sku', 'H X four four one zero.', 'HX4410'],
  [f3, 'sku', 'C P fifty ten.', 'CP5010'],
  [en, 'quantity', 'Twenty five.', '25'],
  [slt, 'quantity', 'Fifteen.', '15'],
  [en, 'po', 'P O one two three four five.', '12345'],
  [slt, 'po', 'E B S twenty-two ninety-one.', 'EBS2291'],
  [en, 'yesno', 'Nope.', 'no'],
  [slt, 'yesno', 'Agent.', 'escape'],
];

t.test('real audio: the state grammar gets the slot the open model misses', async (t) => {
  await stt.prepare(vocab);
  let stateOk = 0, openOk = 0;
  for (const [voice, state, say, slot] of CASES) {
    const pcm = phone(await speak(say, voice));
    const open = await decode(pcm, 'open');
    const st = await decode(pcm, state);
    t.comment(`${voice.name} ${state} "${say}": open "${open.text}" → ${state} "${st.text}" (${st.grammar}, confidence ${st.confidence.toFixed(2)}, ${st.ms.toFixed(0)} ms)`);
    t.equal(open.grammar, 'open');
    if (slotOf(state, open.text, slot) === slot) openOk++;
    if (slotOf(state, st.text, slot) === slot) {
      stateOk++;
      t.equal(st.grammar, state, 'answered by the state model');
    }
    t.ok(st.confidence > 0 && st.confidence <= 1);
    if (open.text !== st.text) t.ok(st.alternatives?.some((a) => a.text === open.text), 'the open transcript is among the alternatives');
  }
  // pocketsphinx is not bit-for-bit repeatable from one process to the next on these
  // voices, so the bound is on the set: measured 7–8 of 8 with the grammar, 2–4 open
  t.comment(`slot right: state grammar ${stateOk}/${CASES.length}, open model ${openOk}/${CASES.length}`);
  t.ok(stateOk >= 6, `state grammar ${stateOk}/${CASES.length} ≥ 6`);
  t.ok(stateOk - openOk >= 3, `state grammar beats the open model by ≥ 3 (${stateOk} vs ${openOk})`);
});

t.test('real audio: an answer outside the grammar comes back from the open model', async (t) => {
  const r = await decode(phone(await speak('Where is my order?', slt)), 'sku');
  t.equal(r.text, 'where is my order');
  t.equal(r.grammar, 'open', 'not forced onto a part number');
  t.ok(r.inDomain);
});

t.test('real audio: confidence and n-best', async (t) => {
  const yes = await decode(phone(await speak('Yes, that is correct.', slt)), 'open');
  t.equal(yes.text, 'yes that is correct');
  t.ok(yes.confidence >= 0.5, `a clean in-domain answer is confident (${yes.confidence.toFixed(2)})`);
  t.ok((yes.alternatives?.length ?? 0) >= 1, 'n-best alternatives');
  for (const a of yes.alternatives ?? []) {
    t.not(a.text, yes.text);
    t.ok(a.confidence <= yes.confidence, 'alternatives rank below the best');
  }
  const off = await decode(phone(await speak('My grandmother grows tomatoes in her garden.', slt)), 'open');
  t.ok(off.confidence < yes.confidence / 2, `off-topic speech has a low confidence (${off.confidence.toFixed(2)})`);
});

/** Corrections at a check, said by espeak-ng voices: [voice, check state, what is said, the value the agent must read]. */
const CHECKS: Array<[CallerVoice, Expectation, string, string]> = [
  [en, 'check_qty', 'No, forty.', '40'],
  [f3, 'check_qty', 'No, twenty.', '20'],
  [en, 'check_part', 'No, C P five zero one zero.', 'CP-5010'],
  [f3, 'check_part', 'No, H X forty-four ten.', 'HX-4410'],
  [ESPEAK_VOICES[2]!, 'check_part', 'No, C V thirty-one ten.', 'CV-3110'],
  [f3, 'check_part', 'Yes.', 'yes'],
];

t.test('real audio: a check grammar keeps the correction the yes/no grammar loses', async (t) => {
  const history = [{ sku: 'CP-5010' }, { sku: 'HX-4410' }];
  const value = (state: Expectation, text: string): string | undefined => {
    if (/^(yes|yeah|yep|yup)\b/.test(text)) return 'yes';
    if (state === 'check_qty') return String(numbersInWords(text)[0] ?? '');
    return extractSkuCandidates(text)[0]?.sku;
  };
  let checkOk = 0, yesnoOk = 0;
  for (const [voice, state, say, want] of CHECKS) {
    const pcm = phone(await speak(say, voice));
    const yn = await stt.recognize(pcm, 8000, vocab, { expect: 'yesno', history });
    const ck = await stt.recognize(pcm, 8000, vocab, { expect: state, history });
    t.comment(`${voice.name} "${say}": yesno "${yn.text}" → ${state} "${ck.text}" (${ck.grammar})`);
    if (value(state, yn.text) === want) yesnoOk++;
    if (value(state, ck.text) === want) checkOk++;
  }
  t.comment(`check grammar ${checkOk}/${CHECKS.length}, yes/no grammar ${yesnoOk}/${CHECKS.length}`);
  t.ok(checkOk >= yesnoOk + 3, `the check grammars keep more corrections (${checkOk} vs ${yesnoOk})`);
});

/** Reorder requests said by espeak-ng voices, the part the caller meant. */
const ORDERS: Array<[CallerVoice, string, string]> = [
  [en, 'I need twenty of H X four four one zero.', 'HX-4410'],
  [en, 'Send me forty boxes of P F forty-four twenty.', 'PF-4420'],
  [f3, 'I need twenty of H X four four one zero.', 'HX-4410'],
  [f3, 'Can I get twelve of C V thirty-one ten?', 'CV-3110'],
  [ESPEAK_VOICES[2]!, 'I need five ten-foot lengths of C P fifty ten.', 'CP-5010'],
  [ESPEAK_VOICES[3]!, 'Can I get twelve of C V thirty-one ten?', 'CV-3110'],
];

t.test('real audio: an open turn that sounds like a reorder gets an order reading naming catalogue parts', async (t) => {
  const history = [{ sku: 'HX-4410' }, { sku: 'PF-4420' }, { sku: 'CP-5010' }, { sku: 'CV-3110' }];
  const skus = new Set((vocab.skus ?? []).map((s) => s.sku));
  let openOk = 0, readingOk = 0;
  for (const [voice, say, sku] of ORDERS) {
    const pcm = phone(await speak(say, voice));
    const r = await stt.recognize(pcm, 8000, vocab, { expect: 'open', history });
    const reading = r.alternatives?.find((a) => a.grammar === 'order');
    const openSku = extractSkuCandidates(r.text)[0]?.sku;
    const readSku = reading ? extractSkuCandidates(reading.text)[0]?.sku : undefined;
    t.comment(`${voice.name} "${say}": open "${r.text}" → order reading "${reading?.text ?? '—'}"`);
    t.equal(r.grammar, 'open', 'the transcript stays the open model\'s');
    if (readSku) t.ok(skus.has(readSku), `the reading names a catalogue part (${readSku})`);
    if (openSku === sku) openOk++;
    if ((readSku ?? openSku) === sku) readingOk++;
  }
  t.comment(`part right: open model ${openOk}/${ORDERS.length}, with the order reading ${readingOk}/${ORDERS.length}`);
  t.ok(readingOk >= openOk + 2, `the order reading finds more parts (${readingOk} vs ${openOk})`);
  // not a reorder: no second decode
  const status = await stt.recognize(phone(await speak('Where is my order?', en)), 8000, vocab, { expect: 'open', history });
  t.notOk(status.alternatives?.some((a) => a.grammar === 'order') && /where/.test(status.text), 'a status request gets no order reading');
});
