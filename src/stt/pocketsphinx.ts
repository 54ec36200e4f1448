/**
 * Local speech-to-text (the embedded default): Debian's pocketsphinx, linked natively
 * (`voice_stt` addon), with a per-tenant domain trigram LM and small dictionary
 * (see model.ts). The utterance is buffered and decoded as a whole after end of speech
 * (full-utterance CMN, which is what works on upsampled telephone audio); 8 kHz audio is
 * upsampled to 16 kHz natively with the polyphase resampler. Decoding runs off the JS
 * thread on a pooled decoder (~5 MB each). No partials are emitted.
 *
 * Off-topic speech is always mapped onto in-domain words by a domain LM; the best-path
 * score per 10 ms frame separates it, and sets `inDomain`.
 */
import { readFile } from 'node:fs/promises';
import { logger } from '../ops/log.ts';
import { BufferedSttStream } from './buffer.ts';
import { GRAMMAR_STATES } from './grammar.ts';
import { buildDomainModel, buildStateModel, defaultModelPaths, type DomainModel, type ModelPaths, type StateModelKind } from './model.ts';
import { nativeStt, type NativeSttResult } from './native.ts';
import type { Expectation, SttProvider, SttResult, SttStream, SttStreamOptions, Vocabulary } from './types.ts';

const log = logger('stt');

export interface PocketsphinxOptions extends Partial<ModelPaths> {
  /**
   * Utterances whose best-path score per frame is below this are flagged `inDomain: false`.
   * (The score is the decoder's best-path log score, scaled as pocketsphinx reports it.)
   * Measured on flite voices through G.711 (test/unit/stt-pocketsphinx.test.ts): in-domain
   * call phrases score about −25 to −45 per frame, off-topic sentences about −50 to −70.
   * One- and two-word answers score lower and overlap with off-topic words, so utterances
   * shorter than {@link PocketsphinxOptions.shortFrames} get {@link PocketsphinxOptions.shortSlack} more room.
   * @defaultValue -50
   */
  minScorePerFrame?: number;
  /**
   * Length (10 ms frames) below which an utterance counts as short for the in-domain test.
   * @defaultValue 150
   */
  shortFrames?: number;
  /**
   * How much lower (score per frame) the in-domain threshold is for short utterances.
   * @defaultValue 6
   */
  shortSlack?: number;
  /**
   * Utterances shorter than this (ms of audio) are returned empty without decoding.
   * @defaultValue 150
   */
  minAudioMs?: number;
  /**
   * Decoders kept per model for reuse (a new one costs ~10 ms and ~5 MB). Each tenant has
   * one model per dialogue state (the open LM and each state grammar).
   * @defaultValue 4
   */
  poolSize?: number;
  /**
   * Idle decoders kept over all tenants and states (~5 MB each).
   * @defaultValue 48
   */
  maxIdleDecoders?: number;
  /**
   * How an utterance whose stream says what the agent asked for (`expect` other than
   * 'open', 'message', 'name') is decoded: 'jsgf' (a JSGF grammar of the state, FSG search),
   * 'lm' (a trigram LM sampled from the same grammar) or 'off' (the open model always);
   * one for all states or per state (states left out keep their default).
   * @defaultValue {@link STATE_MODEL_DEFAULTS} (chosen per state by bench stt-grammars)
   */
  stateModels?: StateModelKind | 'off' | Partial<Record<Expectation, StateModelKind | 'off'>>;
  /**
   * Also decode a state utterance with the open model (in parallel, on another worker
   * thread): its lattice scores the grammar's words (confidence), and when the grammar has
   * no answer or one the open model does not support ({@link PocketsphinxOptions.minSupport}),
   * the open transcript is returned (grammar 'open'), so an answer outside the grammar
   * ("actually, where is my order?") is not forced into it.
   * @defaultValue true
   */
  verifyWithOpen?: boolean;
  /**
   * A state answer whose weakest word has less lattice support than this in the open
   * model's decode of the same audio (summed posterior of that word around the same
   * frames) is replaced by the open transcript when that one is in-domain with a confidence
   * of at least {@link PocketsphinxOptions.openOverride}: the caller said something the
   * state grammar does not cover.
   * @defaultValue 0.1
   */
  minSupport?: number;
  /**
   * Confidence the open transcript needs to replace an unsupported state answer.
   * @defaultValue 0.6
   */
  openOverride?: number;
  /**
   * Hypotheses taken from the lattice (A* n-best) for `alternatives`.
   * @defaultValue 5
   */
  nbest?: number;
  /**
   * A second reading of an open turn that sounds like a reorder (order words, number words or
   * spelled letters, and no status, message or person words): the same audio decoded with the
   * 'order' grammar (lead-in, quantity, the tenant's part numbers, the account's first) and
   * put first in `alternatives`, so the agent can find a catalogue part the open model
   * garbled ("h x oh oh one three oh") — as an alternative it is always confirmed on its own.
   * Costs one more grammar decode, after the open one, on those turns only.
   * @defaultValue true
   */
  orderReading?: boolean;
}

/**
 * Which model decodes each state by default, by measurement (bench stt-grammars: 66
 * answers × 4 espeak-ng + 2 flite voices, G.711, clean and 15 dB; slot accuracy open → JSGF
 * / state LM, clean): JSGF where the answer is a closed set — SKU 37 → 70 / 42 %, quantity
 * 50 → 63 / 47 %, department 26 → 57 / 55 %, yes/no 76 → 87 / 87 %; a state LM for PO and
 * order numbers (27 → 10 / 44 %: the JSGF's free letter/number loop confuses); the open
 * model for digit strings (21 % open, 17 % either state model; 15 dB: 42 % against 29 / 21 %).
 */
export const STATE_MODEL_DEFAULTS: Readonly<Partial<Record<Expectation, StateModelKind | 'off'>>> = Object.freeze({
  // the checks are the yes/no grammar with corrections (a part, a quantity): JSGF like yes/no
  yesno: 'jsgf', check_part: 'jsgf', check_qty: 'jsgf', quantity: 'jsgf', sku: 'jsgf', department: 'jsgf', po: 'lm', digits: 'off',
});

/** Defaults of the tunables in {@link PocketsphinxOptions}. */
export const POCKETSPHINX_DEFAULTS = Object.freeze({
  minScorePerFrame: -50, shortFrames: 150, shortSlack: 6, minAudioMs: 150, poolSize: 4, maxIdleDecoders: 48,
  verifyWithOpen: true, minSupport: 0.1, openOverride: 0.6, nbest: 5, orderReading: true,
});

/** An open transcript that may be a garbled reorder request: order words, number words, or two spelled letters. */
const REORDER_CUE = /\b(reorder|order|need|want|like|send|get|give|buy|boxes|cases|lengths|units|of|zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)\b|\b[a-z]\b.*\b[a-z]\b/;
/** …unless it names another lane. */
const OTHER_LANE = /\b(where|status|track|tracking|shipped|delivery|message|call me back|callback|person|representative|agent|operator|human|billing|invoice|returns?|purchase order|price|terms|complaint|bye|goodbye|that's all|that is all)\b/;

/** Score-per-frame units over which the confidence goes from 0.27 to 0.73 around the threshold. */
const CONFIDENCE_SLOPE = 5;

/** Detail of the last decode, for tests and diagnostics. */
export interface PocketsphinxDetail extends NativeSttResult {
  scorePerFrame: number;
  /** state decodes: lattice support of the grammar's weakest word in the open decode */
  support?: number;
  /** the state whose grammar answer was rejected for the open model's */
  rejected?: string;
  /** state decodes: the open model's decode of the same audio */
  open?: NativeSttResult;
  /** open decodes that sounded like a reorder: the 'order' grammar's decode of the same audio */
  order?: NativeSttResult;
}

export class PocketsphinxStt implements SttProvider {
  readonly name = 'pocketsphinx';
  private readonly paths: ModelPaths;
  private readonly minScorePerFrame: number;
  private readonly minAudioMs: number;
  private readonly shortFrames: number;
  private readonly shortSlack: number;
  private readonly stateModels: Partial<Record<Expectation, StateModelKind | 'off'>>;
  private readonly verifyWithOpen: boolean;
  private readonly minSupport: number;
  private readonly openOverride: number;
  private readonly nbest: number;
  private readonly orderReading: boolean;
  private readonly byVocab = new WeakMap<Vocabulary, Promise<DomainModel>>();
  private readonly statesByVocab = new WeakMap<Vocabulary, Map<string, Promise<DomainModel | undefined>>>();
  private readonly statesNoVocab = new Map<string, Promise<DomainModel | undefined>>();
  private defaultModel: Promise<DomainModel> | undefined;
  private warnedLanguages = new Set<string>();

  constructor(opts: PocketsphinxOptions = {}) {
    const d = defaultModelPaths();
    const D = POCKETSPHINX_DEFAULTS;
    this.paths = { hmm: opts.hmm ?? d.hmm, cmudict: opts.cmudict ?? d.cmudict, cacheDir: opts.cacheDir ?? d.cacheDir };
    this.minScorePerFrame = opts.minScorePerFrame ?? D.minScorePerFrame;
    this.minAudioMs = opts.minAudioMs ?? D.minAudioMs;
    this.shortFrames = opts.shortFrames ?? D.shortFrames;
    this.shortSlack = opts.shortSlack ?? D.shortSlack;
    const sm = opts.stateModels;
    this.stateModels = typeof sm === 'string'
      ? Object.fromEntries(GRAMMAR_STATES.map((e) => [e, sm]))
      : { ...STATE_MODEL_DEFAULTS, ...(sm ?? {}) };
    this.verifyWithOpen = opts.verifyWithOpen ?? D.verifyWithOpen;
    this.minSupport = opts.minSupport ?? D.minSupport;
    this.openOverride = opts.openOverride ?? D.openOverride;
    this.nbest = opts.nbest ?? D.nbest;
    this.orderReading = opts.orderReading ?? D.orderReading;
    nativeStt().setPoolSize(opts.poolSize ?? D.poolSize);
    nativeStt().setMaxIdleTotal(opts.maxIdleDecoders ?? D.maxIdleDecoders);
  }

  /** The domain model of a vocabulary (built once per vocabulary object; cached on disk). */
  model(vocab?: Vocabulary): Promise<DomainModel> {
    if (!vocab) return (this.defaultModel ??= buildDomainModel({}, this.paths));
    let p = this.byVocab.get(vocab);
    if (!p) {
      p = buildDomainModel(vocab, this.paths);
      p.catch(() => this.byVocab.delete(vocab));
      this.byVocab.set(vocab, p);
    }
    return p;
  }

  /**
   * The model of one dialogue state for a vocabulary (built once per vocabulary object,
   * state and history SKU set; cached on disk), or undefined when the state is decoded with
   * the open model ('open', 'message', 'name', or `stateModels: 'off'`).
   */
  stateModel(expect: Expectation | undefined, vocab?: Vocabulary, history?: ReadonlyArray<{ sku: string }>, kindOverride?: StateModelKind | 'off'): Promise<DomainModel | undefined> {
    if (!expect || (!GRAMMAR_STATES.includes(expect) && expect !== 'order')) return Promise.resolve(undefined);
    const kind = kindOverride ?? (expect === 'order' ? 'jsgf' : this.stateModels[expect]) ?? 'off';
    if (kind === 'off') return Promise.resolve(undefined);
    // only the grammars with part numbers weigh the history
    const hist = (expect === 'sku' || expect === 'order' || expect === 'check_part') && history?.length ? [...new Set(history.map((h) => h.sku.toUpperCase()))].sort() : [];
    const key = `${kind}|${expect}|${hist.join(',')}`;
    let m = vocab ? this.statesByVocab.get(vocab) : this.statesNoVocab;
    if (!m) {
      m = new Map();
      this.statesByVocab.set(vocab!, m);
    }
    let p = m.get(key);
    if (!p) {
      const cache = m;
      p = buildStateModel(expect, vocab, hist.map((sku) => ({ sku })), kind, this.paths);
      p.catch(() => cache.delete(key));
      cache.set(key, p);
    }
    return p;
  }

  async prepare(vocabulary?: Vocabulary): Promise<void> {
    const m = await this.model(vocabulary);
    await nativeStt().warm(m);
    // state grammars: built on disk now; their decoders are made on first use (~10 ms each)
    await Promise.all(GRAMMAR_STATES.map((e) => this.stateModel(e, vocabulary)));
    // (the history-weighted SKU grammar of an account is built on its first SKU question)
  }

  /** Decode a whole utterance; also returns the raw decoder numbers. */
  async recognize(
    pcm: Int16Array, sampleRate: 8000 | 16000, vocabulary?: Vocabulary,
    state: { expect?: Expectation; history?: ReadonlyArray<{ sku: string }>; stateModels?: StateModelKind | 'off' } = {},
  ): Promise<Omit<SttResult, 'ms'> & { detail?: PocketsphinxDetail }> {
    if ((pcm.length / sampleRate) * 1000 < this.minAudioMs) return { text: '', confidence: 0, inDomain: false };
    const [open, st] = await Promise.all([this.model(vocabulary), this.stateModel(state.expect, vocabulary, state.history, state.stateModels)]);
    const decode = (m: DomainModel): Promise<NativeSttResult> =>
      nativeStt().decode({ hmm: m.hmm, lm: m.lm, dict: m.dict, ...(m.jsgf ? { jsgf: m.jsgf } : {}) }, pcm, sampleRate, this.nbest);
    if (!st) {
      const r = this.openResult(await decode(open));
      if (!this.orderReading || (state.expect && state.expect !== 'open') || !vocabulary?.skus?.length) return r;
      if (!r.text || !REORDER_CUE.test(r.text) || OTHER_LANE.test(r.text)) return r;
      const om = await this.stateModel('order', vocabulary, state.history);
      if (!om) return r;
      const g = await decode(om);
      const gText = g.text.trim();
      if (!gText || gText === r.text || (r.alternatives ?? []).some((a) => a.text === gText)) return r;
      log.debug('order reading of an open turn', { open: r.text, order: gText, decodeMs: g.decodeMs.toFixed(1) });
      // as sure as the open reading, so the agent weighs it; it is confirmed on its own there
      return { ...r, alternatives: [{ text: gText, confidence: r.confidence, grammar: 'order' }, ...(r.alternatives ?? [])], detail: { ...r.detail, order: g } };
    }
    const [g, o] = await Promise.all([decode(st), this.verifyWithOpen ? decode(open) : Promise.resolve(undefined)]);
    const gText = g.text.trim();
    const openR = o ? this.openResult(o) : undefined;
    // How well the open model's lattice supports the grammar's words at the same frames
    // (the weakest word's summed link posterior): near 1 when the open model heard the
    // same words, near 0 when the grammar forced its vocabulary onto something else.
    const support = o ? latticeSupport(g, o, await this.dictWords(open)) : 1;
    const gWordConf = wordConfidence(g); // LM state models have lattice posteriors; grammars 1
    const confidence = gText === '' ? 0 : Math.min(gWordConf, SUPPORT_FLOOR + (1 - SUPPORT_FLOOR) * support);
    // the open model overrides the grammar only when it is itself confident: on voices far
    // from the acoustic model the open lattice often misses right grammar answers
    const outOfGrammar = openR !== undefined && openR.text !== '' && openR.text !== gText &&
      (gText === '' || (support < this.minSupport && openR.inDomain && openR.confidence >= this.openOverride));
    if (openR && (gText === '' || outOfGrammar)) {
      const alts = [...(openR.alternatives ?? [])];
      if (gText && !alts.some((a) => a.text === gText)) alts.push({ text: gText, confidence });
      log.debug('state grammar answer not kept', { state: state.expect, grammar: gText, open: openR.text, support: support.toFixed(2) });
      return { ...openR, ...(alts.length ? { alternatives: alts } : {}), detail: { ...openR.detail, support, rejected: st.state ?? state.expect ?? '' } };
    }
    const alternatives = nbestAlternatives(g, confidence);
    if (openR && openR.text && openR.text !== gText && !alternatives.some((a) => a.text === openR.text)) {
      alternatives.push({ text: openR.text, confidence: Math.min(openR.confidence, confidence) });
    }
    const scorePerFrame = g.frames > 0 ? g.score / g.frames : -Infinity;
    log.debug('decoded', { state: st.state, text: gText, support: support.toFixed(2), confidence: confidence.toFixed(2), decodeMs: g.decodeMs.toFixed(1), initMs: g.initMs.toFixed(1) });
    return {
      text: gText, confidence, inDomain: gText !== '', grammar: st.state ?? state.expect ?? 'open',
      ...(alternatives.length ? { alternatives } : {}),
      detail: { ...g, scorePerFrame, support, ...(o ? { open: o } : {}) },
    };
  }

  private readonly dictCache = new Map<string, Set<string>>();
  /** Words of a model's dictionary (to tell "the open model could not say it" from "did not hear it"). */
  private async dictWords(m: DomainModel): Promise<Set<string>> {
    let d = this.dictCache.get(m.dict);
    if (!d) {
      const text = await readFile(m.dict, 'utf8');
      d = new Set(text.split('\n').map((l) => l.slice(0, l.indexOf(' ')).replace(/\(\d+\)$/, '')).filter((w) => w));
      this.dictCache.set(m.dict, d);
    }
    return d;
  }

  private openResult(r: NativeSttResult): Omit<SttResult, 'ms'> & { detail: PocketsphinxDetail } {
    const scorePerFrame = r.frames > 0 ? r.score / r.frames : -Infinity;
    const text = r.text.trim();
    const threshold = this.minScorePerFrame - (r.frames < this.shortFrames ? this.shortSlack : 0);
    const inDomain = text !== '' && scorePerFrame >= threshold;
    // confidence: logistic in the score per frame, 0.5 at the in-domain threshold, times
    // the weakest content word's lattice posterior
    const confidence = text === '' ? 0 : (1 / (1 + Math.exp((threshold - scorePerFrame) / CONFIDENCE_SLOPE))) * wordConfidence(r);
    const alternatives = nbestAlternatives(r, confidence);
    log.debug('decoded', { state: 'open', text, scorePerFrame: Math.round(scorePerFrame), posterior: r.posterior.toFixed(3), decodeMs: r.decodeMs.toFixed(1), initMs: r.initMs.toFixed(1) });
    return { text, confidence, inDomain, grammar: 'open', ...(alternatives.length ? { alternatives } : {}), detail: { ...r, scorePerFrame } };
  }

  createStream(opts: SttStreamOptions): SttStream & { lastDetail?: PocketsphinxDetail } {
    const lang = (opts.language ?? 'en-US').toLowerCase();
    if (!lang.startsWith('en') && !this.warnedLanguages.has(lang)) {
      this.warnedLanguages.add(lang);
      log.warn('pocketsphinx has only the en-US model; configure an OpenAI-compatible STT for this language', { language: opts.language });
    }
    return new PocketsphinxStream(this, opts);
  }
}

const FILLER = /^(<s>|<\/s>|<sil>|\(NULL\)|\[[a-z_]+\]|\+\+.*\+\+|\+[a-z]+\+)$/i;

/** Weakest lattice posterior of the words of the best path (fillers skipped); 1 without words. */
function wordConfidence(r: NativeSttResult): number {
  let min = 1;
  for (const w of r.words) if (!FILLER.test(w.word)) min = Math.min(min, w.posterior);
  return Math.max(0, Math.min(1, min));
}

/** Confidence of a state answer with no support at all in the open lattice. */
const SUPPORT_FLOOR = 0.05;
/** Support given to a word the open model's dictionary does not have. */
const UNKNOWN_SUPPORT = 0.5;

/**
 * Support of the words of `g` (best path) in the lattice of `o`: for each word, the summed
 * posterior of `o`'s links of the same word that span its middle frame (±3 frames); the
 * weakest word's. 1 when `g` has no words.
 */
export function latticeSupport(g: NativeSttResult, o: NativeSttResult, openWords: ReadonlySet<string>): number {
  const L = o.links;
  let min = 1;
  for (const w of g.words) {
    if (FILLER.test(w.word)) continue;
    const base = w.word.replace(/\(\d+\)$/, '');
    if (!openWords.has(base)) {
      min = Math.min(min, UNKNOWN_SUPPORT);
      continue;
    }
    const mid = (w.start + w.end) >> 1;
    let best = 0;
    for (const m of [mid, mid - 3, mid + 3]) {
      let sum = 0;
      for (let i = 0; i < L.word.length; i++) if (L.word[i] === base && L.start[i]! <= m && m <= L.end[i]!) sum += L.posterior[i]!;
      best = Math.max(best, sum);
    }
    min = Math.min(min, best);
  }
  return Math.max(0, Math.min(1, min));
}

/**
 * n-best path scores → relative weights: log base 1.0001 to natural log, times the senone
 * score shift (2^10: the A* path scores are in the decoder's shifted units) over the
 * acoustic scale of pocketsphinx's posteriors (-ascale 20). So a hypothesis 100 units below
 * the best weighs ×0.6, 500 below ×0.08.
 */
const LN_B = Math.log(1.0001);
const NBEST_SCALE = 1024 / 20;

/**
 * The other n-best hypotheses, best first, each with a confidence: the best one's times the
 * hypothesis' share of the n-best (path scores scaled as the lattice posteriors are).
 */
function nbestAlternatives(r: NativeSttResult, top: number): Array<{ text: string; confidence: number }> {
  const best = r.text.trim();
  const list = r.nbest.filter((h) => h.text.trim() !== '');
  if (list.length === 0) return [];
  const s0 = Math.max(...list.map((h) => h.score));
  const w = list.map((h) => Math.exp((h.score - s0) * LN_B * NBEST_SCALE));
  const sum = w.reduce((a, b) => a + b, 0);
  const bestShare = (list.findIndex((h) => h.text.trim() === best) >= 0 ? w[list.findIndex((h) => h.text.trim() === best)]! : w[0]!) / sum;
  const out: Array<{ text: string; confidence: number }> = [];
  list.forEach((h, i) => {
    const t = h.text.trim();
    if (t === best || out.some((a) => a.text === t)) return;
    out.push({ text: t, confidence: bestShare > 0 ? Math.min(top, (top * w[i]!) / sum / bestShare) : 0 });
  });
  return out;
}

class PocketsphinxStream extends BufferedSttStream {
  lastDetail?: PocketsphinxDetail;
  constructor(private readonly engine: PocketsphinxStt, private readonly opts: SttStreamOptions) {
    super(opts.sampleRate);
  }
  protected async recognize(pcm: Int16Array): Promise<Omit<SttResult, 'ms'>> {
    const { detail, ...r } = await this.engine.recognize(pcm, this.opts.sampleRate, this.opts.vocabulary, {
      ...(this.opts.expect ? { expect: this.opts.expect } : {}),
      ...(this.opts.history ? { history: this.opts.history } : {}),
    });
    this.lastDetail = detail;
    return r;
  }
}
