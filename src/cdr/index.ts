/**
 * Call detail records: one row per call in a store an operator can query (embedded SQLite by
 * default), written at answer and completed at hang-up, with the transcript, outcome, media
 * quality (E-model R and MOS), turn latency and an itemized cost. `voice-agent cdr list|show`
 * reads it. See README "CDRs".
 */
export type {
  CdrRecord, CdrStore, CdrFilter, CdrOutcome, CdrStatus, CdrMedia, CdrTranscriptLine, HangupBy, RetentionPolicy,
} from './types.ts';
export { CDR_OUTCOMES } from './types.ts';
export { SqliteCdrStore, CDR_SCHEMA } from './sqlite.ts';
export { PostgresCdrStore, PG_CDR_SCHEMA, redactUrl } from './postgres.ts';
export { CdrRecorder, deriveOutcome, mediaQuality, gapPercentiles, hangupBy, type CdrCall, type CdrConversation, type CdrMediaStats } from './recorder.ts';
export { rFactor, mosFromR, estimateQuality, type QualityInputs } from './emodel.ts';
export { priceCall, pricesFor, builtinPrices, billedMinutes, type PriceTable, type PriceConfig, type CallUsage, type CallCost, type CostItem } from './pricing.ts';
export { applyCdrFile, applyCdrEnv, defaultCdrSettings, DEFAULT_RETENTION_DAYS, type CdrSettings } from './settings.ts';
export { startCdr, retentionPolicy, ownerIsLive, processOwner, type CdrService } from './service.ts';
