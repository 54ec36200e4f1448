/** Text-to-speech providers: flite (local default) and OpenAI-compatible `/v1/audio/speech`. */
export type { TtsProvider, TtsOptions } from './types.ts';
export { FliteTts, FLITE_TTS_DEFAULTS, type FliteTtsOptions } from './flite.ts';
export { OpenAiTts, OPENAI_TTS_DEFAULTS, OPENAI_PCM_RATE, type OpenAiTtsOptions } from './openai.ts';
export { EspeakTts, ESPEAK_TTS_DEFAULTS, espeakVoiceProblem, spaceCodes, type EspeakTtsOptions } from './espeak.ts';
export { LanguageTts, checkTenantVoices } from './voices.ts';
export { splitSentences, spellCode, speakCodes } from './text.ts';
export { resample, resampleTs } from './resample.ts';
export { registerTts, registeredTts, createTts, ttsProblem, type TtsBuildSettings, type TtsRegistration } from './factory.ts';
export { StreamResampler } from './stream-resample.ts';

// The built-in providers (by the name the `tts.provider` setting uses); another provider
// registers the same way.
import { registerTts } from './factory.ts';
import { FliteTts } from './flite.ts';
import { OpenAiTts } from './openai.ts';
import { EspeakTts, espeakVoiceProblem } from './espeak.ts';

/** The flite voices the native addon has. */
const FLITE_VOICES = ['kal', 'kal16', 'slt', 'rms', 'awb'] as const;

registerTts('flite', {
  create: (s) => new FliteTts(s.voice ? { voice: s.voice as (typeof FLITE_VOICES)[number] } : {}),
  voiceProblem: (v) => ((FLITE_VOICES as readonly string[]).includes(v) ? null : `must be a flite voice (${FLITE_VOICES.join(', ')}), got "${v}"`),
});
registerTts('openai', {
  create: (s) => new OpenAiTts({
    ...(s.baseURL ? { baseURL: s.baseURL } : {}), apiKey: s.apiKey ?? 'none',
    ...(s.model ? { model: s.model } : {}), ...(s.voice ? { voice: s.voice } : {}),
    ...(s.timeoutMs ? { timeoutMs: s.timeoutMs } : {}), ...(s.firstAudioMs ? { firstAudioMs: s.firstAudioMs } : {}),
  }),
});
registerTts('espeak-ng', {
  create: (s) => new EspeakTts(s.voice ? { voice: s.voice } : {}),
  voiceProblem: (v) => espeakVoiceProblem(v),
});
