/**
 * Loader and raw types of the native addon `build/Release/voice_core.node`
 * (sources in `native/`). Application code uses `./index.ts`; tests may use
 * the raw binding for internals (resampler, RTP parser).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One event delivered by the media thread (batched, one JS call per batch). */
export type NativeEvent =
  | { id: number; type: 'audio'; pcm: Int16Array }
  | { id: number; type: 'playoutDone' }
  | { id: number; type: 'latched'; address: string; port: number }
  | { id: number; type: 'dtmfStart'; digit: string }
  | { id: number; type: 'dtmf'; digit: string; durationMs: number }
  /** Every 32 ms: the VAD windows (576 floats each at 16 kHz) of all VAD sessions; id is 0. An id may repeat. */
  | { id: number; type: 'vad'; ids: Uint32Array; windows: Float32Array }
  | { id: number; type: 'speechStart' | 'bargeIn' | 'falseInterruption' | 'backchannel' | 'pause' | 'resume'; voicedMs: number }
  | { id: number; type: 'speechEnd'; pcm: Int16Array; voicedMs: number; streamMs: number };

/** Turn-taking tunables as the addon takes them (see TurnTunables in src/vad/policy.ts). */
export interface NativeTurnTunables {
  activationThreshold: number; deactivationThreshold: number; minSpeechMs: number; onsetMaxGapMs: number;
  endpointSilenceMs: number; digitsEndpointSilenceMs: number; minInterruptionMs: number;
  falseInterruptionMinSpeechMs: number; preRollFrames: number; pauseOnsetMs: number; pauseHoldMs: number; latencyCompensationMs: number;
  pauseCueProb: number; pauseCueSnrDb: number; pauseDuckDb: number;
}

export type NativeCodec = 'PCMU' | 'PCMA' | 'opus';

/** Jitter buffer bounds (ms); see JitterOptions in ./index.ts. */
export interface NativeJitterOptions { minDelayMs?: number; maxDelayMs?: number; startDelayMs?: number }
/** Opus encoder settings (from the peer's fmtp). */
export interface NativeOpusParams { bitrate?: number; fec?: boolean; dtx?: boolean; maxPlaybackRate?: number; lossPercent?: number }

export interface NativeJitterStats {
  received: number; expected: number; lost: number; late: number; duplicates: number; overflow: number;
  resets: number; ssrcChanges: number; underruns: number; jitterMs: number; bufferDelayMs: number;
  targetDelayMs: number; framesOut: number; concealed: number; fecRecovered: number; shrinks: number;
  stretches: number; decodeErrors: number;
}
export interface NativeRtcpStats {
  packetsIn: number; packetsOut: number; invalidIn: number; haveSr: boolean;
  remoteReport: { fractionLost: number; cumulativeLost: number; jitterMs: number; rttMs: number | null } | null;
}

export interface NativeSessionStats {
  packetsIn: number; packetsOut: number; bytesIn: number; bytesOut: number; invalidIn: number;
  telephoneEventsIn: number; sendErrors: number; inboundDropped: number;
  lastRxAgoMs: number | null; remote: { address: string; port: number } | null;
  latched: boolean; ssrcOut: number; seqOut: number; sending: boolean;
  dtmfIn: number; dtmfOut: number; inbandDtmf: boolean; jitter: NativeJitterStats; rtcp: NativeRtcpStats;
  srtp: NativeSrtpSuite | null; srtpAuthFail: number; srtpReplay: number; srtpInvalid: number; srtpProtectFail: number;
  bridged: boolean; recording: boolean; recordedFrames: number;
}

export type NativeSrtpSuite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32';
/** 30-byte master key || salt each way. */
export interface NativeSrtpKeys { suite: NativeSrtpSuite; localKey: Uint8Array; remoteKey: Uint8Array }

export interface NativeEngine {
  createSession(opts: {
    codec: NativeCodec; payloadType: number; telephoneEventPayloadType?: number;
    remoteAddress?: string; remotePort?: number; rate?: 8000 | 16000; jitter?: NativeJitterOptions;
    opus?: NativeOpusParams; rtcpIntervalMs?: number; vad?: NativeTurnTunables; inbandDtmf?: boolean; family?: 4 | 6;
    srtp?: NativeSrtpKeys;
  }): { id: number; localAddress: string; localPort: number; rtcpPort: number | null };
  closeSession(id: number): boolean;
  setRemote(id: number, address: string, port: number, rtcpPort?: number): void;
  setCodec(id: number, codec: NativeCodec, payloadType: number): void;
  setOpusParams(id: number, p: NativeOpusParams): void;
  setSrtpRemote(id: number, suite: NativeSrtpSuite, remoteKey: Uint8Array): void;
  setTelephoneEvent(id: number, payloadType: number | null): void;
  setDirection(id: number, direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive'): void;
  sendDtmf(id: number, digits: string, durationMs: number, gapMs: number): void;
  bridge(a: number, b: number): void;
  unbridge(a: number): boolean;
  startRecording(id: number, path: string, sampleRate?: number): void;
  stopRecording(id: number): { path: string; frames: number; dropped: number; sampleRate: number } | null;
  play(id: number, pcm: Int16Array, uninterruptible?: boolean): void;
  /** Probabilities for one 'vad' event's windows, same order. */
  vadResults(ids: Uint32Array, probs: Float32Array): void;
  setDigitsPending(id: number, on: boolean): void;
  /** 'audio' events for this session on/off (MediaSession: on while it has an 'audio' listener). */
  setAudioEvents(id: number, on: boolean): void;
  /** Audio (ms, 0..2000) put in front of each speechEnd utterance from the native ring. */
  setUtterancePreRoll(id: number, ms: number): void;
  setTurnTunables(id: number, t: NativeTurnTunables): void;
  flush(id: number): void;
  queuedSamples(id: number): number;
  stats(id: number): NativeSessionStats;
  pacingStats(): { samples: number; p50Us: number; p99Us: number; maxUs: number };
  resetPacingStats(): void;
  /** never-reset lateness histogram (Prometheus): per-bucket counts, last = above every bound */
  pacingHistogram(): { boundsUs: number[]; counts: number[]; count: number; sumUs: number };
  /** media loop iterations so far (-1 when closed); wakes the loop once */
  heartbeat(): number;
  activeSessions(): number;
  /** sessions of this address family can be created */
  serves(family: 4 | 6): boolean;
  scheduling(): 'fifo' | 'nice' | 'normal';
  /** Key of this engine for a VAD worker ({@link NativeBinding.VadConsumer}, {@link NativeBinding.vadResultsTo}). */
  vadKey(): number;
  close(): void;
}

export type RtpParseResult =
  | string
  | { marker: boolean; payloadType: number; seq: number; timestamp: number; ssrc: number;
      csrcCount: number; payloadOffset: number; payloadLength: number };

export interface NativeBinding {
  Engine: new (
    opts: {
      bindAddress: string; bindAddress6?: string; portMin: number; portMax: number; rtPriority?: number;
      /** session ids handed out: idFirst, idFirst + idStride, … (several engines keep ids distinct) */
      idFirst?: number; idStride?: number;
    },
    onEvents: (events: NativeEvent[]) => void,
  ) => NativeEngine;
  ulawEncode(pcm: Int16Array): Uint8Array;
  ulawDecode(b: Uint8Array): Int16Array;
  alawEncode(pcm: Int16Array): Uint8Array;
  alawDecode(b: Uint8Array): Int16Array;
  /** One-shot, delay-compensated resampling (allocates; for tests and offline use). */
  resample(pcm: Int16Array, inRate: number, outRate: number): Int16Array;
  parseRtp(b: Uint8Array): RtpParseResult;
  synthesize(text: string, voice: string, sampleRate: number): Promise<Int16Array>;
  /** espeak-ng synthesis (library serialised natively: one synthesis at a time per process). */
  espeakSynthesize(text: string, opts: { voice: string; wpm?: number; pitch?: number }, sampleRate: number): Promise<Int16Array>;
  /** null when espeak-ng has the voice, else why not (takes the espeak-ng lock: start-up only). */
  espeakVoiceKnown(voice: string): string | null;
  /** Codecs compiled into the addon. */
  codecs: NativeCodec[];
  parseRtcp(b: Uint8Array, ourSsrc?: number): string | {
    packets: number; senderSsrc: number; haveSr: boolean; ntpSeconds?: number; rtpTimestamp?: number;
    packetCount?: number; octetCount?: number; bye: boolean;
    block?: { fractionLost: number; cumulativeLost: number; extHighestSeq: number; jitter: number; lsr: number; dlsr: number };
  };
  /** Test binding: inbound playout (jitter buffer, decoder, PLC) with scripted arrival/playout instants (ms). */
  PlayoutTest: new (opts: { codec: NativeCodec; payloadType: number; rate?: 8000 | 16000; jitter?: NativeJitterOptions }) => {
    put(packet: Uint8Array, arrivalMs: number): 'accepted' | 'duplicate' | 'late' | 'overflow' | 'too-big' | 'reset' | 'invalid';
    /**
     * One 20 ms frame at the delivery rate, or null before the stream started. `needOut` false
     * ticks as the media thread does for a call nobody takes 16 kHz audio from: returns the G.711
     * frame at 8 kHz and only advances the 16 kHz interpolation (null for Opus at 16 kHz).
     */
    tick(nowMs: number, needOut?: boolean): Int16Array | null;
    stats(): NativeJitterStats;
  };
  /**
   * Bench binding (media-capacity): N G.711 callers from one loopback socket on a native thread
   * (sendmmsg per 1 ms step, jittered ±jitterMs, lossPct % lost), timing what comes back.
   */
  RtpLoadTest: new (opts: { voices: Uint8Array[]; jitterMs?: number; lossPct?: number; seed?: number }) => {
    port(): number;
    start(targets: number[]): void;
    mark(): void;
    report(): {
      seconds: number; sent: number; dropped: number; sendErrors: number; rxPackets: number; rxIntervals: number;
      rxGaps: number; rxUnknown: number; rxP50Us: number; rxP99Us: number; rxMaxUs: number;
      sendLateP50Us: number; sendLateP99Us: number; cpuPct: number;
    };
    stop(): void;
  };
  /** Test binding: one SRTP context without sockets (known-answer vectors, tamper/replay tests, bench). */
  SrtpTest: new (opts: NativeSrtpKeys & { ssrc?: number }) => {
    protect(rtp: Uint8Array): Uint8Array | null;
    protectRtcp(rtcp: Uint8Array): Uint8Array | null;
    unprotect(srtp: Uint8Array): { status: 'ok' | 'auth-fail' | 'replay' | 'invalid'; packet?: Uint8Array };
    unprotectRtcp(srtcp: Uint8Array): { status: 'ok' | 'auth-fail' | 'replay' | 'invalid'; packet?: Uint8Array };
    setRemote(suite: NativeSrtpSuite, remoteKey: Uint8Array): void;
  };
  constants: { tickMs: number; slots: number; eventBatchMs: number };
  /**
   * Made in a VAD worker thread: the engine `engineKey`'s hand-overs go to `onHandover` on that
   * thread (not to the engine's event callback) until close(). Hand-overs still queued when the
   * worker's environment goes away are answered NaN natively.
   */
  VadConsumer: new (engineKey: number, onHandover: (ids: Uint32Array, windows: Float32Array) => void) => { close(): void };
  /** Answer one hand-over of engine `engineKey` from any thread; false when that engine is closed. */
  vadResultsTo(engineKey: number, ids: Uint32Array, probs: Float32Array): boolean;
  /** The sessions' in-band DTMF detector over a whole 8 kHz signal, fed in 20 ms frames (tests, corpus checks). */
  detectDtmfInband(pcm8k: Int16Array): { kind: 'start' | 'end'; digit: string; atMs: number; durationMs?: number }[];
}

/** Repository root (src/media/ → ../..). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where `make` / `node-gyp rebuild` puts the addon. */
export const addonPath = join(repoRoot, 'build', 'Release', 'voice_core.node');

function load(): NativeBinding {
  if (!existsSync(addonPath)) {
    throw new Error(
      `native addon not built: ${addonPath} is missing. Run \`make\` (or \`make build\`) in ${repoRoot} ` +
        'to install the Debian build packages (flite1-dev, build-essential) and compile it.',
    );
  }
  const require = createRequire(import.meta.url);
  try {
    return require(addonPath) as NativeBinding;
  } catch (err) {
    throw new Error(
      `native addon ${addonPath} failed to load (${(err as Error).message}); rebuild it with \`make\``,
    );
  }
}

/** The loaded addon (loaded once, on first import). */
export const native: NativeBinding = load();
