/**
 * Stateless audio helpers of the native core: local flite TTS off the JS thread, bit-exact
 * G.711 codecs, and the scripted playout simulator for tests and offline analysis.
 */
import { native } from './native.ts';


/**
 * Inbound playout (jitter buffer + decoder + PLC) driven by scripted arrival
 * and playout instants — for tests and offline analysis, not for calls.
 */
export const PlayoutSimulator = native.PlayoutTest;

/** flite voices linked into the addon; kal is 8 kHz, the others 16 kHz. */
export type Voice = 'kal' | 'slt' | 'rms' | 'awb' | 'kal16';

/**
 * Local TTS through flite, off the JS thread. Resolves to mono PCM at
 * `sampleRate` (resampled natively when the voice's rate differs).
 * @param opts.voice  @defaultValue 'kal'
 * @param opts.sampleRate  @defaultValue 8000
 */
export function synthesize(
  text: string,
  opts: { voice?: Voice; sampleRate?: 8000 | 16000 } = {},
): Promise<Int16Array> {
  return native.synthesize(text, opts.voice ?? 'kal', opts.sampleRate ?? 8000);
}

/** ITU-T G.711 µ-law encode (bit-exact with the G.191 reference). */
export function ulawEncode(pcm: Int16Array): Uint8Array {
  return native.ulawEncode(pcm);
}
export function ulawDecode(b: Uint8Array): Int16Array {
  return native.ulawDecode(b);
}
/** ITU-T G.711 A-law encode (bit-exact with the G.191 reference). */
export function alawEncode(pcm: Int16Array): Uint8Array {
  return native.alawEncode(pcm);
}
export function alawDecode(b: Uint8Array): Int16Array {
  return native.alawDecode(b);
}
