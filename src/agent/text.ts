/**
 * Text helpers shared by both agents: spoken numbers ↔ digits, SKU / PO / phone patterns in
 * speech-to-text output, yes/no, and the other direction — reading codes, digits and dates
 * out so a TTS engine says them one by one ("S O, one zero zero, four two").
 *
 * Two ways of hearing numbers:
 * - **digit strings** (part numbers, PO numbers, phone numbers): every group is written out
 *   as it was said — "forty four ten" → "4410", "double five" → "55", "oh" → "0",
 *   "one two three" → "123";
 * - **cardinals** (quantities): "one hundred and twenty" → 120, "a dozen" → 12. Number words
 *   combine only as English numbers do ("twenty four", "one hundred and five"); two that do
 *   not ("twenty forty") are never added up — {@link quantityIn} reports them as ambiguous —
 *   and a number that is a size ("ten-foot", "half inch", "schedule forty") is not a quantity.
 *
 * Letters in codes may be spelled ("h x"), said as letter names ("aitch ex"), in the NATO
 * alphabet ("hotel x-ray") or as "e as in echo".
 */

const UNITS: Record<string, number> = {
  zero: 0, oh: 0, o: 0, nought: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9,
};
const TEENS: Record<string, number> = {
  ten: 10, eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15, sixteen: 16, seventeen: 17, eighteen: 18, nineteen: 19,
};
const TENS: Record<string, number> = {
  twenty: 20, thirty: 30, forty: 40, fourty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90,
};
/** STT homophones of digits ("for", "to", "too", "won", "ate"). Only used inside a digit run. */
const HOMOPHONES: Record<string, string> = { to: '2', too: '2', for: '4', fore: '4', won: '1', ate: '8' };

const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** Spoken letter names STT may produce for a spelled part-number prefix. */
const LETTER_NAMES: Record<string, string> = {
  aitch: 'h', ex: 'x', bee: 'b', cee: 'c', dee: 'd', eff: 'f', gee: 'g', jay: 'j', kay: 'k', el: 'l', em: 'm',
  en: 'n', pee: 'p', cue: 'q', ar: 'r', ess: 's', tee: 't', vee: 'v', zee: 'z', zed: 'z',
};

/** NATO spelling alphabet (and common variants) → letter. */
const NATO: Record<string, string> = {
  alpha: 'a', alfa: 'a', bravo: 'b', charlie: 'c', delta: 'd', echo: 'e', foxtrot: 'f', golf: 'g', hotel: 'h', india: 'i',
  juliet: 'j', juliett: 'j', kilo: 'k', lima: 'l', mike: 'm', november: 'n', oscar: 'o', papa: 'p', quebec: 'q', romeo: 'r',
  sierra: 's', tango: 't', uniform: 'u', victor: 'v', whiskey: 'w', whisky: 'w', xray: 'x', yankee: 'y', zulu: 'z',
};

/**
 * The letter spelled at `ws[i]`: a single letter ("h"), a letter name ("aitch"), a NATO word
 * ("hotel", "x ray"), optionally followed by "as in <word>" ("e as in echo"). Returns the
 * letter and how many tokens it took, or undefined.
 */
export function letterAt(ws: readonly string[], i: number): { letter: string; len: number } | undefined {
  const w = ws[i];
  if (w === undefined) return undefined;
  let letter: string | undefined;
  let len = 1;
  if (w === 'x' && ws[i + 1] === 'ray') { letter = 'x'; len = 2; }
  else if (/^[a-z]$/.test(w)) letter = w;
  else letter = LETTER_NAMES[w] ?? NATO[w];
  if (letter === undefined) return undefined;
  // "e as in echo": the word after "as in" only repeats the letter
  if (ws[i + len] === 'as' && ws[i + len + 1] === 'in' && ws[i + len + 2] !== undefined && ws[i + len + 2]![0] === letter) len += 3;
  return { letter, len };
}

/** Common short words that are never a part-number prefix ("need 40", "of 12"). */
const STOP = new Set(('need want like have has had get got buy send ship make take give and the for with of to is it its are was be me my we us our you your them they that this than then more some any all just only also same as at on in by or so do does did can will would could please order ' +
  'reorder units unit case cases box boxes each about like make it po so').split(' '));

/** Lower-case, drop punctuation except inside codes, split into words. "HX-4410." → ["hx", "4410"]. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[’']/g, "'")
    .replace(/(\d),(\d{3})/g, '$1$2')
    .replace(/([a-z])\.(?=[a-z]\b|\s|$)/g, '$1 ')
    .replace(/[^a-z0-9#' ]+/g, ' ')
    .split(/\s+/)
    .filter((w) => w !== '');
}

/** True when `w` can take part in a spoken digit string. */
function isDigitToken(w: string): boolean {
  return /^\d+$/.test(w) || w in UNITS || w in TEENS || w in TENS || w === 'double' || w === 'triple' || w === 'hundred';
}

/**
 * Read a run of spoken digit groups starting at `words[start]`; returns the digits and the
 * index after the run. `allowHomophones` lets "for"/"to" count as 4/2 inside a run that has
 * already started (never as the first token).
 */
export function readDigitRun(ws: readonly string[], start: number, allowHomophones = true): { digits: string; end: number } {
  let out = '';
  let i = start;
  while (i < ws.length) {
    const w = ws[i]!;
    const next = ws[i + 1];
    if (/^\d+$/.test(w)) {
      out += w;
      i++;
    } else if ((w === 'double' || w === 'triple') && next !== undefined && (next in UNITS || /^\d$/.test(next))) {
      const d = /^\d$/.test(next) ? next : String(UNITS[next]);
      out += d.repeat(w === 'double' ? 2 : 3);
      i += 2;
    } else if (w in TENS) {
      const t = TENS[w]!;
      if (next !== undefined && next in UNITS && UNITS[next]! > 0 && next !== 'oh' && next !== 'o') {
        out += String(t + UNITS[next]!);
        i += 2;
      } else {
        out += String(t);
        i++;
      }
    } else if (w in TEENS) {
      out += String(TEENS[w]);
      i++;
    } else if (w in UNITS && !(w === 'o' && out === '' && !(next && isDigitToken(next)))) {
      out += String(UNITS[w]);
      i++;
    } else if (w === 'hundred' && out !== '') {
      // "forty four hundred" → 4400; "one hundred" → 100
      out += '00';
      i++;
    } else if (allowHomophones && out !== '' && w in HOMOPHONES && next !== undefined && isDigitToken(next)) {
      out += HOMOPHONES[w];
      i++;
    } else break;
  }
  return { digits: out, end: i };
}

/** All digits in an utterance read as one digit string ("five five five, one two one two" → "5551212"). */
export function spokenDigits(text: string): string {
  const ws = words(text);
  let out = '';
  for (let i = 0; i < ws.length; ) {
    if (isDigitToken(ws[i]!) && ws[i] !== 'hundred') {
      const r = readDigitRun(ws, i);
      if (r.end > i) {
        out += r.digits;
        i = r.end;
        continue;
      }
    }
    i++;
  }
  return out;
}

/** A spelled number word ("oh"/"o" are digits only, never a quantity). */
function cardinalWord(w: string): 'unit' | 'teen' | 'tens' | undefined {
  if (w in UNITS && w !== 'oh' && w !== 'o') return 'unit';
  if (w in TEENS) return 'teen';
  if (w in TENS) return 'tens';
  return undefined;
}

/** True when a number (digits or a number word) starts at `w`. */
function startsNumber(w: string | undefined): boolean {
  return w !== undefined && (/^\d+$/.test(w) || cardinalWord(w) !== undefined);
}

/**
 * Parse a cardinal number from words at `start` ("one hundred and twenty five" → 125,
 * "40" → 40, "a dozen" → 12). Words combine only as English numbers do: a unit after a
 * tens word ("twenty four"), "hundred"/"thousand" after a number, "and" after them. A number
 * word that cannot continue the number ("twenty forty", "five ten") ends it there — it is
 * never added. Returns undefined when no number starts there.
 */
export function readCardinal(ws: readonly string[], start: number): { value: number; end: number } | undefined {
  let i = start;
  const first = ws[i];
  if (first === undefined) return undefined;
  if ((first === 'a' || first === 'one') && ws[i + 1] === 'dozen') return { value: 12, end: i + 2 };
  if (first === 'dozen') return { value: 12, end: i + 1 };
  if (/^\d+$/.test(first)) {
    let value = Number(first);
    i++;
    if (ws[i] === 'hundred') { value *= 100; i++; }
    else if (ws[i] === 'thousand') { value *= 1000; i++; }
    return { value, end: i };
  }
  let thousands = 0;
  let current = 0;
  /** what the last word was: which words may follow */
  let prev: 'start' | 'unit' | 'teen' | 'tens' | 'tensunit' | 'hundred' | 'thousand' | 'and' = 'start';
  let hundred = false;
  if (first === 'a' && (ws[i + 1] === 'hundred' || ws[i + 1] === 'thousand')) { current = 1; prev = 'unit'; i++; }
  const groupStart = (): boolean => prev === 'start' || prev === 'hundred' || prev === 'thousand' || prev === 'and';
  while (i < ws.length) {
    const w = ws[i]!;
    const cls = cardinalWord(w);
    if (cls === 'unit' && prev === 'tens' && UNITS[w]! > 0) { current += UNITS[w]!; prev = 'tensunit'; }
    else if (cls && groupStart()) { current += cls === 'unit' ? UNITS[w]! : cls === 'teen' ? TEENS[w]! : TENS[w]!; prev = cls; }
    else if (w === 'hundred' && !hundred && (prev === 'unit' || prev === 'teen' || prev === 'tens' || prev === 'tensunit')) {
      current = (current || 1) * 100;
      hundred = true;
      prev = 'hundred';
    } else if (w === 'thousand' && thousands === 0 && prev !== 'start' && prev !== 'and') {
      thousands = (current || 1) * 1000;
      current = 0;
      hundred = false;
      prev = 'thousand';
    } else if (w === 'and' && (prev === 'hundred' || prev === 'thousand') && cardinalWord(ws[i + 1] ?? '') !== undefined) { prev = 'and'; }
    else break;
    i++;
  }
  if (prev === 'start') return undefined;
  return { value: thousands + current, end: i };
}

/** Words that follow a quantity: "40 of", "forty units", "two cases". */
const QTY_FOLLOWERS = new Set(['of', 'units', 'unit', 'pieces', 'piece', 'each', 'pcs', 'cases', 'case', 'boxes', 'box', 'more', 'bags', 'bag', 'lengths', 'length', 'rolls', 'roll', 'coils', 'coil', 'spools', 'spool']);
/** Words after a number that make it a size, not a quantity: "ten foot", "three quarter inch", "three way". */
const SIZE_AFTER = new Set(['foot', 'feet', 'ft', 'inch', 'inches', 'meter', 'meters', 'metre', 'metres', 'mm', 'cm', 'millimeter', 'millimeters',
  'gallon', 'gallons', 'gal', 'pound', 'pounds', 'lb', 'lbs', 'ounce', 'ounces', 'oz', 'volt', 'volts', 'amp', 'amps', 'psi', 'degree', 'degrees',
  'quarter', 'quarters', 'eighth', 'eighths', 'sixteenth', 'sixteenths', 'half', 'by', 'gauge', 'watt', 'watts', 'percent', 'way']);
/** Words before a number that make it a descriptor: "schedule forty", "grade five", "number ten screws". */
const SIZE_BEFORE = new Set(['schedule', 'sch', 'grade', 'number', 'size', 'type', 'class', 'frac']);

/** What was heard as the quantity: one value, or number words that do not combine ("twenty forty"). */
export type QuantityHeard = { value: number; ambiguous?: undefined } | { value?: undefined; ambiguous: number[] };

/**
 * The quantity in an utterance (cardinal), ignoring tokens in `skip` (the span of a SKU).
 * A number followed by "of"/"units"/… or preceded by "quantity" wins over a bare number;
 * sizes ("five ten-foot lengths": ten is a size) are not quantities. Two numbers side by side
 * that do not form one number ("twenty forty boxes"), or two equally likely different ones,
 * come back as `ambiguous` — never summed, never picked by guesswork.
 */
export function quantityIn(text: string | readonly string[], skip?: { start: number; end: number }): QuantityHeard | undefined {
  // fractions ("3/4 inch") are sizes; keep the token count words() gives ("3 4") so spans line up
  const ws = typeof text === 'string' ? words(text.replace(/\b\d+\/\d+\b/g, 'frac frac')) : text;
  const inSkip = (i: number): boolean => !!skip && i >= skip.start && i < skip.end;
  const found: Array<{ value: number; score: number }> = [];
  for (let i = 0; i < ws.length; i++) {
    if (inSkip(i)) continue;
    const r = readCardinal(ws, i);
    if (!r) continue;
    let end = r.end;
    if (skip && i < skip.start && end > skip.start) end = skip.start;
    const value = end === r.end ? r.value : readCardinal(ws.slice(0, end), i)?.value;
    const next = i;
    i = Math.max(i, end - 1);
    if (value === undefined || value <= 0) continue;
    if (SIZE_AFTER.has(ws[end] ?? '') || SIZE_BEFORE.has(ws[next - 1] ?? '')) continue;
    // another number right after that did not combine with this one, and is not a size itself
    if (startsNumber(ws[end]) && !inSkip(end)) {
      const n = readCardinal(ws, end);
      if (n && !SIZE_AFTER.has(ws[n.end] ?? '')) return { ambiguous: [value, n.value] };
    }
    let score = 1;
    if (QTY_FOLLOWERS.has(ws[end] ?? '')) score = 3;
    else if (startsNumber(ws[end]) || ws[end] === 'frac') score = 2; // "five ten-foot lengths": a quantity before a sized item
    if (ws[next - 1] === 'quantity' || ws[next - 1] === 'qty') score = 3;
    found.push({ value, score });
  }
  if (found.length === 0) return undefined;
  const top = Math.max(...found.map((f) => f.score));
  const best = [...new Set(found.filter((f) => f.score === top).map((f) => f.value))];
  return best.length === 1 ? { value: best[0]! } : { ambiguous: best };
}

/** The quantity in an utterance, or undefined when there is none or it is ambiguous (see {@link quantityIn}). */
export function extractQuantity(text: string | readonly string[], skip?: { start: number; end: number }): number | undefined {
  return quantityIn(text, skip)?.value;
}

/**
 * Quantities a recogniser confuses with another ("fourteen"/"forty", "fifteen"/"fifty" …):
 * 13–19 and the tens from 30 to 90.
 */
export function confusableQuantity(n: number): boolean {
  return (n >= 13 && n <= 19) || (n >= 30 && n <= 90 && n % 10 === 0);
}

/** A part number heard in an utterance, with the token span it came from. */
export interface SkuCandidate {
  /** canonical form "HX-4410" */
  sku: string;
  letters: string;
  digits: string;
  /** token span in `words(text)` */
  start: number;
  end: number;
}

/**
 * Part numbers in an utterance: a short letter prefix (spelled, "h x" / "h. x." / "aitch ex",
 * or written "hx") followed by a digit string ("forty four ten", "4410", "four four one zero").
 * Several candidates may come back for one span (leading "a"/"i" may be an article: "I need a
 * h x 4410" → "AHX-4410" then "HX-4410"); callers resolve them with find_sku.
 */
export function extractSkuCandidates(text: string): SkuCandidate[] {
  const ws = words(text);
  const out: SkuCandidate[] = [];
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i]!;
    // written code in one token: "hx4410" / "hx-4410" (split by words() into "hx" "4410")
    const glued = /^([a-z]{1,4})(\d{2,8})$/.exec(w);
    if (glued) {
      out.push({ sku: `${glued[1]!.toUpperCase()}-${glued[2]}`, letters: glued[1]!, digits: glued[2]!, start: i, end: i + 1 });
      continue;
    }
    const lr = readLetters(ws, i);
    if (!lr) continue;
    const { letters, end: j, starts } = lr;
    if (j >= ws.length || !isDigitToken(ws[j]!) || ws[j] === 'hundred') continue;
    if (['p', 's', 'o', 'po', 'so'].includes(letters)) continue; // PO / SO numbers, "oh" = zero
    const run = readDigitRun(ws, j);
    if (run.digits.length < 3) continue;
    const candidates = [letters];
    if (letters.length > 1 && /^[ai]/.test(letters)) candidates.push(letters.slice(1));
    const digitsOptions = [run.digits];
    if (run.digits.length > 4) digitsOptions.push(run.digits.slice(0, 4));
    for (const l of candidates) {
      for (const d of digitsOptions) {
        out.push({ sku: `${l.toUpperCase()}-${d}`, letters: l, digits: d, start: starts[letters.length - l.length] ?? i, end: d === run.digits ? run.end : j + 1 });
      }
    }
    i = run.end - 1;
  }
  // unique by sku, keep order
  const seen = new Set<string>();
  return out.filter((c) => (seen.has(c.sku) ? false : (seen.add(c.sku), true)));
}

/**
 * The letters of a code starting at `ws[i]`: one short written token ("hx", "ebs") followed by
 * a digit, or a run of up to four spelled letters ("h x", "aitch ex", "hotel x-ray", "e as in
 * echo"). Returns the letters, the token after them and where each letter started.
 */
function readLetters(ws: readonly string[], i: number): { letters: string; end: number; starts: number[] } | undefined {
  const w = ws[i]!;
  if (/^[a-z]{2,4}$/.test(w) && !STOP.has(w) && !(w in LETTER_NAMES) && !(w in NATO) && !(w in UNITS) && !(w in HOMOPHONES) && ws[i + 1] !== undefined && isDigitToken(ws[i + 1]!)) {
    return { letters: w, end: i + 1, starts: [i] };
  }
  let letters = '';
  const starts: number[] = [];
  let j = i;
  while (j < ws.length && letters.length < 4) {
    // "o" after letters, before digits, is "oh" = zero
    if (ws[j] === 'o' && letters !== '' && isDigitToken(ws[j + 1] ?? '')) break;
    const l = letterAt(ws, j);
    if (!l) break;
    starts.push(j);
    letters += l.letter;
    j += l.len;
  }
  return letters ? { letters, end: j, starts } : undefined;
}

/**
 * A lettered code at `ws[i]` — letters (see {@link readLetters}), an optional "dash", then at
 * least `minDigits` digits: "e b s two two nine one" / "EBS-2291" / "echo bravo sierra 2291".
 */
function readLetteredCode(ws: readonly string[], i: number, minDigits = 3): { letters: string; digits: string; end: number } | undefined {
  const glued = /^([a-z]{1,4})(\d{3,})$/.exec(ws[i] ?? '');
  if (glued) return { letters: glued[1]!, digits: glued[2]!, end: i + 1 };
  const lr = readLetters(ws, i);
  if (!lr) return undefined;
  let j = lr.end;
  while (ws[j] === 'dash' || ws[j] === 'hyphen') j++;
  if (!isDigitToken(ws[j] ?? '') || ws[j] === 'hundred') return undefined;
  const run = readDigitRun(ws, j);
  if (run.digits.length < minDigits) return undefined;
  return { letters: lr.letters, digits: run.digits, end: run.end };
}

/**
 * A purchase-order number in an utterance: "PO12345", "P.O. 12345", "p o one two three four
 * five", "purchase order number one two three four five", "PO number 12345", and lettered
 * ones after the same words: "PO number E B S two two nine one" / "echo bravo sierra 2291".
 * Returns the canonical "PO12345" / "EBS-2291", or undefined.
 */
export function extractPoNumber(text: string): string | undefined {
  const ws = words(text);
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i]!;
    let j = -1;
    const glued = /^po(\d{3,})$/.exec(w);
    if (glued) return `PO${glued[1]}`;
    if (w === 'po' || w === 'pio') j = i + 1;
    else if (w === 'p' && (ws[i + 1] === 'o' || ws[i + 1] === 'oh')) j = i + 2;
    else if (w === 'papa' && ws[i + 1] === 'oscar') j = i + 2;
    else if (w === 'purchase' && ws[i + 1] === 'order') j = i + 2;
    if (j < 0) continue;
    while (ws[j] === 'number' || ws[j] === 'is' || ws[j] === '#' || ws[j] === 'no') j++;
    const run = readDigitRun(ws, j);
    if (run.digits.length >= 3) return `PO${run.digits}`;
    const code = readLetteredCode(ws, j);
    if (code) return `${code.letters.toUpperCase()}-${code.digits}`;
  }
  return undefined;
}

/**
 * A PO number given as the answer to "what's the PO number?": anything {@link extractPoNumber}
 * finds, else a lettered code anywhere ("E B S two two nine one" → "EBS-2291"), else the
 * digits alone ("two two nine one" → "PO2291"; the CRM matches a lettered PO by its digits
 * too, which is how a keyed PO finds "EBS-2291").
 */
export function extractPoAnswer(text: string): string | undefined {
  const po = extractPoNumber(text);
  if (po) return po;
  const ws = words(text);
  for (let i = 0; i < ws.length; i++) {
    const code = readLetteredCode(ws, i);
    if (code && !['s', 'so'].includes(code.letters)) return `${code.letters.toUpperCase()}-${code.digits}`;
  }
  const d = spokenDigits(text);
  return d.length >= 3 ? `PO${d}` : undefined;
}

/** A sales-order number ("SO-100231", "s o one zero zero two three one", "order number 100231"). */
export function extractOrderNumber(text: string): string | undefined {
  const ws = words(text);
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i]!;
    const glued = /^so(\d{3,})$/.exec(w);
    if (glued) return `SO-${glued[1]}`;
    let j = -1;
    if (w === 'so' && ws[i + 1] !== undefined && isDigitToken(ws[i + 1]!)) j = i + 1;
    else if (w === 's' && ws[i + 1] === 'o') j = i + 2;
    else if ((w === 'sales' && ws[i + 1] === 'order') || (w === 'order' && ws[i + 1] === 'number')) j = i + 2;
    if (j < 0) continue;
    while (ws[j] === 'number' || ws[j] === 'is') j++;
    const run = readDigitRun(ws, j);
    if (run.digits.length >= 3) return `SO-${run.digits}`;
  }
  return undefined;
}

/** A phone number spoken as digits (at least 7), e.g. for a callback number. */
export function extractPhone(text: string): string | undefined {
  const d = spokenDigits(text);
  return d.length >= 7 && d.length <= 15 ? d : undefined;
}

const YES = /\b(yes|yeah|yep|yup|ya|sure|correct|right|that's right|that is right|please do|go ahead|do it|ok|okay|affirmative|absolutely|confirm|confirmed|sounds good|place (the|my|it|that)( order)?|book it)\b/;
const NO = /\b(no|nope|nah|cancel|don't|do not|stop|wrong|incorrect|not right|never mind|nevermind|wait)\b/;

/** Yes / no / neither for a confirmation question. A "no" anywhere wins over a "yes" ("yes, no wait"). */
export function yesNo(text: string): 'yes' | 'no' | undefined {
  const t = words(text).join(' ');
  if (NO.test(t) && !/\bno problem\b/.test(t)) return 'no';
  if (YES.test(t)) return 'yes';
  return undefined;
}

/** Digits as words for TTS, grouped for breathing: "100231" → "one zero zero, two three one". */
export function speakDigits(digits: string, group = 0): string {
  const ds = digits.replace(/\D/g, '').split('');
  const g = group > 0 ? group : ds.length <= 5 ? ds.length : ds.length % 3 === 1 ? 4 : 3;
  const parts: string[] = [];
  for (let i = 0; i < ds.length; i += g) parts.push(ds.slice(i, i + g).map((d) => DIGIT_WORDS[Number(d)]).join(' '));
  return parts.join(', ');
}

/**
 * A code read character by character: letters spelled, digits as words, separators as pauses.
 * "SO-100231" → "S O, one zero zero, two three one"; "1Z999AA1" → "one Z, nine nine nine, A A, one".
 */
export function speakCode(code: string): string {
  const groups = code.toUpperCase().match(/[A-Z]+|\d+/g) ?? [];
  return groups.map((g) => (/^\d+$/.test(g) ? speakDigits(g) : g.split('').join(' '))).join(', ');
}

/** A phone number read in its usual groups: "17755550142" → "one, seven seven five, five five five, zero one four two". */
export function speakPhone(number: string): string {
  const d = number.replace(/\D/g, '');
  if (d.length === 11 && d[0] === '1') return [speakDigits(d[0]), speakDigits(d.slice(1, 4)), speakDigits(d.slice(4, 7)), speakDigits(d.slice(7))].join(', ');
  if (d.length === 10) return [speakDigits(d.slice(0, 3)), speakDigits(d.slice(3, 6)), speakDigits(d.slice(6))].join(', ');
  return speakDigits(d);
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
  return `${n}${n % 10 > 3 ? 'th' : s}`;
}

/** "2026-12-03" → "Thursday, December 3rd". Unparseable input comes back unchanged. */
export function speakDate(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso);
  if (!m) return iso;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  if (Number.isNaN(d.getTime())) return iso;
  return `${DAYS[d.getUTCDay()]}, ${MONTHS[d.getUTCMonth()]} ${ordinal(d.getUTCDate())}`;
}

/** A number for TTS: integers as numerals are fine for flite ("40" → "forty"). */
export function speakQuantity(n: number): string {
  return String(n);
}

/** First name of a contact ("Dana Whitfield" → "Dana"). */
export function firstName(name: string | undefined): string | undefined {
  return name?.trim().split(/\s+/)[0] || undefined;
}

/** Fill {placeholders} ({tenant}, {first_name}, {account}, {target} …) in a prompt template; unknown ones become empty. */
export function fillTemplate(tpl: string, vars: Record<string, string | undefined>): string {
  return tpl.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? '').replace(/\s+/g, ' ').trim();
}

/** Words that are never part of a person's name ("My Order Please" is noise, not a name). */
const NOT_NAME = new Set(('my your our the a an and or of for to in on at is it its this that what where when how why who which can could would should will ' +
  'i me we us you he she they them his her their yes yeah yep no nope not ok okay sure please thanks thank hello hi hey sorry um uh ' +
  'order orders reorder status part parts number numbers sku po purchase valve valves pipe box boxes case cases message call back calling ' +
  'need want like get got send ship help person agent rep representative operator human company account phone same last time ' +
  'dollars price much more some any all just only also again one two three four five six seven eight nine ten zero oh').split(' '));

/** Strip what a caller says around an answer: "my name is …", "it's …", "yes, …", a trailing "please". */
function stripLead(text: string, leads: RegExp): string {
  return text.trim().replace(/^(hi|hello|yes|yeah|sure|ok|okay|um|uh)[,.!]?\s+/i, '').replace(leads, '').replace(/[\s,]*\bplease\b[.!?]*$/i, '').replace(/[.!?]+$/, '').trim();
}

/**
 * A person's name from an answer to "may I have your name?" — "it's Pat Quinn" → "Pat Quinn";
 * undefined when the words cannot be a name (noise such as "My Order Please", digits, more
 * than four words, lane words).
 */
export function nameFrom(text: string): string | undefined {
  const ws = words(stripLead(text, /^(my name is|my name's|the name is|name is|this is|it's|it is|i am|i'm|you're speaking with|speaking)\s+/i));
  if (ws.length === 0 || ws.length > 4) return undefined;
  if (!ws.every((w) => /^[a-z][a-z'-]*$/.test(w) && !NOT_NAME.has(w))) return undefined;
  if (!ws.some((w) => w.length >= 2)) return undefined;
  return ws.map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ');
}

/** Words that show an answer is not a company name (a lane request or a yes/no heard as one). */
const NOT_COMPANY = /\b(order|orders|reorder|status|part number|purchase order|p o|po|message|call me|yes|yeah|no|nope|price|help|person|agent|representative|operator)\b/;

/**
 * A company name from an answer to "which company are you calling from?" — "I'm calling from
 * Quinn Builders" → "Quinn Builders"; undefined for noise (lane words, nothing but small words).
 */
export function companyFrom(text: string): string | undefined {
  const s = stripLead(text, /^((i'm |i am |we're |we are )?(calling )?(from|with|at)|it's|it is|the company is|company is|the company's|account is|that's|that is)\s+/i);
  const ws = words(s);
  if (ws.length === 0 || ws.length > 8 || NOT_COMPANY.test(ws.join(' '))) return undefined;
  if (ws.every((w) => NOT_NAME.has(w))) return undefined;
  return s;
}

/**
 * When the office opens again, said from the CRM's business_hours answer: "tomorrow at 7 AM",
 * "today at 7:30 AM", "on Monday at 8 AM". `nextOpen` and `localTime` are ISO times in the
 * office's zone ("2026-12-03T07:00:00-06:00"). Undefined when they do not parse.
 */
export function speakOpening(nextOpen: string | undefined, localTime: string | undefined): string | undefined {
  const n = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})/.exec(nextOpen ?? '');
  const l = /^(\d{4}-\d{2}-\d{2})/.exec(localTime ?? '');
  if (!n) return undefined;
  const h = Number(n[2]);
  const m = Number(n[3]);
  const clock = `${h % 12 === 0 ? 12 : h % 12}${m ? `:${n[3]}` : ''} ${h < 12 ? 'AM' : 'PM'}`;
  const day = (iso: string): number => Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1, Number(iso.slice(8, 10))) / 86_400_000;
  const diff = l ? day(n[1]!) - day(l[1]!) : NaN;
  if (diff === 0) return `today at ${clock}`;
  if (diff === 1) return `tomorrow at ${clock}`;
  const d = new Date(day(n[1]!) * 86_400_000);
  return `on ${DAYS[d.getUTCDay()]} at ${clock}`;
}

/** A quantity for a check on its own: the number, then its digits one by one ("40, four zero"). */
export function speakQuantityCheck(n: number): string {
  return n < 10 ? String(n) : `${n}, ${speakDigits(String(n)).replace(/,/g, '')}`;
}

/** Departments the CRM routes to, and the route_request topic of each (the escalation triggers use the same list). */
export const DEPARTMENTS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\b(billing|accounts? (receivable|payable)|invoic(e|es|ing)|statement|payments?)\b/, 'billing'],
  [/\b(returns?( department)?|rma|return authori[sz]ation|warranty)\b/, 'returns'],
  [/\b(tech(nical)? support|technical|engineering|specifications?|specs)\b/, 'technical'],
  [/\b(customer service|customer care)\b/, 'customer service'],
  [/\b(inside sales|sales (team|department|desk)|sales)\b(?! order)/, 'sales'],
  [/\bmy (sales |account )?(rep|representative|salesperson|account manager)\b/, 'my rep'],
];
/** Words that make a department word part of a self-service request ("where is my invoice", "return my last order"). */
const DEPARTMENT_IN_LANE = /\b(status|where('s| is)|track|tracking|order number|p ?o|purchase order|reorder|ship date|in stock|available|message|call me back|callback)\b/;
/** How a department is named to the caller. */
const DEPARTMENT_SPOKEN: Record<string, string> = { billing: 'billing', returns: 'returns', technical: 'technical support', 'customer service': 'customer service' };

/**
 * A department other than sales or the caller's own rep named in a turn ("billing",
 * "returns", "technical support"…), even in a transcript too unsure to act on — so a hand-off
 * that follows goes there instead of to the rep. Undefined inside self-service requests.
 */
export function departmentIn(text: string): { topic: string; spoken: string } | undefined {
  const t = words(text).join(' ');
  if (!t || DEPARTMENT_IN_LANE.test(t)) return undefined;
  const d = DEPARTMENTS.find(([re]) => re.test(t));
  if (!d || !DEPARTMENT_SPOKEN[d[1]]) return undefined;
  return { topic: d[1], spoken: DEPARTMENT_SPOKEN[d[1]]! };
}

/** The caller asks for a person, said whole or clipped by the recogniser. */
const PERSON_STRONG = /\b(representative|operator|human|agent|real person|live person|actual person|real human|customer service rep(resentative)?)\b/;
const PERSON_WEAK = /\b(rep|somebody|someone|a person|sales ?person)\b/;
const PERSON_VERB = /\b(talk|speak|connect|transfer|put me through|get me|give me|want|need|let me|can i)\b/;
/** "talk to a…" / "speak with the…": the object was clipped; in this domain it can only be a person. */
const PERSON_CLIPPED = /\b(talk|speak) (to|with)( (a|an|the|some))?$|\b(talk|speak) (to|with) (a|an)\b|\b(transfer|connect) me$|\bput me through\b/;
/** A message or callback request naming "someone" is not a request for a person now. */
const PERSON_NOT_NOW = /\b(message|call me back|callback|call back|have (someone|him|her|them) call|tell (my|the|your) rep|let (my|the) rep know)\b/;

/**
 * The caller asks for a person: "representative", "operator", "a real person", "agent",
 * "I want to talk to a…" (clipped), "can I speak to someone". Not "have someone call me back"
 * and not "tell my rep …" (a message).
 */
export function asksForPerson(text: string): boolean {
  const t = words(text).join(' ');
  if (!t || PERSON_NOT_NOW.test(t)) return false;
  if (PERSON_STRONG.test(t) || PERSON_CLIPPED.test(t)) return true;
  return PERSON_WEAK.test(t) && (PERSON_VERB.test(t) || t.split(' ').length <= 3);
}

/**
 * Below this recogniser confidence, a turn decoded with a per-state grammar is doubtful: a
 * grammar maps anything onto its own words ("hmm, let me think" came back as "agent", noise
 * as "no"), and pocketsphinx gives such forced answers its floor confidence (0.05) when the
 * open model's lattice does not support them. @defaultValue 0.1
 */
export const DOUBTFUL_BELOW = 0.1;

/** A recognised turn in a narrowed state (not 'open', 'message', 'name') with a floor confidence: see {@link DOUBTFUL_BELOW}. */
export function doubtful(confidence: number | undefined, expect: string | undefined): boolean {
  return confidence !== undefined && confidence < DOUBTFUL_BELOW && expect !== undefined && !['open', 'message', 'name'].includes(expect);
}
