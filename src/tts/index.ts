/** Text-to-speech providers: flite (local default) and OpenAI-compatible `/v1/audio/speech`. */
export type { TtsProvider, TtsOptions } from './types.ts';
export { FliteTts, FLITE_TTS_DEFAULTS, type FliteTtsOptions } from './flite.ts';
export { OpenAiTts, OPENAI_TTS_DEFAULTS, OPENAI_PCM_RATE, type OpenAiTtsOptions } from './openai.ts';
export { splitSentences, spellCode, speakCodes } from './text.ts';
export { resample, resampleTs } from './resample.ts';
