/**
 * What callers answer in each dialogue state, with the words expected back and the slot
 * (SKU, quantity, PO, yes/no, department, digits) that must come out of them. Escape
 * requests ("I want to talk to a person", "agent", "operator") are asked in every state.
 */
import { codeFromWords, numbersInWords } from '../../../src/stt/grammar.ts';
import type { Expectation } from '../../../src/stt/types.ts';

export interface Item {
  state: Expectation;
  /** what the voice says */
  say: string;
  /** the transcript expected (lower case words) */
  ref: string;
  /** the slot that must be extracted */
  slot: string;
}

export const STATE_ITEMS: Record<string, Array<[say: string, ref: string, slot: string]>> = {
  sku: [
    ['H X forty-four ten.', 'h x forty four ten', 'HX4410'],
    ['H X four four one zero.', 'h x four four one zero', 'HX4410'],
    ['Hotel x-ray four four two zero.', 'hotel x-ray four four two zero', 'HX4420'],
    ['C P fifty ten.', 'c p fifty ten', 'CP5010'],
    ['P F forty-four twenty.', 'p f forty four twenty', 'PF4420'],
    ['Part number G V twenty-two thirty.', 'part number g v twenty two thirty', 'GV2230'],
    ['F S one zero zero one.', 'f s one zero zero one', 'FS1001'],
    ['Twenty of P X twelve fifty.', 'twenty of p x twelve fifty', 'PX1250'],
    ['Charlie victor three one one zero.', 'charlie victor three one one zero', 'CV3110'],
    ['M F ninety thirty-four.', 'm f ninety thirty four', 'MF9034'],
  ],
  quantity: [
    ['Twenty five.', 'twenty five', '25'],
    ['A hundred and twenty.', 'a hundred and twenty', '120'],
    ['Forty.', 'forty', '40'],
    ['Twelve cases.', 'twelve cases', '12'],
    ['Three hundred.', 'three hundred', '300'],
    ['Sixty boxes.', 'sixty boxes', '60'],
    ['Fifteen.', 'fifteen', '15'],
    ['Two thousand.', 'two thousand', '2000'],
    ['Make it eighty.', 'make it eighty', '80'],
    ['Seven.', 'seven', '7'],
  ],
  po: [
    ['P O one two three four five.', 'p o one two three four five', '12345'],
    ['E B S twenty-two ninety-one.', 'e b s twenty two ninety one', 'EBS2291'],
    ['Echo bravo sierra two two nine one.', 'echo bravo sierra two two nine one', 'EBS2291'],
    ['Purchase order seven seven four one zero.', 'purchase order seven seven four one zero', '77410'],
    ['T V F one zero zero nine.', 't v f one zero zero nine', 'TVF1009'],
    ['My P O number is five five zero two one.', 'my p o number is five five zero two one', '55021'],
    ['P O eight eight one two zero.', 'p o eight eight one two zero', '88120'],
    ['Order number four eight one four two zero.', 'order number four eight one four two zero', '481420'],
  ],
  yesno: [
    ['Yes.', 'yes', 'yes'],
    ['Yep.', 'yep', 'yes'],
    ["Yeah, that's right.", "yeah that's right", 'yes'],
    ['Correct.', 'correct', 'yes'],
    ['Sure.', 'sure', 'yes'],
    ['No.', 'no', 'no'],
    ['Nope.', 'nope', 'no'],
    ["That's wrong.", "that's wrong", 'no'],
    ['No, that is wrong.', 'no that is wrong', 'no'],
  ],
  department: [
    ['Billing.', 'billing', 'billing'],
    ['Returns please.', 'returns please', 'returns'],
    ['Transfer me to my sales rep.', 'transfer me to my sales rep', 'rep'],
    ['Customer service.', 'customer service', 'customer service'],
    ['Technical support.', 'technical support', 'support'],
    ['Accounts receivable.', 'accounts receivable', 'receivable'],
    ['Shipping.', 'shipping', 'shipping'],
  ],
  digits: [
    ['One zero zero four two.', 'one zero zero four two', '10042'],
    ['Four one five, five five five, zero one four two.', 'four one five five five five zero one four two', '4155550142'],
    ['One zero three one five.', 'one zero three one five', '10315'],
    ['My account number is one zero four two two.', 'my account number is one zero four two two', '10422'],
  ],
};

export const ESCAPES: Array<[say: string, ref: string, slot: string]> = [
  ['I want to talk to a person.', 'i want to talk to a person', 'escape'],
  ['Agent.', 'agent', 'escape'],
  ['Operator.', 'operator', 'escape'],
];

export const STATES: Expectation[] = ['sku', 'quantity', 'po', 'yesno', 'department', 'digits'];

export function items(states: readonly Expectation[] = STATES, withEscapes = true): Item[] {
  const out: Item[] = [];
  for (const state of states) {
    for (const [say, ref, slot] of STATE_ITEMS[state] ?? []) out.push({ state, say, ref, slot });
    if (withEscapes) for (const [say, ref, slot] of ESCAPES) out.push({ state, say, ref, slot });
  }
  return out;
}

/** What the agent's escalation takes as a request for a person (a clipped "talk to a…" included). */
const ESCAPE_WORDS = /\b(agent|representative|person|operator|human|help|cancel)\b|\btalk to (a|someone)\b/;
const YES = /\b(yes|yeah|yep|yup|correct|right|sure|okay|absolutely|affirmative)\b/;
const NO = /\b(no|nope|wrong|incorrect|negative)\b|not (right|correct)/;
const DEPTS = ['customer service', 'billing', 'returns', 'rep', 'support', 'receivable', 'shipping', 'sales', 'accounting'];

/** The slot a transcript gives in a state ('' when none). */
export function slotOf(state: Expectation, text: string, expected: string): string {
  const t = text.toLowerCase();
  if (expected === 'escape') return ESCAPE_WORDS.test(t) ? 'escape' : '';
  switch (state) {
    case 'sku':
    case 'po':
    case 'digits': {
      const c = codeFromWords(t);
      if (!c) return '';
      const flat = c.replace('-', '');
      return state === 'po' ? flat.replace(/^PO(?=\d)/, '') : flat;
    }
    case 'quantity': {
      const n = numbersInWords(t);
      return n.length === 1 ? String(n[0]) : '';
    }
    case 'yesno': {
      const y = YES.test(t) && !/not (right|correct)/.test(t), n = NO.test(t);
      return y && !n ? 'yes' : n && !y ? 'no' : n && y && /^no\b/.test(t) ? 'no' : '';
    }
    case 'department':
      return DEPTS.find((d) => t.includes(d)) ?? '';
    default:
      return t;
  }
}

export function words(s: string): string[] {
  return s.toLowerCase().replace(/[.,?!]/g, ' ').split(/\s+/).filter((w) => w);
}

export function editDistance(a: readonly string[], b: readonly string[]): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}
