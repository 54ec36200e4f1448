/**
 * The domain corpus the local recogniser's language model is trained on: call phrases of
 * every lane (reorder, same as last time, order status, PO numbers, yes/no, agent, billing,
 * returns, messages, goodbye), digits and quantities, plus the tenant's SKUs (spelled as
 * letters + digits, "h x four four one zero" and "h x forty four ten"), PO numbers and
 * account names. Sentences are lower-case words; letters are single-letter words.
 */
import type { Vocabulary } from './types.ts';

export const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;
const TEENS = ['ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** Cardinal number in words, 0–9999 ("one hundred twenty", "two thousand"). */
export function cardinalWords(n: number): string {
  if (n < 10) return DIGIT_WORDS[n]!;
  if (n < 20) return TEENS[n - 10]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? ` ${DIGIT_WORDS[n % 10]}` : '');
  if (n < 1000) return `${DIGIT_WORDS[Math.floor(n / 100)]} hundred${n % 100 ? ` ${cardinalWords(n % 100)}` : ''}`;
  return `${cardinalWords(Math.floor(n / 1000))} thousand${n % 1000 ? ` ${cardinalWords(n % 1000)}` : ''}`;
}

/** Digits one by one: "4410" → "four four one zero". */
export function digitsWords(digits: string, zero: 'zero' | 'oh' = 'zero'): string {
  return [...digits].map((d) => (d === '0' ? zero : DIGIT_WORDS[Number(d)]!)).join(' ');
}

/** Digits in pairs as people read part numbers: "4410" → "forty four ten", "1001" → "ten oh one". */
export function pairWords(digits: string): string {
  const out: string[] = [];
  for (let i = 0; i < digits.length; i += 2) {
    const p = digits.slice(i, i + 2);
    if (p.length === 1) out.push(digitsWords(p));
    else if (p[0] === '0') out.push(`oh ${DIGIT_WORDS[Number(p[1])]}`);
    else out.push(cardinalWords(Number(p)));
  }
  return out.join(' ');
}

/** Letters spelled, digits read: "HX-4410" → ["h x four four one zero", "h x forty four ten", …]. */
export function spokenCodes(code: string): string[] {
  const m = /^([A-Za-z]*)[-\s]?(\d*)$/.exec(code.trim());
  if (!m) return [];
  const letters = [...m[1]!.toLowerCase()].join(' ');
  const digits = m[2]!;
  const forms = new Set<string>();
  const join = (...p: string[]): string => p.filter((x) => x).join(' ');
  forms.add(join(letters, digitsWords(digits)));
  if (digits.includes('0')) forms.add(join(letters, digitsWords(digits, 'oh')));
  if (digits.length >= 2 && digits.length % 2 === 0) forms.add(join(letters, pairWords(digits)));
  return [...forms];
}

const NATO_WORDS: Readonly<Record<string, string>> = {
  a: 'alpha', b: 'bravo', c: 'charlie', d: 'delta', e: 'echo', f: 'foxtrot', g: 'golf', h: 'hotel', i: 'india',
  j: 'juliet', k: 'kilo', l: 'lima', m: 'mike', n: 'november', o: 'oscar', p: 'papa', q: 'quebec', r: 'romeo',
  s: 'sierra', t: 'tango', u: 'uniform', v: 'victor', w: 'whiskey', x: 'x-ray', y: 'yankee', z: 'zulu',
};

/** A code with its letters in the NATO alphabet and digits one by one: "HX-4410" → "hotel x-ray four four one zero". */
export function natoCode(code: string): string | undefined {
  const m = /^([A-Za-z]+)[-\s]?(\d+)$/.exec(code.trim());
  if (!m) return undefined;
  return [...m[1]!.toLowerCase()].map((l) => NATO_WORDS[l] ?? l).join(' ') + ' ' + digitsWords(m[2]!);
}

/** Lower-case word tokens of free text (descriptions, names); drops numbers and symbols. */
export function textWords(s: string): string[] {
  return s.toLowerCase().replace(/[’]/g, "'").replace(/[^a-z' ]+/g, ' ').split(/\s+/).filter((w) => w && w !== "'");
}

/** Small deterministic PRNG (mulberry32) so the corpus — and its cache key — is stable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const YES_NO = [
  'yes', 'no', 'yeah', 'yep', 'nope', 'okay', 'sure', 'correct', 'that is correct', "that's correct", 'yes that is correct',
  "yes that's correct", "that's right", 'yes that is right', 'yes please', 'no thank you', 'no thanks', 'go ahead',
  'yes go ahead', 'please place the order', 'yes please place the order', 'no that is wrong', "no that's wrong",
  'no that is not right', 'not correct', 'that is not correct', 'cancel', 'cancel that', 'yes place it', 'sounds good',
];
const AGENT = [
  'agent', 'representative', 'operator', 'a human', 'a real person', 'customer service', 'my sales rep', 'my rep',
  'i want to talk to a representative', 'i want to speak to an agent', 'let me talk to a person', 'can i talk to someone',
  'can i speak to a representative', 'transfer me to my sales rep', 'can you transfer me to my sales rep please',
  'connect me to my rep', 'put me through to sales', 'speak to a human', 'talk to an agent please', 'technical support',
  'inside sales', 'i need to talk to somebody',
];
const BILLING = [
  'billing', 'i have a billing question', 'i have a question about an invoice', 'question about my invoice',
  'i am calling about an invoice', 'accounts receivable', 'i need a credit', 'my bill is wrong', 'invoice',
];
const RETURNS = [
  'returns', 'i need to return something', 'i want to make a return', 'i want to return an item', 'return a part',
  'the part was damaged', 'i got the wrong part',
];
const STATUS = [
  'where is my order', 'where is my shipment', "what's the status of my order", 'what is the status of my order',
  'order status', 'i want to check on an order', 'i want to check on my order', 'can you check on an order',
  'has my order shipped', 'when will my order arrive', 'i need a tracking number', 'tracking number',
  'i am calling about a purchase order', 'i want to check a purchase order', 'where is my purchase order',
];
const REORDER = [
  'i would like to reorder', "i'd like to reorder", 'i want to reorder', 'reorder', 'i want to place an order',
  "i'd like to place an order", 'i would like to place an order', 'same as last time', 'the same as last time',
  'same order as last time', 'i want the same as last time', "i'd like the same as last time", 'the usual',
  'my usual order', 'repeat my last order', 'reorder my last order', 'same as before', 'i need to order some parts',
  'i need more', 'do you have it in stock', 'when can it ship', 'what is the ship date', 'how many do you have',
];
const MESSAGE = [
  "i'd like to leave a message", 'i would like to leave a message', 'can i leave a message', 'please call me back',
  'have someone call me back', 'please have my rep call me', 'it is urgent', 'call me back tomorrow morning',
];
const OTHER = [
  'hello', 'hi', 'good morning', 'good afternoon', 'thank you', 'thanks', 'thank you very much', 'goodbye', 'bye',
  "that's all", 'that is all', 'nothing else', "that's it", 'no that is all thank you', 'can you repeat that',
  'say that again', 'sorry what was that', 'i did not catch that', 'hold on', 'one moment', 'wait',
];
const UNITS = ['', 'cases', 'cases of', 'boxes of', 'units of', 'bags of', 'of', 'pieces of', 'each'];

/**
 * Sentences (space-separated lower-case words) for the tenant's domain model.
 * Deterministic for a given vocabulary.
 */
export function domainSentences(vocab: Vocabulary = {}): string[] {
  const out: string[] = [];
  const add = (...s: string[]): void => {
    for (const x of s) out.push(x.replace(/\s+/g, ' ').trim());
  };
  const r = rng(0x5eed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  add(...YES_NO, ...YES_NO, ...AGENT, ...BILLING, ...RETURNS, ...STATUS, ...REORDER, ...REORDER, ...MESSAGE, ...OTHER);

  // quantities
  const qtys: string[] = [];
  for (let n = 1; n <= 30; n++) qtys.push(cardinalWords(n));
  for (const n of [40, 48, 50, 60, 75, 80, 100, 120, 144, 150, 200, 250, 300, 500, 1000]) qtys.push(cardinalWords(n));
  qtys.push('a dozen', 'two dozen', 'a hundred', 'a case', 'a box', 'a hundred and twenty', 'a hundred and fifty', 'two thousand', 'a thousand');
  for (const q of qtys) add(q, `${q} ${pick(UNITS)}`, `i need ${q}`);

  // digit strings of every length, and "oh"
  for (let i = 0; i < 400; i++) {
    const len = 1 + Math.floor(r() * 10);
    let d = '';
    for (let k = 0; k < len; k++) d += String(Math.floor(r() * 10));
    add(digitsWords(d, r() < 0.3 ? 'oh' : 'zero'));
  }

  // PO numbers: known ones and patterns
  const pos = new Set<string>(vocab.poNumbers ?? []);
  for (let i = 0; i < 30; i++) pos.add(`PO${String(10000 + Math.floor(r() * 89999))}`);
  const poLead = ['my p o number is', 'the p o is', 'p o', 'purchase order', 'purchase order number', 'it is p o',
    "it's p o", 'where is p o', 'the p o number is', 'order number', "i'm calling about p o", 'my p o is'];
  for (const po of [...pos].sort()) {
    const nato = /^(?!PO)[A-Z]/i.test(po) ? natoCode(po) : undefined;
    if (nato) add(nato, `${pick(poLead)} ${nato}`);
    for (const form of spokenCodes(po)) {
      const digitsOnly = form.replace(/^([a-z] )+/, '');
      add(form, `${pick(poLead)} ${digitsOnly}`, `${pick(STATUS)} the p o is ${digitsOnly}`);
    }
  }

  // SKUs: spelled codes in reorder phrases, descriptions and keywords
  for (const s of vocab.skus ?? []) {
    const forms = spokenCodes(s.sku);
    const desc = textWords(s.description ?? '').join(' ');
    for (const f of forms) {
      add(f, `part number ${f}`, `i need ${pick(qtys)} ${pick(UNITS)} ${f}`, `${pick(REORDER)} ${f}`,
        `i would like to reorder ${pick(qtys)} ${pick(UNITS)} part number ${f}`, `${pick(qtys)} of ${f}`,
        `can i get ${pick(qtys)} ${f}`);
    }
    // NATO spelling ("hotel x-ray four four one zero")
    const nato = natoCode(s.sku);
    if (nato) add(nato, `part number ${nato}`);
    if (desc) add(desc, `i need ${pick(qtys)} ${desc}`, `do you have ${desc}`, `${pick(qtys)} ${pick(UNITS)} ${desc}`);
    const kw = textWords(s.keywords ?? '').join(' ');
    if (kw) add(kw);
  }

  // accounts and names
  for (const a of vocab.accounts ?? []) {
    const name = textWords(a.name).join(' ');
    const num = /\d+/.exec(a.number)?.[0];
    if (name) add(name, `this is ${name}`, `i am calling from ${name}`, `hi this is ${pick(['dana', 'sam', 'mike', 'rosa', 'frank'])} from ${name}`);
    if (num) add(`my account number is ${digitsWords(num)}`, `account ${digitsWords(num)}`);
  }
  for (const n of vocab.names ?? []) {
    const w = textWords(n).join(' ');
    if (w) add(w, `my name is ${w}`, `this is ${w}`, `can i talk to ${w}`);
  }
  // callback numbers
  for (let i = 0; i < 20; i++) {
    let d = '';
    for (let k = 0; k < 10; k++) d += String(Math.floor(r() * 10));
    add(`my number is ${digitsWords(d)}`, `you can reach me at ${digitsWords(d, 'oh')}`, `call me back at ${digitsWords(d)}`);
  }
  for (const p of vocab.phrases ?? []) add(textWords(p).join(' '));
  return out.filter((s) => s.length > 0);
}
