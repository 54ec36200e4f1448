/**
 * Voice activity detection and turn-taking: batched Silero VAD inference
 * ({@link VadBatcher}), the turn-taking tunables and STT hooks (policy), and
 * the model install/check. The per-call state machine and the frame cutter
 * are native (`native/vad/`); see src/vad/README.md for how they connect.
 */
export {
  VAD_BATCHER_DEFAULTS, VAD_CONTEXT, VAD_FRAME, VAD_FRAME_MS, VAD_SAMPLE_RATE, VAD_STATE, VAD_WINDOW, VadBatcher,
  type StreamId, type VadBatcherOptions, type VadBatcherStats,
} from './batch.ts';
export { DEFAULT_VAD_SAMPLE_RATE, vadSampleRate, type VadSampleRate } from './rate.ts';
export {
  TURN_DEFAULTS, TURN_DEFAULTS_8K, TurnEvent, awaitingDigits, endsInDigits, isBackchannel, resolveTurnTunables, turnDefaults, turnEventNames,
  validateTurnTunables, type TurnEventName, type TurnTunables,
} from './policy.ts';
export { SILERO_VAD_MODEL_PATH, SILERO_VAD_SHA256 } from './model.ts';
export { installModel, type InstallResult } from './install-model.ts';
