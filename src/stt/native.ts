/**
 * Loader of the local speech-to-text addon `build/Release/voice_stt.node` (sources in
 * `native/stt/`, linked against Debian's libpocketsphinx). Decoding runs on libuv worker
 * threads; each call takes a decoder from a native pool keyed by model files (one entry per
 * tenant and dialogue state: the open-domain LM and each state's grammar or LM).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Files one decoder is built from: a trigram LM, or (when `jsgf` is set) a JSGF grammar. */
export interface NativeSttModel { hmm: string; lm: string; dict: string; jsgf?: string }

/** One word of the best path. */
export interface NativeSttWord {
  word: string;
  /** 10 ms frames, inclusive */
  start: number;
  end: number;
  /** lattice word posterior, 0..1 */
  posterior: number;
  /** acoustic score of the word (log base 1.0001) */
  ascr: number;
  /** the strongest other word of the lattice at the word's middle frame, and its posterior */
  alt?: string;
  altPosterior?: number;
}

export interface NativeSttResult {
  text: string;
  /** best path score (log base 1.0001) */
  score: number;
  /** acoustic / language parts of the best path */
  ascr: number;
  lscr: number;
  /** 10 ms frames */
  frames: number;
  /** lattice posterior of the hypothesis, 0..1 */
  posterior: number;
  decodeMs: number;
  /** time spent building a decoder for this call (0 = pooled one reused) */
  initMs: number;
  /** best path word by word, fillers (`<sil>`, `[NOISE]`, `<s>`, `</s>`) included */
  words: NativeSttWord[];
  /** distinct hypotheses from the lattice (A* n-best), best first, when asked for */
  nbest: Array<{ text: string; score: number }>;
  /**
   * N-gram decodes: the lattice's word links with posterior ≥ 0.005 (fillers left out), as
   * parallel arrays — to score another decode's words against this lattice. Empty for grammars.
   */
  links: { word: string[]; start: Int32Array; end: Int32Array; posterior: Float64Array };
}

export interface NativeStt {
  decode(model: NativeSttModel, pcm: Int16Array, rate: 8000 | 16000, nbest?: number): Promise<NativeSttResult>;
  warm(model: NativeSttModel): Promise<void>;
  /** Idle decoders kept per model. */
  setPoolSize(n: number): void;
  /** Idle decoders kept over all models (tenants × states). */
  setMaxIdleTotal(n: number): void;
  idleDecoders(): number;
}

export const sttAddonPath = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'voice_stt.node');

let loaded: NativeStt | undefined;

/** The addon, loaded on first use (so importing this module never fails on a box without it). */
export function nativeStt(): NativeStt {
  if (loaded) return loaded;
  if (!existsSync(sttAddonPath)) {
    throw new Error(`speech-to-text addon not built: ${sttAddonPath} is missing. Install the Debian packages ` +
      'libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us sphinxbase-utils and run `make` (node-gyp rebuild)');
  }
  loaded = createRequire(import.meta.url)(sttAddonPath) as NativeStt;
  return loaded;
}
