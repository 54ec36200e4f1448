/**
 * Per-state recognition grammars of the local recogniser. When the agent asked for
 * something specific (a yes/no, a quantity, a part number, a PO, a department, digits), the
 * answer is decoded against a grammar for that state instead of the open-domain LM:
 *
 * - 'sku': the tenant's part numbers the ways people say them — letters spelled or in the
 *   NATO alphabet ("h x", "hotel x-ray"), digits one by one ("four four one zero", "… oh"),
 *   in pairs ("forty four ten") or mixed ("forty four one zero"); the account's history
 *   SKUs weighted first; optionally with a quantity and lead-in ("twenty of …").
 * - 'quantity': cardinals 1–9999 as spoken ("twenty five", "a hundred and twenty",
 *   "two thousand"), "a dozen", with units ("cases", "boxes of"). Words only: number
 *   words are never summed here.
 * - 'po': PO and order numbers, lettered (EBS-2291 → "e b s two two nine one",
 *   "echo bravo sierra twenty two ninety one") or digits; known ones weighted first.
 * - 'yesno': "yes", "yep", "yeah", "correct", "that's right", "no", "nope", "that's wrong", ….
 * - 'check_part': the answer to a check of one part ("Just to check the part: H X, four four one
 *   zero. Is that right?"): a yes or no as in 'yesno', or the part corrected ("no, H X forty-four
 *   ten", "no, I said C P five zero one zero", "it's …"), the SKUs as in 'sku'.
 * - 'check_qty': the answer to a check of a quantity or of the order read-back: a yes or no, or
 *   the quantity corrected ("no, forty", "no, I said twelve", "make it sixty boxes").
 * - 'department': departments and people (reps, contacts) with "transfer me to …" lead-ins.
 * - 'digits': digit strings (account, phone numbers).
 * - 'order': a whole reorder request — lead-in ("i need", "i'd like to reorder", "send me",
 *   "can i get"…), an optional quantity and unit, and a part number as in 'sku'. Not a
 *   question's state: the open question's second reading when its transcript sounds like a
 *   reorder (pocketsphinx.ts).
 *
 * Every grammar also has the escape rule: "agent", "representative", "a person", "operator",
 * "help", "no", "cancel", "talk to a (person)", … so a caller can always get out.
 *
 * One source ({@link Grammar}, a small tree of sequences, weighted alternatives, options and
 * repeats) is written out as JSGF for pocketsphinx's FSG search ({@link toJsgf}) and
 * sampled into a corpus for a state-specific trigram LM ({@link sampleSentences}); which of
 * the two decodes a state is decided by measurement (test/bench/stt-grammars).
 */
import { DIGIT_WORDS, cardinalWords, rng, textWords } from './domain.ts';
import type { Expectation, Vocabulary } from './types.ts';

/** A grammar node: words, a sequence, weighted alternatives, an option, a repeat, a rule. */
export type Node =
  | string
  | { seq: Node[] }
  | { alt: Array<Node | { w: number; n: Node }> }
  | { opt: Node }
  | { rep: Node; max?: number }
  | { ref: string };

export interface Grammar {
  /** name of the state ('sku', …) */
  name: string;
  /** rules by name; `top` is the public one */
  rules: Record<string, Node>;
}

/** Expectations decoded with a grammar (the others use the open-domain model). */
export const GRAMMAR_STATES: readonly Expectation[] = ['yesno', 'check_part', 'check_qty', 'quantity', 'sku', 'po', 'department', 'digits'];

const seq = (...n: Node[]): Node => ({ seq: n });
const alt = (...n: Array<Node | { w: number; n: Node }>): Node => ({ alt: n });
const opt = (n: Node): Node => ({ opt: n });
const ref = (r: string): Node => ({ ref: r });

export const NATO: Readonly<Record<string, string>> = {
  a: 'alpha', b: 'bravo', c: 'charlie', d: 'delta', e: 'echo', f: 'foxtrot', g: 'golf', h: 'hotel', i: 'india',
  j: 'juliet', k: 'kilo', l: 'lima', m: 'mike', n: 'november', o: 'oscar', p: 'papa', q: 'quebec', r: 'romeo',
  s: 'sierra', t: 'tango', u: 'uniform', v: 'victor', w: 'whiskey', x: 'x-ray', y: 'yankee', z: 'zulu',
};
/** NATO word → letter, for normalising a transcript back to a code. */
export const NATO_LETTER: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(NATO).map(([l, w]) => [w, l]));

const TEENS = ['ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** The escape phrases every state grammar keeps, so a caller can always get out. */
export const ESCAPE_PHRASES: readonly string[] = [
  'agent', 'an agent', 'representative', 'a representative', 'operator', 'the operator', 'a person', 'a real person',
  'a human', 'person', 'help', 'help me', 'no', 'cancel', 'cancel that', 'stop', 'start over', 'go back',
  'i want to talk to a person', 'i want to talk to a', 'talk to a person', 'talk to a', 'talk to someone',
  'can i talk to someone', 'i want to speak to an agent', 'speak to a representative', 'let me talk to a person',
  'customer service', 'i don\'t know', 'say that again', 'can you repeat that', 'what', 'sorry',
];

/** Spoken forms of one 1–2 digit chunk of a code ("44" → forty four | four four; "10" → ten | one zero | one oh). */
function chunkNode(d: string): Node {
  const digits = (z: 'zero' | 'oh'): string => [...d].map((c) => (c === '0' ? z : DIGIT_WORDS[Number(c)]!)).join(' ');
  const forms = new Set<string>([digits('zero')]);
  if (d.includes('0')) forms.add(digits('oh'));
  if (d.length === 2) {
    if (d[0] === '0') forms.add(`oh ${DIGIT_WORDS[Number(d[1])]}`);
    else forms.add(cardinalWords(Number(d)));
  }
  const l = [...forms];
  return l.length === 1 ? l[0]! : alt(...l);
}

/** A letter spelled or in the NATO alphabet. */
function letterNode(l: string): Node {
  const n = NATO[l];
  return n ? alt(l, n) : l;
}

/**
 * A code the ways people say it: "HX-4410" → (h | hotel) (x | x-ray) [dash]
 * (forty four | four four) (ten | one zero | one oh). Digits go in pairs when there is an
 * even number of them, else one by one (and 3-digit groups also as "four hundred ten").
 */
export function codeNode(code: string): Node | undefined {
  const m = /^([A-Za-z]*)[-\s]?(\d+)$/.exec(code.trim());
  if (!m) return undefined;
  const letters = [...m[1]!.toLowerCase()].map(letterNode);
  const digits = m[2]!;
  const parts: Node[] = [];
  if (digits.length % 2 === 0) {
    for (let i = 0; i < digits.length; i += 2) parts.push(chunkNode(digits.slice(i, i + 2)));
  } else {
    for (const c of digits) parts.push(chunkNode(c));
  }
  const body: Node = parts.length === 1 ? parts[0]! : seq(...parts);
  return letters.length ? seq(...letters, opt('dash'), body) : body;
}

const DIGIT: Node = alt(...DIGIT_WORDS, 'oh');
const N99: Node = alt(...DIGIT_WORDS.slice(1), ...TEENS, seq(alt(...TENS), opt(alt(...DIGIT_WORDS.slice(1)))));
const N999: Node = alt(ref('n99'), seq(alt('a', ...DIGIT_WORDS.slice(1)), 'hundred', opt(seq(opt('and'), ref('n99')))));
const NUMBER: Node = alt(
  { w: 4, n: ref('n999') },
  seq(alt('a', ref('n99')), 'thousand', opt(seq(opt('and'), ref('n999')))),
  seq(alt('a', 'half a', ...DIGIT_WORDS.slice(2, 6)), 'dozen'),
);
const UNIT: Node = alt('cases', 'case', 'boxes', 'box', 'units', 'pieces', 'each', 'bags', 'bag', 'lengths', 'rolls', 'coils', 'feet', 'of them');

const YES = ['yes', 'yeah', 'yep', 'yup', 'yes please', 'correct', "that's correct", 'that is correct', 'yes that is correct',
  "yes that's correct", "yes that's right", "that's right", 'right', 'sure', 'okay', 'absolutely', 'go ahead',
  'yes go ahead', 'please do', 'sounds good', 'perfect', 'yes place the order', 'place the order', 'affirmative'];
const NO = ['no', 'nope', 'no thanks', 'no thank you', "that's wrong", 'that is wrong', 'no that is wrong', "no that's wrong",
  'wrong', "that's not right", 'that is not right', 'not right', 'incorrect', 'not correct', "that's not correct",
  'no that is not correct', 'negative', 'hold on', 'wait',
  // a check of something the caller never asked for (an out-of-lane request read as a part)
  'no that is not what i asked for', "no that's not what i asked for", 'that is not what i asked for', "that's not what i asked for",
  'not what i asked for', 'no i did not ask for that', "no i didn't ask for that",
  // the order read-back
  "no don't place it", 'no do not place it', "don't place it", 'do not place it', 'no cancel it', 'cancel it'];
/** Lead-ins of a correction ("no, I said …") in the check grammars. */
const CORRECTION = ['no', 'nope', 'no i said', 'i said', 'no it is', "no it's", 'it is', "it's", 'no i need', 'no i want'];
const DEPARTMENTS = ['sales', 'inside sales', 'my sales rep', 'my rep', 'my account manager', 'billing', 'accounting',
  'accounts receivable', 'accounts payable', 'invoicing', 'returns', 'customer service', 'technical support',
  'tech support', 'shipping', 'the warehouse', 'receiving', 'purchasing', 'credit', 'the credit department',
  'a manager', 'the manager', 'someone in sales', 'someone in billing'];

function words(list: readonly string[]): Node {
  return alt(...list);
}

/** The tenant's part numbers as 'code' alternatives, the account's history SKUs weighted ×5. */
function codeAlternatives(vocab: Vocabulary, history: ReadonlyArray<{ sku: string }>): Array<{ w: number; n: Node }> {
  const hist = new Set(history.map((h) => h.sku.toUpperCase()));
  const codes: Array<{ w: number; n: Node }> = [];
  for (const s of vocab.skus ?? []) {
    const n = codeNode(s.sku);
    if (n) codes.push({ w: hist.has(s.sku.toUpperCase()) ? 5 : 1, n });
  }
  return codes;
}

/**
 * Build the grammar of one state from the tenant vocabulary and the account's history
 * (history SKUs and the tenant's known PO numbers are weighted above the rest).
 * Returns undefined for states decoded with the open model ('open', 'message', 'name').
 */
export function stateGrammar(expect: Expectation, vocab: Vocabulary = {}, history: ReadonlyArray<{ sku: string }> = []): Grammar | undefined {
  const rules: Record<string, Node> = {
    escape: words(ESCAPE_PHRASES),
    digit: DIGIT,
    n99: N99,
    n999: N999,
    number: NUMBER,
  };
  const answer = (body: Node): Node => alt({ w: 20, n: body }, { w: 1, n: ref('escape') });
  switch (expect) {
    case 'yesno':
      rules.top = answer(alt({ w: 3, n: words(YES) }, { w: 2, n: words(NO) }));
      break;
    case 'check_part': {
      // a yes, a no, or the part corrected: "no, H X forty-four ten" came back as "no" or, from
      // the yes/no grammar, as its escape "i want to talk to a" (outcome bench, espeak voices)
      const codes = codeAlternatives(vocab, history);
      if (codes.length === 0) return stateGrammar('yesno', vocab, history);
      rules.code = alt(...codes);
      rules.top = answer(alt(
        { w: 3, n: words(YES) }, { w: 2, n: words(NO) },
        { w: 3, n: seq(opt(words(CORRECTION)), opt(alt('the part is', 'part number', 'part')), ref('code'), opt('please')) },
      ));
      break;
    }
    case 'check_qty':
      // a yes, a no, or the quantity corrected ("no, forty" came back as "no" from the yes/no
      // grammar). The correction needs its lead ("no", "I said", "make it"): with a bare number
      // in the grammar a noisy "Yep." came back as "one" or "nine"
      rules.unit = UNIT;
      rules.top = answer(alt(
        { w: 3, n: words(YES) }, { w: 2, n: words(NO) },
        { w: 3, n: seq(alt(...CORRECTION, 'make it', 'no make it', 'i need'), ref('number'), opt(seq(ref('unit'), opt('please')))) },
      ));
      break;
    case 'quantity':
      rules.unit = UNIT;
      rules.top = answer(seq(
        opt(alt('i need', "i'd like", 'i would like', 'we need', 'make it', "let's do", 'give me', 'send me', 'i want', 'just', 'about')),
        ref('number'),
        opt(seq(ref('unit'), opt('please'))),
      ));
      break;
    case 'sku': {
      const hist = new Set(history.map((h) => h.sku.toUpperCase()));
      const codes = codeAlternatives(vocab, history);
      const descs: Array<{ w: number; n: Node }> = [];
      for (const s of vocab.skus ?? []) {
        const kw = textWords(s.keywords ?? '').join(' ');
        if (kw) descs.push({ w: hist.has(s.sku.toUpperCase()) ? 5 : 1, n: seq(opt('the'), kw) });
      }
      if (codes.length === 0) return undefined;
      rules.code = alt(...codes);
      rules.unit = UNIT;
      const body: Node = seq(
        opt(alt(seq(ref('number'), opt(ref('unit')), opt('of')), 'part number', 'part', 'item', "it's", 'it is', 'the part is', 'i need', 'i need part')),
        alt({ w: 4, n: ref('code') }, ...(descs.length ? [{ w: 1, n: alt(...descs) }] : [])),
      );
      rules.top = answer(body);
      break;
    }
    case 'order': {
      const codes = codeAlternatives(vocab, history);
      if (codes.length === 0) return undefined;
      rules.code = alt(...codes);
      rules.unit = UNIT;
      rules.top = answer(seq(
        opt(alt('i need', 'we need', "i'd like", 'i would like', "i'd like to order", 'i would like to order', "i'd like to reorder",
          'i would like to reorder', 'i want', 'i want to order', 'i want to reorder', 'i need to reorder', 'reorder', 'send me',
          'can i get', 'can you send me', 'can i order', 'please send', 'give me', 'order')),
        opt(seq(ref('number'), opt(ref('unit')), opt('of'))),
        opt(alt('the', 'part', 'part number')),
        ref('code'),
        opt('please'),
      ));
      break;
    }
    case 'po': {
      const known: Array<{ w: number; n: Node }> = [];
      for (const p of vocab.poNumbers ?? []) {
        const n = codeNode(p);
        if (n) known.push({ w: 1, n });
      }
      const letter = alt(...'abcdefghijklmnopqrstuvwxyz'.split('').map(letterNode));
      rules.letter = letter;
      // digits one by one are how PO numbers are mostly read; pairs ("twenty two ninety one") less
      rules.numword = alt({ w: 12, n: ref('digit') }, { w: 1, n: alt(...TEENS) }, { w: 2, n: alt(...TENS) });
      const generic = seq({ rep: ref('letter'), max: 4 } as Node, opt('dash'), { rep: ref('numword'), max: 12 } as Node);
      const generic2 = alt(seq(ref('letter'), opt(generic)), { rep: ref('numword'), max: 12 } as Node);
      rules.po = known.length ? alt({ w: 3, n: alt(...known) }, { w: 2, n: generic2 }) : generic2;
      rules.top = answer(seq(
        opt(alt('my p o number is', 'the p o number is', 'the p o is', 'my p o is', 'p o number', 'p o', 'purchase order',
          'purchase order number', 'order number', "it's", 'it is', 'the order number is', 'my order number is')),
        ref('po'),
      ));
      break;
    }
    case 'department': {
      const people = [...new Set([...(vocab.names ?? [])].map((n) => textWords(n).join(' ')).filter((n) => n))];
      rules.dept = alt(words(DEPARTMENTS), ...(people.length ? [words(people)] : []));
      rules.top = answer(seq(
        opt(alt('i need', "i'd like", 'i would like to talk to', 'i want to talk to', 'can i talk to', 'can i speak to',
          'transfer me to', 'put me through to', 'connect me to', 'let me talk to', 'talk to', 'speak to')),
        ref('dept'),
        opt('please'),
      ));
      break;
    }
    case 'digits':
      rules.numword = alt({ w: 12, n: ref('digit') }, { w: 1, n: alt(...TEENS) }, { w: 2, n: alt(...TENS) }, { w: 1, n: alt('hundred', 'double') });
      rules.top = answer(seq(
        opt(alt('my account number is', 'account number', 'my number is', 'it is', "it's", 'the number is', 'account')),
        { rep: ref('numword'), max: 14 } as Node,
      ));
      break;
    default:
      return undefined;
  }
  return { name: expect, rules };
}

function render(n: Node, top: boolean): string {
  if (typeof n === 'string') return n;
  if ('seq' in n) {
    const s = n.seq.map((x) => render(x, false)).join(' ');
    return top || n.seq.length === 1 ? s : `( ${s} )`;
  }
  if ('alt' in n) {
    const weighted = n.alt.some((x) => typeof x === 'object' && 'w' in x && x.w !== 1);
    const s = n.alt.map((x) => {
      const isW = typeof x === 'object' && 'w' in x && 'n' in x;
      const node = isW ? (x as { n: Node }).n : (x as Node);
      const w = isW ? (x as { w: number }).w : 1;
      return `${weighted ? `/${w}/ ` : ''}${render(node, false)}`;
    }).join(' | ');
    return `( ${s} )`;
  }
  if ('opt' in n) return `[ ${render(n.opt, true)} ]`;
  if ('rep' in n) return `${render(n.rep, false)}+`;
  return `<${n.ref}>`;
}

/** The grammar as a JSGF document (public rule `<top>`). */
export function toJsgf(g: Grammar): string {
  const lines = ['#JSGF V1.0;', '', `grammar ${g.name};`, '', `public <top> = ${render(g.rules.top!, true)};`];
  for (const [name, n] of Object.entries(g.rules)) if (name !== 'top') lines.push(`<${name}> = ${render(n, true)};`);
  return `${lines.join('\n')}\n`;
}

/** Every word the grammar can produce (for the pronunciation dictionary). */
export function grammarWords(g: Grammar): Set<string> {
  const out = new Set<string>();
  const walk = (n: Node): void => {
    if (typeof n === 'string') {
      for (const w of n.split(' ')) if (w) out.add(w);
    } else if ('seq' in n) n.seq.forEach(walk);
    else if ('alt' in n) n.alt.forEach((x) => walk(typeof x === 'object' && 'w' in x && 'n' in x ? (x as { n: Node }).n : (x as Node)));
    else if ('opt' in n) walk(n.opt);
    else if ('rep' in n) walk(n.rep);
  };
  Object.values(g.rules).forEach(walk);
  return out;
}


/**
 * Random sentences of the grammar (weights respected; deterministic), the corpus of the
 * state-specific LM alternative to the JSGF search.
 */
export function sampleSentences(g: Grammar, n = 4000, seed = 0x57a7e): string[] {
  const r = rng(seed);
  const gen = (node: Node, out: string[], depth: number): void => {
    if (depth > 40) return;
    if (typeof node === 'string') {
      if (node) out.push(node);
    } else if ('seq' in node) node.seq.forEach((x) => gen(x, out, depth + 1));
    else if ('alt' in node) {
      const items = node.alt.map((x) => (typeof x === 'object' && 'w' in x && 'n' in x ? (x as { w: number; n: Node }) : { w: 1, n: x as Node }));
      const total = items.reduce((a, x) => a + x.w, 0);
      let p = r() * total;
      let pick = items[items.length - 1]!;
      for (const x of items) {
        if ((p -= x.w) <= 0) {
          pick = x;
          break;
        }
      }
      gen(pick.n, out, depth + 1);
    } else if ('opt' in node) {
      if (r() < 0.4) gen(node.opt, out, depth + 1);
    } else if ('rep' in node) {
      const k = 1 + Math.floor(r() * (node.max ?? 4));
      for (let i = 0; i < k; i++) gen(node.rep, out, depth + 1);
    } else gen(g.rules[node.ref]!, out, depth + 1);
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const s: string[] = [];
    gen(g.rules.top!, s, 0);
    if (s.length) out.push(s.join(' '));
  }
  return out;
}

/**
 * The grammar without the words `known` rejects (words the pronunciation dictionary lacks):
 * alternatives with such a word are dropped, options with one become empty.
 */
export function pruneGrammar(g: Grammar, known: (w: string) => boolean): Grammar {
  const prune = (n: Node): Node | undefined => {
    if (typeof n === 'string') return n.split(' ').every((w) => !w || known(w)) ? n : undefined;
    if ('seq' in n) {
      const parts: Node[] = [];
      for (const x of n.seq) {
        const p = prune(x);
        if (p === undefined) return undefined;
        if (p !== '') parts.push(p);
      }
      return parts.length === 0 ? '' : parts.length === 1 ? parts[0]! : { seq: parts };
    }
    if ('alt' in n) {
      const items: Array<Node | { w: number; n: Node }> = [];
      for (const x of n.alt) {
        const isW = typeof x === 'object' && 'w' in x && 'n' in x;
        const p = prune(isW ? (x as { n: Node }).n : (x as Node));
        if (p === undefined || p === '') continue;
        items.push(isW ? { w: (x as { w: number }).w, n: p } : p);
      }
      return items.length ? { alt: items } : undefined;
    }
    if ('opt' in n) {
      const p = prune(n.opt);
      return p === undefined || p === '' ? '' : { opt: p };
    }
    if ('rep' in n) {
      const p = prune(n.rep);
      return p === undefined || p === '' ? undefined : { ...n, rep: p };
    }
    return n;
  };
  const rules: Record<string, Node> = {};
  for (const [k, v] of Object.entries(g.rules)) {
    const p = prune(v);
    if (p !== undefined && p !== '') rules[k] = p;
  }
  return { name: g.name, rules };
}

const UNIT_VALUE: Readonly<Record<string, number>> = Object.fromEntries(DIGIT_WORDS.slice(1).map((w, i) => [w, i + 1]));
const TEEN_VALUE: Readonly<Record<string, number>> = Object.fromEntries(TEENS.map((w, i) => [w, i + 10]));
const TENS_VALUE: Readonly<Record<string, number>> = Object.fromEntries(TENS.map((w, i) => [w, (i + 2) * 10]));

/**
 * The separate cardinal numbers in a transcript, in order: "a hundred and twenty cases" →
 * [120]; "twenty five" → [25]; "twenty forty boxes" → [20, 40] (two numbers: never summed —
 * a caller of this decides what two numbers mean, which is normally to ask again).
 */
export function numbersInWords(text: string): number[] {
  const out: number[] = [];
  let total = 0, cur = 0, last = 'start', open = false;
  const flush = (): void => {
    if (open) out.push(total + cur);
    total = 0; cur = 0; last = 'start'; open = false;
  };
  const toks = text.toLowerCase().split(/[\s-]+/).filter((w) => w);
  for (let i = 0; i < toks.length; i++) {
    const w = toks[i]!;
    const startOk = last === 'start' || last === 'hundred' || last === 'and' || last === 'thousand';
    if (w in UNIT_VALUE || w === 'zero') {
      if (!(startOk || last === 'tens')) flush();
      cur += UNIT_VALUE[w] ?? 0; last = 'unit'; open = true;
    } else if (w in TEEN_VALUE) {
      if (!startOk) flush();
      cur += TEEN_VALUE[w]!; last = 'teen'; open = true;
    } else if (w in TENS_VALUE) {
      if (!startOk) flush();
      cur += TENS_VALUE[w]!; last = 'tens'; open = true;
    } else if (w === 'a' && ['hundred', 'thousand', 'dozen'].includes(toks[i + 1] ?? '')) {
      if (last !== 'start') flush();
      cur = 1; last = 'a'; open = true;
    } else if (w === 'hundred' && (last === 'unit' || last === 'a') && cur % 100 < 10) {
      cur = (cur - (cur % 100)) + (cur % 100) * 100; last = 'hundred';
    } else if (w === 'thousand' && open && last !== 'thousand' && last !== 'and') {
      total += cur * 1000; cur = 0; last = 'thousand';
    } else if (w === 'dozen' && (last === 'unit' || last === 'a')) {
      cur *= 12; last = 'dozen';
    } else if (w === 'and' && (last === 'hundred' || last === 'thousand')) {
      last = 'and';
    } else {
      flush();
    }
  }
  flush();
  return out;
}

const DIGIT_VALUE: Readonly<Record<string, string>> = { ...Object.fromEntries(DIGIT_WORDS.map((w, i) => [w, String(i)])), oh: '0' };

/**
 * A part, PO or order code read back from a transcript: letters (spelled or NATO) then
 * digits (one by one, in pairs, "oh" for zero): "hotel x-ray forty four one zero" →
 * "HX-4410"; "e b s twenty two ninety one" → "EBS-2291"; "one two three" → "123".
 * Words before the code ("part number", "p o") are skipped when they are not letters.
 * Undefined when there are no digits.
 */
export function codeFromWords(text: string): string | undefined {
  const toks = text.toLowerCase().split(/\s+/).filter((w) => w && w !== 'dash');
  let letters = '';
  let digits = '';
  for (let i = 0; i < toks.length; i++) {
    const w = toks[i]!;
    const isLetter = /^[a-z]$/.test(w) || w in NATO_LETTER;
    if (isLetter && (digits === '' || letters === '')) {
      if (digits !== '') digits = ''; // "twenty of h x …": the number before the letters was a quantity
      letters += w.length === 1 ? w : NATO_LETTER[w]!;
    } else if (w in DIGIT_VALUE) {
      digits += DIGIT_VALUE[w];
    } else if (w in TEEN_VALUE) {
      digits += String(TEEN_VALUE[w]);
    } else if (w in TENS_VALUE) {
      const next = toks[i + 1];
      if (next && next in UNIT_VALUE) {
        digits += String(TENS_VALUE[w]! + UNIT_VALUE[next]!);
        i++;
      } else digits += String(TENS_VALUE[w]);
    } else if (digits === '') {
      letters = ''; // a word between letters and digits: start over ("p o number one two" keeps none)
    } else if (letters === '') {
      digits = ''; // digits then a word ("twenty of …"): a quantity, not the code
    } else break;
  }
  if (!digits) return undefined;
  return letters ? `${letters.toUpperCase()}-${digits}` : digits;
}
