/**
 * Speech-to-text providers. `createStt()` picks the local pocketsphinx engine unless an
 * OpenAI-compatible endpoint is asked for.
 */
export type { SttProvider, SttStream, SttStreamOptions, SttResult, Vocabulary } from './types.ts';
export { PocketsphinxStt, POCKETSPHINX_DEFAULTS, type PocketsphinxOptions } from './pocketsphinx.ts';
export { OpenAiStt, OPENAI_STT_DEFAULTS, type OpenAiSttOptions } from './openai.ts';
export { AbortError, MAX_UTTERANCE_S } from './buffer.ts';
import { PocketsphinxStt, type PocketsphinxOptions } from './pocketsphinx.ts';
import { OpenAiStt, type OpenAiSttOptions } from './openai.ts';
import type { SttProvider } from './types.ts';

/** Build a provider by name ('pocketsphinx' = embedded default, 'openai'). */
export function createStt(kind: 'pocketsphinx' | 'openai' = 'pocketsphinx', opts: PocketsphinxOptions & OpenAiSttOptions = {}): SttProvider {
  return kind === 'openai' ? new OpenAiStt(opts) : new PocketsphinxStt(opts);
}
