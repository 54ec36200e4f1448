/** Shared bits of the CDR tests: a record with every field, a fake call. */
import { EventEmitter } from 'node:events';
import type { CdrMediaStats, CdrRecord } from '../../src/cdr/index.ts';

let n = 0;

export function record(over: Partial<CdrRecord> = {}): CdrRecord {
  return {
    id: `id-${++n}`, sipCallId: `sip-${n}@test`, tenant: 'northwind', trunk: null, source: 'udp/127.0.0.1:5070',
    fromNumber: '+14155550142', toNumber: '18005550100', accountId: null, accountName: null, contactId: null, contactName: null,
    status: 'open', incompleteReason: null, startedAt: '2026-03-01T10:00:00.000Z', answeredAt: '2026-03-01T10:00:00.500Z',
    endedAt: null, updatedAt: '2026-03-01T10:00:00.500Z', durationMs: null, hangupBy: null, endReason: null, sipStatus: 200,
    releaseCause: null, outcome: null, outcomeRef: null, outcomes: [], escalationTrigger: null, escalationTarget: null,
    escalationReason: null, escalationOutcome: null, agent: null, language: null, turns: 0, bargeIns: 0, transcript: [],
    media: null, gapP50Ms: null, gapP95Ms: null, carrierSeconds: 0, sttSeconds: 0, llmPromptTokens: 0, llmCompletionTokens: 0,
    ttsChars: 0, cost: null, detail: {},
    recordingPosture: null, jurisdiction: null, consent: null, consentAt: null, recordingPath: null,
    ...over,
  };
}

/** A src/call Call as the recorder sees it, driven by hand. */
export class FakeCall extends EventEmitter {
  startedAt = Date.now();
  answeredAt: number | null = null;
  endedAt: number | null = null;
  endReason: string | null = null;
  audio = { codec: 'PCMU' };
  mediaStats: CdrMediaStats | null = null;
  handoffInfo: Record<string, string | number | undefined> | null = null;
  readonly tenant: { id: string };
  constructor(readonly callId = `call-${++n}@test`, readonly from = '+14155550142', readonly to = '18005550100', tenant = 'northwind', readonly source = 'udp/127.0.0.1:5070') {
    super();
    this.tenant = { id: tenant };
  }
  answer(): void {
    this.answeredAt = Date.now();
    this.emit('answered');
  }
  end(reason: string, stats: CdrMediaStats | null = null): void {
    this.endedAt = Date.now();
    this.endReason = reason;
    this.mediaStats = stats;
    this.emit('ended', { reason });
  }
}
