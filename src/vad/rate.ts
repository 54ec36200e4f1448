/**
 * The Silero model rate, `VOICE_VAD_RATE`. Its own module (no onnxruntime import) so the
 * turn-taking policy can pick its rate-specific defaults without loading the model runtime.
 */

/** Rates Silero VAD v5 accepts. */
export type VadSampleRate = 8000 | 16000;

/** The rate used when `VOICE_VAD_RATE` is unset or empty. */
export const DEFAULT_VAD_SAMPLE_RATE: VadSampleRate = 8000;

/**
 * The model rate from `VOICE_VAD_RATE` (8000 or 16000; unset or empty = 8000). The media
 * thread (native/vad/frame_cutter.cc) reads the same variable for the windows it cuts.
 * Throws naming the variable on anything else.
 *
 * 8000 is the default: the calls arrive as 8 kHz G.711, so the model is fed them as they are
 * (no upsampling per call) and it costs ~0.56x the CPU per stream-second of the 16 kHz mode;
 * on two cores that is the difference between shedding VAD hand-overs at 800 calls or not
 * (src/vad/README.md, "Silero at 8 kHz").
 * @defaultValue 8000
 */
export function vadSampleRate(env: NodeJS.ProcessEnv = process.env): VadSampleRate {
  const raw = env.VOICE_VAD_RATE?.trim();
  if (raw === undefined || raw === '') return DEFAULT_VAD_SAMPLE_RATE;
  if (raw === '8000') return 8000;
  if (raw === '16000') return 16000;
  throw new Error(`VOICE_VAD_RATE must be 8000 or 16000, got '${env.VOICE_VAD_RATE}'`);
}
