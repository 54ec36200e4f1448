/**
 * Loader of the local speech-to-text addon `build/Release/voice_stt.node` (sources in
 * `native/stt/`, linked against Debian's libpocketsphinx). Decoding runs on libuv worker
 * threads; each call takes a decoder from a native pool keyed by model files.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeSttModel { hmm: string; lm: string; dict: string }

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
}

export interface NativeStt {
  decode(model: NativeSttModel, pcm: Int16Array, rate: 8000 | 16000): Promise<NativeSttResult>;
  warm(model: NativeSttModel): Promise<void>;
  setPoolSize(n: number): void;
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
