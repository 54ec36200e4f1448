/**
 * The lanes of the outcome benchmark and the scripted caller that walks them.
 *
 * Each lane has an intent (what the caller wants), a list of phrasings the caller tries in
 * turn, and a goal the judge (judge.ts) checks outside the agent. The caller is a state
 * machine that answers what the agent just asked the way a person would: "yes" to a correct
 * read-back, "no, forty" to a wrong one, digits keyed when asked to key them, its name and
 * company when asked, and its request again in other words when the agent did not get it.
 * It reads what the agent asked from the agent's prompt text (the server's `agent said`
 * log lines) — for turn-taking only; it never judges from them.
 */

/** What the caller wants. */
export type Intent =
  | { kind: 'order'; sku: string; qty: number; spoken: string[]; say: string[] }
  | { kind: 'reject'; sku: string; qty: number; spoken: string[]; say: string[] }
  | { kind: 'status'; po: string; keyed: boolean; say: string[]; expect: RegExp }
  | { kind: 'handoff'; extensions?: string[]; say: string[] }
  | { kind: 'message'; say: string[]; message: string };

export interface Lane {
  id: string;
  /** in-lane (the agent should complete it), out-of-lane (must reach a person), after hours */
  group: 'in' | 'out' | 'night';
  /** runs against the server whose clock is after business hours */
  night: boolean;
  /** the intent of call number `i` of this lane (phrasings rotate with `i`) */
  intent(i: number): Intent;
}

/** The demo caller: Dana Reyes of Acme Plumbing Supply (ACC-10042, rep Maria Chen, ext 2101). */
export const CALLER = { ani: '+14155550142', name: 'Dana Reyes', company: 'Acme Plumbing Supply', account: 'ACC-10042', digits: '14155550142' };

const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
  'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** 0..999 in words ("forty", "twenty-five", "five hundred"). */
export function numberWords(n: number): string {
  if (n < 20) return ONES[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? `-${ONES[n % 10]}` : '');
  const h = `${ONES[Math.floor(n / 100)]} hundred`;
  return n % 100 ? `${h} ${numberWords(n % 100)}` : h;
}

/** Numbers said in words or digits inside a text, with their positions. */
export function numbersIn(text: string): Array<{ value: number; index: number; end: number }> {
  const out: Array<{ value: number; index: number; end: number }> = [];
  const t = text.toLowerCase();
  const word = new Map<string, number>();
  ONES.forEach((w, i) => word.set(w, i));
  TENS.forEach((w, i) => { if (w) word.set(w, i * 10); });
  const re = /\d+|[a-z]+/g;
  let m: RegExpExecArray | null;
  let acc: { value: number; index: number; end: number; last: 'ten' | 'one' | 'hundred' } | undefined;
  const flush = (): void => {
    if (acc) out.push({ value: acc.value, index: acc.index, end: acc.end });
    acc = undefined;
  };
  while ((m = re.exec(t))) {
    const tok = m[0];
    if (/^\d+$/.test(tok)) {
      flush();
      out.push({ value: Number(tok), index: m.index, end: m.index + tok.length });
      continue;
    }
    const v = word.get(tok);
    if (tok === 'hundred' && acc && acc.value < 10) {
      acc.value *= 100;
      acc.last = 'hundred';
      acc.end = m.index + tok.length;
      continue;
    }
    if (v === undefined) {
      if (tok !== 'and') flush();
      continue;
    }
    if (acc && ((acc.last === 'ten' && v < 10 && acc.value % 10 === 0) || (acc.last === 'hundred' && v < 100))) {
      acc.value += v;
      acc.last = v >= 20 ? 'ten' : 'one';
      acc.end = m.index + tok.length;
      continue;
    }
    flush();
    acc = { value: v, index: m.index, end: m.index + tok.length, last: v >= 20 && v % 10 === 0 ? 'ten' : 'one' };
  }
  flush();
  return out;
}

/**
 * The quantities an agent's read-back states: numbers followed by "of" or a unit word
 * ("48 of PF-4420", "forty boxes"); when there are none, any number outside part codes,
 * dates, sizes ("3/4 inch", "schedule 40", "10 foot") and phone/order digits.
 */
export function quantitiesIn(text: string): number[] {
  const t = text.replace(/\b[A-Z]{2,3}[- ]?\d{4}\b/g, ' ').replace(SPELLED_SKU, ' ');
  const nums = numbersIn(t);
  const unit = /^\s*(of|x\b|×|boxes|box|bags|bag|units|pieces|lengths|each|coils|cases)/i;
  const q = nums.filter((n) => unit.test(t.slice(n.end)));
  if (q.length) return q.map((n) => n.value);
  const cleaned = t
    // sizes in words ("three quarter inch") before the generic size rule, which leaves their first word
    .replace(/\b(one|three|five|seven) (quarter|quarters|eighths?) inch\b/gi, ' ')
    .replace(/\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|july|august|september|october|november|december)\b[^.?!]*/gi, ' ')
    .replace(/\b\d+\/\d+\b|\b\w+[- ]?(inch|foot|feet|degree)\b|\bschedule \w+|\b(s o|p o|order number)[^.?!]*/gi, ' ');
  return numbersIn(cleaned).map((n) => n.value).filter((v) => v > 0 && v < 10000);
}

const DIGIT = '(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)';
/** A part code spelled out by the agent: "H X, four four one two" (not "P O …" or "S O …"). */
const SPELLED_SKU = new RegExp(`\\b([A-Z]) ([A-Z])(?: ([A-Z]))?,? (${DIGIT}(?:[ ,]+${DIGIT}){3})\\b`, 'g');

/** SKU codes in a text: "HX-4410", "HX 4410", or spelled "H X, four four one zero". */
export function skusIn(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\b([A-Z]{2,3})[- ]?(\d{4})\b/g)) out.push(`${m[1]}-${m[2]}`);
  for (const m of text.matchAll(SPELLED_SKU)) {
    const letters = `${m[1]}${m[2]}${m[3] ?? ''}`;
    if (letters === 'PO' || letters === 'SO') continue;
    const digits = m[4]!.split(/[ ,]+/).map((w) => (w === 'oh' ? 0 : ONES.indexOf(w))).join('');
    out.push(`${letters}-${digits}`);
  }
  return out;
}

/**
 * PO 12345 (Acme's order SO-481200) has shipped with UPS Ground: the answer says "is shipped",
 * "shipped … with UPS Ground" and "the tracking number is …". A reorder read-back ("available
 * to ship …") must not pass for it.
 */
const STATUS_HEARD = /\bshipped\b|\btracking\b|\bu p s\b/;

const ord = (sku: string, qty: number, spoken: string[], say: (q: string, s: string) => string[]): Intent => ({
  kind: 'order', sku, qty, spoken, say: say(numberWords(qty), spoken[0]!),
});

/** The reorders the callers ask for (the traps included: "forty boxes of P F forty-four twenty", "five ten-foot lengths"). */
const ORDERS: Array<() => Intent> = [
  () => ord('HX-4410', 20, ['H X four four one zero', 'H X forty-four ten'], (q, s) => [`I need ${q} of ${s}.`, `I'd like to reorder ${q} of H X forty-four ten.`, `${q} of ${s}, please.`]),
  () => ord('PF-4420', 40, ['P F forty-four twenty', 'P F four four two zero'], (q, s) => [`Send me ${q} boxes of ${s}.`, `I want to order ${q} boxes of P F four four two zero.`, `${q} boxes of ${s}.`]),
  () => ord('CP-5010', 5, ['C P fifty ten', 'C P five zero one zero'], (q, s) => [`I need ${q} ten-foot lengths of ${s}.`, `I'd like ${q} of C P five zero one zero.`, `${q} of ${s}, please.`]),
  () => ord('CV-3110', 12, ['C V thirty-one ten', 'C V three one one zero'], (q, s) => [`Can I get ${q} of ${s}?`, `I want to reorder ${q} of C V three one one zero.`, `${q} of ${s}.`]),
];

export const LANES: Lane[] = [
  { id: 'reorder-accept', group: 'in', night: false, intent: (i) => ORDERS[i % ORDERS.length]!() },
  {
    id: 'reorder-reject', group: 'in', night: false,
    intent: (i) => ({ ...(ORDERS[(i + 1) % ORDERS.length]!() as Extract<Intent, { kind: 'order' }>), kind: 'reject' }),
  },
  {
    id: 'status-spoken', group: 'in', night: false,
    intent: () => ({ kind: 'status', po: '12345', keyed: false, expect: STATUS_HEARD,
      say: ["Where is my order? The P O number is one two three four five.", 'What is the status of P O one two three four five?', 'P O one two three four five.'] }),
  },
  {
    id: 'status-keyed', group: 'in', night: false,
    intent: () => ({ kind: 'status', po: '12345', keyed: true, expect: STATUS_HEARD,
      say: ['I want to check on an order.', 'Where is my order?', 'Order status, please.'] }),
  },
  {
    id: 'routing', group: 'in', night: false,
    intent: (i) => (i % 2 === 0
      ? { kind: 'handoff', extensions: ['2200', '2201'], say: ['Can you put me through to billing? I have a question about an invoice.', 'I need to talk to someone in billing.', 'Billing, please.'] }
      : { kind: 'handoff', extensions: ['2300', '2301'], say: ['I need to talk to returns about a damaged item.', 'Connect me with returns, please.', 'Returns, please.'] }),
  },
  {
    id: 'person', group: 'in', night: false,
    intent: (i) => ({ kind: 'handoff', say: [['I want to talk to a person.', 'Let me speak to a representative.', 'Can I talk to a real person, please?'][i % 3]!, 'A person, please.', 'Operator.'] }),
  },
  {
    id: 'ool-price', group: 'out', night: false,
    intent: () => ({ kind: 'handoff', say: ['Can you give me a better price if I buy five hundred of the ball valves?', 'I am asking about a discount on five hundred valves.', 'I want a better price.'] }),
  },
  {
    id: 'ool-terms', group: 'out', night: false,
    intent: () => ({ kind: 'handoff', say: ['We would like net sixty payment terms on our account.', 'Can we get net sixty terms instead of net thirty?', 'Payment terms, net sixty.'] }),
  },
  {
    id: 'ool-complaint', group: 'out', night: false,
    intent: () => ({ kind: 'handoff', say: ['I want to make a complaint. The last delivery came in late and damaged.', 'I am not happy with the last delivery, I want to complain.', 'I have a complaint.'] }),
  },
  {
    id: 'ool-vague', group: 'out', night: false,
    intent: () => ({ kind: 'handoff', say: ['I need the brass thing with the red handle.', 'You know, the brass one with the red handle, I do not know the part number.', 'The brass thing with the red handle.'] }),
  },
  {
    id: 'night-message', group: 'night', night: true,
    intent: () => ({ kind: 'message', message: 'Please have my rep call me about the backordered valves.',
      say: ['I would like to leave a message for my rep.', 'Please take a message.', 'A message, please.'] }),
  },
  {
    id: 'night-status', group: 'night', night: true,
    intent: () => ({ kind: 'status', po: '12345', keyed: true, expect: STATUS_HEARD,
      say: ['Where is my order?', 'I want to check on an order.', 'Order status, please.'] }),
  },
];

/** One thing the caller does in a turn. */
export type Action =
  | { say: string }
  | { dtmf: string }
  | { end: 'done' | 'stuck' };

/** The caller's state across one call. */
export interface CallerState {
  intent: Intent;
  /** index of the next phrasing of the request */
  phrasing: number;
  /** the request has been said at least once */
  asked: boolean;
  /** the caller said no to a read-back (reject lane) */
  rejected: boolean;
  /** the caller corrected a wrong read-back this many times */
  corrections: number;
  last?: Action;
  /** the goal was reached (set by the bench from the judge): say goodbye on the next question */
  reached: boolean;
  /** the last order read-back ("That's 20 of HX-4410 … Shall I place the order?") was what the caller wants */
  readBackOk?: boolean;
}

export function newCallerState(intent: Intent): CallerState {
  return { intent, phrasing: 0, asked: false, rejected: false, corrections: 0, reached: false };
}

const has = (t: string, re: RegExp): boolean => re.test(t);

/** Say the request again, in the next words. */
function restate(st: CallerState): Action {
  const say = st.intent.say;
  const s = say[Math.min(st.phrasing, say.length - 1)]!;
  st.phrasing++;
  st.asked = true;
  return { say: s.charAt(0).toUpperCase() + s.slice(1) };
}

/**
 * What the caller does after the agent said `agentText` (all of its last answer, as text).
 * `turn` is the caller's turn number (0 = after the greeting).
 */
export function respond(st: CallerState, agentText: string, turn: number): Action {
  const a = agentText.toLowerCase();
  const it = st.intent;
  const keyIt = has(a, /\b(key|press|keypad|touch[- ]?tone|dial ?pad|type)\b/) && !has(a, /press (zero|0) for/);
  const question = has(a, /\?\s*$/) || has(a, /\?/);

  if (turn === 0 && !st.asked) {
    // the greeting; at night it already asks about the callback number
    if (it.kind === 'message' && has(a, /call you back on|best number/)) return { say: "Yes, that's the best number." };
    return restate(st);
  }
  if (st.reached) {
    if (has(a, /anything else|what can i help|help you with|how can i help/)) return { say: "No, that's all. Thank you, goodbye." };
    return { end: 'done' };
  }
  // the message lane (after hours): the slots in the order the agent asks them
  if (has(a, /your name/)) return { say: `My name is ${CALLER.name}.` };
  if (has(a, /which company|what company|company are you/)) return { say: `${CALLER.company}.` };
  if (has(a, /best number|call you back (on|at)|right number/) && question) return { say: "Yes, that's the best number." };
  if (has(a, /what number should|callback number|number to call you/)) return keyIt ? { dtmf: `${CALLER.digits}#` } : { say: 'One four one five, five five five, zero one four two.' };
  if (has(a, /tell your rep|what would you like me to tell|what is the message|what's the message|your message/) && question) {
    return { say: it.kind === 'message' ? it.message : (it.say[0] ?? 'Please call me back.') };
  }
  if (has(a, /(would you like|do you want|shall i|should i|want me to|like me to)[^.?]{0,20}(take|leave) a message|take a message for your rep\?/) && !has(a, /what would you like to do|tell your rep/)) {
    return it.kind === 'message' ? { say: 'Yes, please.' } : { say: 'No.' };
  }
  // asked for a bare yes or no: give one (a person's answer to the last yes/no question)
  if (has(a, /say yes or no|yes or no\?/)) {
    if (has(a, /(person|someone|representative|rep\b|transfer|put you through)/)) return { say: it.kind === 'handoff' ? 'Yes.' : 'No.' };
    if (has(a, /place (the|this|your) order/) && it.kind === 'reject') {
      st.rejected = true;
      return { say: 'No.' };
    }
    if (has(a, /message/)) return { say: it.kind === 'message' ? 'Yes.' : 'No.' };
  }
  // a yes/no on the keypad ("Do you want to talk to a person? Press 1 for yes, or 2 for no."): the key
  if (keyIt && /press 1 for yes/.test(a) && /(person|someone|representative|put you through)/.test(a)) return { dtmf: it.kind === 'handoff' ? '1' : '2' };
  // the agent offers a person
  if (has(a, /(connect|transfer|put) you (to|through|with)|speak (to|with) (a|someone|your)|talk (to|with) (a|someone|your)|someone who can/) && question) {
    return it.kind === 'handoff' ? { say: 'Yes, please.' } : { say: 'No, thank you.' };
  }
  // PO number
  const answered = has(a, /\bis (shipped|picking|delivered|booked|backordered|in progress)|tracking number/);
  if (!answered && question && has(a, /(what('s| is)|which|say|read me|give me|need)\b.{0,25}\b(p ?o|purchase order|order)( number)?\b|\bp ?o number/)) {
    if (it.kind === 'status') {
      if (it.keyed || keyIt) return { dtmf: `${it.po}#` };
      return { say: `P O ${it.po.split('').map((d) => ONES[Number(d)]).join(' ')}.` };
    }
  }
  // a keypad choice between parts that share the digits ("For H X, four four two zero, …, press 1.
  // For P F, four four two zero, …, press 2."): the key of the caller's part
  if (keyIt && (it.kind === 'order' || it.kind === 'reject') && /\bFor [A-Z] [A-Z]/.test(agentText)) {
    for (const choice of agentText.split(/(?=\bFor [A-Z] [A-Z])/)) {
      const key = /press (\d)\b/.exec(choice)?.[1];
      if (key && skusIn(choice)[0] === it.sku) return { dtmf: key };
    }
  }
  // the keypad for the part: the digits printed beside it in the catalogue
  if (keyIt && has(a, /printed beside the part|digits of the part/) && (it.kind === 'order' || it.kind === 'reject')) {
    return { dtmf: `${it.sku.replace(/\D/g, '')}#` };
  }
  // the read-back confirmed on the keypad ("To place the order, press 1. To cancel it, press 2."):
  // the order the caller heard read back and wants — 1; one it does not want (or rejects) — 2
  if (keyIt && /place the order, (say yes or )?press 1/.test(a) && (it.kind === 'order' || it.kind === 'reject')) {
    if (it.kind === 'order' && st.readBackOk) return { dtmf: '1' };
    if (it.kind === 'reject') st.rejected = true;
    return { dtmf: '2' };
  }
  // read-back / confirmation of an order, a quantity or a part
  const skus = skusIn(agentText);
  // ("what is the part number?" is a question for the part, not a check of one)
  const readBack = has(a, /place (the|this|your) order|shall i|is that (right|correct)|right\?|correct\?|did you say|do you mean|confirm|was that|is that\b|(?<!what )is the (part|quantity)/);
  if (readBack && (it.kind === 'order' || it.kind === 'reject')) {
    // the reject lane says no to the order read-back only; the part and quantity it confirms like anyone
    if (it.kind === 'reject' && has(a, /place (the|this|your) order|shall i (place|book)|book (it|this|the order)/)) {
      st.rejected = true;
      return { say: "No, don't place it." };
    }
    const wrongSku = skus.find((s) => s !== it.sku);
    const orderReadBack = has(a, /place (the|this|your) order\?/) && skus.length > 0;
    if (orderReadBack) st.readBackOk = !wrongSku && quantitiesIn(agentText)[0] === it.qty;
    if (wrongSku) {
      st.corrections++;
      return { say: `No, ${it.spoken[st.corrections % it.spoken.length]}.` };
    }
    // a check of the part alone ("Just to check the part: P F, four four two zero, three quarter
    // inch … elbow. Is that right?"): the part is right, so yes — the sizes in its description
    // are not a quantity to correct
    if (has(a, /check the part|is the part\b/) && skus.length) return { say: turn % 3 === 2 ? 'Yep.' : 'Yes.' };
    // the first quantity stated is the one read back ("48 of …", "was that 12, one two?")
    const qtys = quantitiesIn(agentText);
    if (qtys.length && qtys[0] !== it.qty) {
      st.corrections++;
      return { say: `No, ${numberWords(it.qty)}.` };
    }
    return { say: turn % 3 === 2 ? 'Yep.' : 'Yes.' };
  }
  if (readBack && skus.length) return { say: 'No, that is not what I asked for.' };
  if (readBack && it.kind === 'handoff') return { say: 'No.' };
  // slot questions
  if (has(a, /how many|quantity|what quantity/)) {
    if (it.kind === 'order' || it.kind === 'reject') {
      // asked how many of the wrong part: correct the part first, as a person would
      if (skus.some((x) => x !== it.sku)) {
        st.corrections++;
        return { say: `No, I said ${it.spoken[st.corrections % it.spoken.length]}.` };
      }
      const q = numberWords(it.qty);
      return keyIt ? { dtmf: `${it.qty}#` } : { say: `${q.charAt(0).toUpperCase()}${q.slice(1)}.` };
    }
  }
  if (has(a, /part number|which part|what part|item number|sku|product/) && question) {
    if (it.kind === 'order' || it.kind === 'reject') return { say: `${it.spoken[st.corrections % it.spoken.length]}.` };
  }
  if (it.kind === 'status' && keyIt) return { dtmf: `${it.po}#` };
  if (has(a, /anything else|what can i help|help you with|how can i help|what would you like to do/)) {
    if (it.kind === 'reject' && st.rejected) return { say: "No, that's all. Thank you, goodbye." };
    return restate(st);
  }
  if (has(a, /didn't catch|did not catch|say (it|that) again|repeat|sorry/)) {
    if (st.last && 'say' in st.last) return st.last;
    return restate(st);
  }
  if (it.kind === 'reject' && st.rejected) return { say: "No, that's all. Goodbye." };
  return restate(st);
}
