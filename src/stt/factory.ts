/** Speech-to-text provider by name. */
import { PocketsphinxStt, type PocketsphinxOptions } from './pocketsphinx.ts';
import { OpenAiStt, type OpenAiSttOptions } from './openai.ts';
import type { SttProvider } from './types.ts';

/** Build a provider by name ('pocketsphinx' = embedded default, 'openai'). */
export function createStt(kind: 'pocketsphinx' | 'openai' = 'pocketsphinx', opts: PocketsphinxOptions & OpenAiSttOptions = {}): SttProvider {
  return kind === 'openai' ? new OpenAiStt(opts) : new PocketsphinxStt(opts);
}
