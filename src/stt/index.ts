/**
 * Speech-to-text providers. `createStt()` picks the local pocketsphinx engine unless an
 * OpenAI-compatible endpoint is asked for.
 */
export type { SttProvider, SttStream, SttStreamOptions, SttResult, Vocabulary } from './types.ts';
export { PocketsphinxStt, POCKETSPHINX_DEFAULTS, type PocketsphinxOptions } from './pocketsphinx.ts';
export { OpenAiStt, OPENAI_STT_DEFAULTS, type OpenAiSttOptions } from './openai.ts';
export { AbortError, MAX_UTTERANCE_S } from './buffer.ts';
export { createStt } from './factory.ts';
