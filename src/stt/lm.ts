/**
 * Trigram language model builder: interpolated Witten-Bell smoothing written out in ARPA
 * back-off form (Debian ships no LM builder; pocketsphinx reads ARPA or, after
 * `sphinx_lm_convert`, its binary form).
 *
 *   P(w | h) = (c(h w) + T(h) · P(w | h')) / (c(h) + T(h))
 *
 * where T(h) is the number of distinct words seen after h and h' is h without its oldest
 * word. Unigrams interpolate with a uniform distribution over the vocabulary. Each seen
 * n-gram stores its interpolated probability; the back-off weight of history h is
 * α(h) = (1 − Σ_seen P(w|h)) / (1 − Σ_seen P(w|h')), so unseen words get α(h)·P(w|h').
 */

const BOS = '<s>';
const EOS = '</s>';

export interface ArpaOptions {
  /** Order of the model (1–3). @defaultValue 3 */
  order?: 1 | 2 | 3;
}

function log10(x: number): string {
  return (x > 0 ? Math.log10(x) : -99).toFixed(6);
}

/**
 * Build an ARPA language model from tokenised sentences (each a list of words, no `<s>`).
 * Words must not contain spaces. Deterministic: the same input gives the same bytes.
 */
export function buildArpa(sentences: ReadonlyArray<readonly string[]>, opts: ArpaOptions = {}): string {
  const order = opts.order ?? 3;
  // counts[n-1]: map "w1 w2 .. wn" → count
  const counts: Array<Map<string, number>> = [new Map(), new Map(), new Map()];
  for (const s of sentences) {
    if (s.length === 0) continue;
    const toks = [BOS, ...s, EOS];
    for (let i = 0; i < toks.length; i++) {
      for (let n = 1; n <= order; n++) {
        if (i - n + 1 < 0) break;
        const g = toks.slice(i - n + 1, i + 1);
        if (n === 1 && g[0] === BOS) continue; // <s> is never predicted
        const k = g.join(' ');
        counts[n - 1]!.set(k, (counts[n - 1]!.get(k) ?? 0) + 1);
      }
    }
  }
  // history statistics: c(h) (as a history) and T(h)
  const histCount: Array<Map<string, number>> = [new Map(), new Map(), new Map()];
  const histTypes: Array<Map<string, number>> = [new Map(), new Map(), new Map()];
  for (let n = 2; n <= order; n++) {
    for (const [k, c] of counts[n - 1]!) {
      const h = k.slice(0, k.lastIndexOf(' '));
      histCount[n - 1]!.set(h, (histCount[n - 1]!.get(h) ?? 0) + c);
      histTypes[n - 1]!.set(h, (histTypes[n - 1]!.get(h) ?? 0) + 1);
    }
  }
  const uni = counts[0]!;
  const vocab = [...uni.keys()].sort();
  const total = [...uni.values()].reduce((a, b) => a + b, 0);
  const V = vocab.length;
  // Witten-Bell against a uniform 1/V with T = V (every word was seen) = add-one
  const pUni = (w: string): number => ((uni.get(w) ?? 0) + 1) / (total + V);
  // interpolated probability of w after history words `h` (array, possibly empty)
  const memo = new Map<string, number>();
  const prob = (h: readonly string[], w: string): number => {
    if (h.length === 0) return pUni(w);
    const key = `${h.join(' ')}|${w}`;
    const m = memo.get(key);
    if (m !== undefined) return m;
    const hk = h.join(' ');
    const n = h.length + 1;
    const lower = prob(h.slice(1), w);
    const ch = histCount[n - 1]!.get(hk) ?? 0;
    const t = histTypes[n - 1]!.get(hk) ?? 0;
    const p = ch === 0 ? lower : ((counts[n - 1]!.get(`${hk} ${w}`) ?? 0) + t * lower) / (ch + t);
    memo.set(key, p);
    return p;
  };
  // followers of each history, to compute back-off weights
  const followers: Array<Map<string, string[]>> = [new Map(), new Map(), new Map()];
  for (let n = 2; n <= order; n++) {
    for (const k of counts[n - 1]!.keys()) {
      const i = k.lastIndexOf(' ');
      const h = k.slice(0, i);
      const f = followers[n - 1]!.get(h);
      if (f) f.push(k.slice(i + 1));
      else followers[n - 1]!.set(h, [k.slice(i + 1)]);
    }
  }
  const backoff = (hk: string): number | undefined => {
    const h = hk.split(' ');
    const n = h.length + 1;
    if (n > order) return undefined;
    const f = followers[n - 1]!.get(hk);
    if (!f) return undefined;
    let num = 1;
    let den = 1;
    for (const w of f) {
      num -= prob(h, w);
      den -= prob(h.slice(1), w);
    }
    return den > 1e-12 && num > 0 ? num / den : 1e-9;
  };

  const lines: string[] = ['\\data\\'];
  const ngramLists: string[][] = [];
  ngramLists.push([BOS, ...vocab]);
  for (let n = 2; n <= order; n++) ngramLists.push([...counts[n - 1]!.keys()].sort());
  ngramLists.forEach((l, i) => lines.push(`ngram ${i + 1}=${l.length}`));
  for (let n = 1; n <= order; n++) {
    lines.push('', `\\${n}-grams:`);
    for (const k of ngramLists[n - 1]!) {
      const ws = k.split(' ');
      const p = n === 1 && k === BOS ? 0 : prob(ws.slice(0, -1), ws[ws.length - 1]!);
      const bo = n < order ? backoff(k) : undefined;
      lines.push(`${n === 1 && k === BOS ? '-99.000000' : log10(p)}\t${k}${bo !== undefined ? `\t${log10(bo)}` : ''}`);
    }
  }
  lines.push('', '\\end\\', '');
  return lines.join('\n');
}
