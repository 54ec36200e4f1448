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
import { logger } from '../ops/log.ts';
import { BufferedSttStream } from './buffer.ts';
import { buildDomainModel, defaultModelPaths, type DomainModel, type ModelPaths } from './model.ts';
import { nativeStt, type NativeSttResult } from './native.ts';
import type { SttProvider, SttResult, SttStream, SttStreamOptions, Vocabulary } from './types.ts';

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
   * Decoders kept per model for reuse (a new one costs ~10 ms and ~5 MB).
   * @defaultValue 4
   */
  poolSize?: number;
}

/** Defaults of the tunables in {@link PocketsphinxOptions}. */
export const POCKETSPHINX_DEFAULTS = Object.freeze({ minScorePerFrame: -50, shortFrames: 150, shortSlack: 6, minAudioMs: 150, poolSize: 4 });

/** Score-per-frame units over which the confidence goes from 0.27 to 0.73 around the threshold. */
const CONFIDENCE_SLOPE = 5;

/** Detail of the last decode, for tests and diagnostics. */
export interface PocketsphinxDetail extends NativeSttResult {
  scorePerFrame: number;
}

export class PocketsphinxStt implements SttProvider {
  readonly name = 'pocketsphinx';
  private readonly paths: ModelPaths;
  private readonly minScorePerFrame: number;
  private readonly minAudioMs: number;
  private readonly shortFrames: number;
  private readonly shortSlack: number;
  private readonly byVocab = new WeakMap<Vocabulary, Promise<DomainModel>>();
  private defaultModel: Promise<DomainModel> | undefined;
  private warnedLanguages = new Set<string>();

  constructor(opts: PocketsphinxOptions = {}) {
    const d = defaultModelPaths();
    this.paths = { hmm: opts.hmm ?? d.hmm, cmudict: opts.cmudict ?? d.cmudict, cacheDir: opts.cacheDir ?? d.cacheDir };
    this.minScorePerFrame = opts.minScorePerFrame ?? POCKETSPHINX_DEFAULTS.minScorePerFrame;
    this.minAudioMs = opts.minAudioMs ?? POCKETSPHINX_DEFAULTS.minAudioMs;
    this.shortFrames = opts.shortFrames ?? POCKETSPHINX_DEFAULTS.shortFrames;
    this.shortSlack = opts.shortSlack ?? POCKETSPHINX_DEFAULTS.shortSlack;
    nativeStt().setPoolSize(opts.poolSize ?? POCKETSPHINX_DEFAULTS.poolSize);
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

  async prepare(vocabulary?: Vocabulary): Promise<void> {
    const m = await this.model(vocabulary);
    await nativeStt().warm(m);
  }

  /** Decode a whole utterance; also returns the raw decoder numbers. */
  async recognize(pcm: Int16Array, sampleRate: 8000 | 16000, vocabulary?: Vocabulary): Promise<Omit<SttResult, 'ms'> & { detail?: PocketsphinxDetail }> {
    if ((pcm.length / sampleRate) * 1000 < this.minAudioMs) return { text: '', confidence: 0, inDomain: false };
    const model = await this.model(vocabulary);
    const r = await nativeStt().decode(model, pcm, sampleRate);
    const scorePerFrame = r.frames > 0 ? r.score / r.frames : -Infinity;
    const text = r.text.trim();
    const threshold = this.minScorePerFrame - (r.frames < this.shortFrames ? this.shortSlack : 0);
    const inDomain = text !== '' && scorePerFrame >= threshold;
    // confidence: logistic in the score per frame, 0.5 at the in-domain threshold
    // (the lattice posterior is too small on multi-word utterances to be useful)
    const confidence = text === '' ? 0 : 1 / (1 + Math.exp((threshold - scorePerFrame) / CONFIDENCE_SLOPE));
    log.debug('decoded', { text, scorePerFrame: Math.round(scorePerFrame), posterior: r.posterior.toFixed(3), decodeMs: r.decodeMs.toFixed(1), initMs: r.initMs.toFixed(1) });
    return { text, confidence, inDomain, detail: { ...r, scorePerFrame } };
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

class PocketsphinxStream extends BufferedSttStream {
  lastDetail?: PocketsphinxDetail;
  constructor(private readonly engine: PocketsphinxStt, private readonly opts: SttStreamOptions) {
    super(opts.sampleRate);
  }
  protected async recognize(pcm: Int16Array): Promise<Omit<SttResult, 'ms'>> {
    const { detail, ...r } = await this.engine.recognize(pcm, this.opts.sampleRate, this.opts.vocabulary);
    this.lastDetail = detail;
    return r;
  }
}
