/**
 * TypeScript face of the native media core (`native/`, built to
 * `build/Release/voice_core.node`).
 *
 * One {@link MediaEngine} per process owns the native media thread: every RTP
 * socket, the 20 ms send clock and the decoding of inbound audio live there.
 * JS pushes 8 kHz PCM with {@link MediaSession.play} and receives decoded
 * inbound PCM in batches ('audio' events). JS timers never pace audio.
 *
 * engine.ts  MediaEngine: the media thread, session table, batched VAD hand-overs
 * session.ts MediaSession: one RTP endpoint, its options, stats and events
 * audio.ts   flite TTS, G.711 codecs, the playout simulator
 */
export {
  MediaEngine, MEDIA_ENGINE_DEFAULTS, mediaRtPriority,
  type MediaEngineOptions, type MediaVadStats, type PacingStats,
} from './engine.ts';
export {
  MediaSession, supportedCodecs, JITTER_DEFAULTS, parseOpusFmtp,
  type MediaDirection, type MediaCodec, type JitterOptions, type SessionOptions, type OpusFmtp,
  type JitterStats, type RtcpStats, type DtmfEvent, type SessionStats, type TurnEventInfo,
  type MediaSessionEvents, type SessionHost, type SrtpSuite, type SrtpKeys,
} from './session.ts';
export { PlayoutSimulator, synthesize, ulawEncode, ulawDecode, alawEncode, alawDecode, type Voice } from './audio.ts';
