/**
 * Sentence splitting on a streamed text so the first sentence can be spoken while the model
 * is still writing the rest. A boundary is `.`, `!` or `?` followed by whitespace (so the
 * splitter waits for the next character), or a newline; abbreviations, initials ("H. X.")
 * and decimals ("3.5") are not boundaries.
 */

const ABBREV = new Set(['mr', 'mrs', 'ms', 'dr', 'st', 'no', 'vs', 'etc', 'eg', 'ie', 'approx', 'inc', 'ltd', 'co', 'corp', 'jr', 'sr', 'ave', 'dept', 'est', 'qty', 'p', 'o']);

/** Incremental splitter: `push` text deltas, get complete sentences back; `end` flushes the rest. */
export class SentenceSplitter {
  private buf = '';
  /**
   * Sentences shorter than this are joined with the next one (avoids speaking "Okay." alone).
   * @defaultValue 1
   */
  readonly minChars: number;

  constructor(minChars = 1) {
    this.minChars = minChars;
  }

  push(delta: string): string[] {
    this.buf += delta;
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < this.buf.length; i++) {
      const c = this.buf[i]!;
      const next = this.buf[i + 1];
      let boundary = false;
      if (c === '\n') boundary = true;
      else if ((c === '.' || c === '!' || c === '?') && next !== undefined && /\s/.test(next)) {
        boundary = true;
        if (c === '.') {
          const before = /([A-Za-z]+)\.$/.exec(this.buf.slice(start, i + 1));
          const word = before?.[1];
          if (word && (ABBREV.has(word.toLowerCase()) || (word.length === 1 && /[A-Z]/.test(word)))) boundary = false;
        }
      }
      if (!boundary) continue;
      const s = this.buf.slice(start, i + 1).trim();
      if (s.length >= this.minChars && /[A-Za-z0-9]/.test(s)) {
        out.push(s);
        start = i + 1;
      } else if (s.length === 0 || !/[A-Za-z0-9]/.test(s)) {
        start = i + 1;
      }
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  /** Whatever is left (the last sentence without a trailing space). */
  end(): string | undefined {
    const s = this.buf.trim();
    this.buf = '';
    return /[A-Za-z0-9]/.test(s) ? s : undefined;
  }
}
