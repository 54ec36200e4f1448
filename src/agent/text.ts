/**
 * Text helpers shared by both agents: spoken numbers ↔ digits, SKU / PO / phone patterns in
 * speech-to-text output, yes/no, and the other direction — reading codes, digits and dates
 * out so a TTS engine says them one by one ("S O, one zero zero, four two").
 *
 * Two ways of hearing numbers:
 * - **digit strings** (part numbers, PO numbers, phone numbers): every group is written out
 *   as it was said — "forty four ten" → "4410", "double five" → "55", "oh" → "0",
 *   "one two three" → "123";
 * - **cardinals** (quantities): "one hundred and twenty" → 120, "a dozen" → 12.
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

/**
 * Parse a cardinal number from words at `start` ("one hundred and twenty five" → 125,
 * "40" → 40, "a dozen" → 12). Returns undefined when no number starts there.
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
  let total = 0;
  let current = 0;
  let any = false;
  while (i < ws.length) {
    const w = ws[i]!;
    if (w in UNITS && w !== 'oh' && w !== 'o') { current += UNITS[w]!; any = true; }
    else if (w in TEENS) { current += TEENS[w]!; any = true; }
    else if (w in TENS) { current += TENS[w]!; any = true; }
    else if (w === 'hundred' && any) { current = (current || 1) * 100; }
    else if (w === 'thousand' && any) { total += (current || 1) * 1000; current = 0; }
    else if (w === 'and' && any && i + 1 < ws.length && (ws[i + 1]! in UNITS || ws[i + 1]! in TENS || ws[i + 1]! in TEENS)) { /* "hundred and five" */ }
    else if (w === 'a' && !any && (ws[i + 1] === 'hundred' || ws[i + 1] === 'thousand')) { current = 1; any = true; }
    else break;
    i++;
  }
  if (!any) return undefined;
  return { value: total + current, end: i };
}

/** Words that follow a quantity: "40 of", "forty units", "two cases". */
const QTY_FOLLOWERS = new Set(['of', 'units', 'unit', 'pieces', 'piece', 'each', 'pcs', 'cases', 'case', 'boxes', 'box', 'more']);

/**
 * The quantity in an utterance (cardinal), ignoring tokens in `skip` (e.g. the span of a SKU).
 * A number followed by "of"/"units"/… or preceded by "quantity" wins over a bare number.
 */
export function extractQuantity(text: string | readonly string[], skip?: { start: number; end: number }): number | undefined {
  const ws = typeof text === 'string' ? words(text) : text;
  let best: { value: number; score: number } | undefined;
  for (let i = 0; i < ws.length; i++) {
    if (skip && i >= skip.start && i < skip.end) continue;
    const r = readCardinal(ws, i);
    if (!r) continue;
    let end = r.end;
    if (skip && i < skip.start && end > skip.start) end = skip.start;
    const value = end === r.end ? r.value : readCardinal(ws.slice(0, end), i)?.value;
    if (value === undefined || value <= 0) { i = r.end - 1; continue; }
    let score = 1;
    if (QTY_FOLLOWERS.has(ws[end] ?? '')) score = 3;
    if (ws[i - 1] === 'quantity' || ws[i - 1] === 'qty') score = 3;
    if (!best || score > best.score) best = { value, score };
    i = r.end - 1;
  }
  return best?.value;
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
  const letterOf = (w: string): string | undefined => (/^[a-z]$/.test(w) ? w : LETTER_NAMES[w]);
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i]!;
    // written code in one token: "hx4410" / "hx-4410" (split by words() into "hx" "4410")
    const glued = /^([a-z]{1,4})(\d{2,8})$/.exec(w);
    if (glued) {
      out.push({ sku: `${glued[1]!.toUpperCase()}-${glued[2]}`, letters: glued[1]!, digits: glued[2]!, start: i, end: i + 1 });
      continue;
    }
    // letters: either one short token ("hx") or a run of single letters ("h x")
    let letters = '';
    let j = i;
    if (/^[a-z]{2,4}$/.test(w) && !STOP.has(w) && !(w in LETTER_NAMES) && !(w in UNITS) && !(w in HOMOPHONES) && ws[i + 1] !== undefined && isDigitToken(ws[i + 1]!)) {
      letters = w;
      j = i + 1;
    } else {
      while (j < ws.length && letterOf(ws[j]!) !== undefined && !(ws[j] === 'o' && letters !== '' && isDigitToken(ws[j + 1] ?? ''))) {
        letters += letterOf(ws[j]!)!;
        j++;
        if (letters.length >= 4) break;
      }
    }
    if (letters === '' || j >= ws.length || !isDigitToken(ws[j]!) || ws[j] === 'hundred') continue;
    if (['p', 's', 'o', 'po', 'so'].includes(letters)) continue; // PO / SO numbers, "oh" = zero
    const run = readDigitRun(ws, j);
    if (run.digits.length < 3) continue;
    const candidates = [letters];
    if (letters.length > 1 && /^[ai]/.test(letters)) candidates.push(letters.slice(1));
    const digitsOptions = [run.digits];
    if (run.digits.length > 4) digitsOptions.push(run.digits.slice(0, 4));
    for (const l of candidates) {
      for (const d of digitsOptions) {
        out.push({ sku: `${l.toUpperCase()}-${d}`, letters: l, digits: d, start: i + (letters.length - l.length), end: d === run.digits ? run.end : j + 1 });
      }
    }
    i = run.end - 1;
  }
  // unique by sku, keep order
  const seen = new Set<string>();
  return out.filter((c) => (seen.has(c.sku) ? false : (seen.add(c.sku), true)));
}

/**
 * A purchase-order number in an utterance: "PO12345", "P.O. 12345", "p o one two three four
 * five", "purchase order number one two three four five", "PO number 12345". Returns
 * the canonical "PO12345" or undefined.
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
    else if (w === 'purchase' && ws[i + 1] === 'order') j = i + 2;
    if (j < 0) continue;
    while (ws[j] === 'number' || ws[j] === 'is' || ws[j] === '#' || ws[j] === 'no') j++;
    const run = readDigitRun(ws, j);
    if (run.digits.length >= 3) return `PO${run.digits}`;
  }
  return undefined;
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
