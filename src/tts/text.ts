/** Sentence splitting and digit read-out shared by the TTS providers. */

const DIGIT_NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/**
 * Split text into sentences at . ! ? (followed by space/end) and at line breaks, keeping
 * the punctuation; dots inside codes and numbers ("SO-481200.", "3.5") do not split.
 * Very long sentences are cut at commas/semicolons so the first audio comes quickly.
 * @param maxChars longest sentence before it is cut at a comma. @defaultValue 200
 */
export function splitSentences(text: string, maxChars = 200): string[] {
  const out: string[] = [];
  for (const para of text.split(/\n+/)) {
    let cur = '';
    for (let i = 0; i < para.length; i++) {
      const ch = para[i]!;
      cur += ch;
      if ((ch === '.' || ch === '!' || ch === '?') && (i + 1 === para.length || /\s/.test(para[i + 1]!))) {
        while (i + 1 < para.length && /[.!?"')\]]/.test(para[i + 1]!)) cur += para[++i];
        out.push(...cutLong(cur.trim(), maxChars));
        cur = '';
      }
    }
    if (cur.trim()) out.push(...cutLong(cur.trim(), maxChars));
  }
  return out.filter((s) => /[\p{L}\p{N}]/u.test(s));
}

function cutLong(s: string, maxChars: number): string[] {
  if (s.length <= maxChars) return [s];
  const out: string[] = [];
  let cur = '';
  for (const piece of s.split(/(?<=[,;:])\s+/)) {
    if (cur && cur.length + piece.length + 1 > maxChars) {
      out.push(cur);
      cur = piece;
    } else cur = cur ? `${cur} ${piece}` : piece;
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * A code read out one character at a time: "PO12345" → "P O one two three four five",
 * "SO-481200" → "S O four eight one two zero zero". Separators are dropped.
 */
export function spellCode(code: string): string {
  const out: string[] = [];
  for (const ch of code) {
    if (/[0-9]/.test(ch)) out.push(DIGIT_NAMES[Number(ch)]!);
    else if (/[A-Za-z]/.test(ch)) out.push(ch.toUpperCase());
  }
  return out.join(' ');
}

/**
 * Codes worth reading character by character: letters+digits (PO12345, HX-4410), mixed
 * tracking numbers (1Z999AA10123456784), or 4+ digits.
 */
const CODE = /\b(?:[A-Za-z]{1,4}-?\d{2,}[A-Za-z0-9-]*|(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{6,}|\d{4,})\b/g;

/** Replace every code in `text` by its character-by-character reading. */
export function speakCodes(text: string): string {
  return text.replace(CODE, (m) => spellCode(m));
}
