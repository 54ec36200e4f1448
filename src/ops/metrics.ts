/**
 * Prometheus metrics of the whole process (prom-client), prefix `voice_agent_`.
 *
 * One registry per process ({@link metrics}); modules count where things happen (the SIP
 * edge and app, the call, the dialogue, the tool gateway, the media engine) by importing the
 * instruments below — this module sits at the bottom of the import layers next to the logger.
 * Values that live elsewhere (the native media loop's lateness histogram, VAD batch stats,
 * queue depths) are read at scrape time through {@link registerCollector}; nothing here runs
 * on the media path or on a timer.
 *
 * Served by src/ops/http.ts on `/metrics` (OPS_ADDRESS/OPS_PORT, default 127.0.0.1:9464).
 * The README's metric table lists every name, type, label and meaning.
 */
import client from 'prom-client';

export const registry = new client.Registry();
const P = 'voice_agent_';

/** Seconds buckets for SIP setup, tool calls and the parts of a turn (10 ms … 10 s). */
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10];

function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Counter<L> {
  return new client.Counter({ name: P + name, help, labelNames, registers: [registry] });
}
function gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): client.Gauge<L> {
  return new client.Gauge({ name: P + name, help, labelNames, registers: [registry] });
}
function histogram<L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): client.Histogram<L> {
  return new client.Histogram({ name: P + name, help, buckets, labelNames, registers: [registry] });
}

/** Status class label of a SIP status: `1xx` … `6xx`. */
export function statusClass(status: number): string {
  return `${Math.min(6, Math.max(1, Math.floor(status / 100)))}xx`;
}

const SIP_METHODS = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'UPDATE', 'INFO', 'REFER', 'NOTIFY', 'SUBSCRIBE', 'MESSAGE', 'PUBLISH']);

/** A bounded method label: the RFC methods, else `OTHER` (anyone can send any token). */
export function sipMethodLabel(method: string | undefined): string {
  return method && SIP_METHODS.has(method) ? method : 'OTHER';
}

/** The instruments. Labels are bounded sets (methods, classes, reasons, tenants, tool names). */
export const metrics = {
  // ---- SIP
  sipRequests: counter('sip_requests_total', 'SIP requests by layer (edge = built-in SIP edge on the wire, app = drachtio-srf application), direction and method', ['layer', 'direction', 'method'] as const),
  sipResponses: counter('sip_responses_total', 'SIP responses by layer, direction, method of the request and status class', ['layer', 'direction', 'method', 'status_class'] as const),
  invitesRejected: counter('invites_rejected_total', 'INVITEs answered with a final error before a call was set up, by reason (overload, draining, codec, media, acl, auth, malformed, no-app, canceled …)', ['reason'] as const),
  callSetup: histogram('call_setup_seconds', 'INVITE received → 200 OK sent', LATENCY_BUCKETS),
  // ---- SIP guard (src/sip/sip-guard.ts: trunk ACL, per-source rate limit and bans, scanners, size limits)
  sipDropped: counter('sip_dropped_total', 'SIP requests dropped without any response, by reason (banned, rate, scanner, acl, …)', ['reason'] as const),
  sipRefused: counter('sip_refused_total', 'SIP requests answered with an error by the SIP guard before a transaction or the app saw them, by reason and method', ['reason', 'method'] as const),
  sipBans: counter('sip_bans_total', 'Source addresses banned by the per-source request rate limit'),
  // ---- calls
  callsActive: gauge('calls_active', 'Calls answered and not yet ended, per tenant', ['tenant'] as const),
  calls: counter('calls_total', 'Ended calls by tenant and outcome (order_placed, status_given, message_taken, escalated, transferred, abandoned, failed, completed)', ['tenant', 'outcome'] as const),
  callDuration: histogram('call_duration_seconds', 'Answered call length, answer → end', [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600]),
  transfers: counter('transfers_total', 'Hand-offs to a person by mode (warm, blind) and result (connected, referred, busy, no-answer, failed …)', ['mode', 'result'] as const),
  mos: histogram('call_mos', 'Per-call MOS estimate at hang-up (E-model from loss, jitter and RTT)', [1, 2, 2.5, 3, 3.5, 3.8, 4, 4.2, 4.4, 4.5]),
  // ---- turns
  turnEndpointing: histogram('turn_endpointing_seconds', 'Endpointing silence in force when a caller turn ended', LATENCY_BUCKETS),
  turnStt: histogram('turn_stt_seconds', 'End of caller speech → final transcript', LATENCY_BUCKETS),
  turnAgent: histogram('turn_agent_seconds', 'Transcript → first reply audio queued (agent time to first sentence + its TTS)', LATENCY_BUCKETS),
  llmTtft: histogram('llm_ttft_seconds', 'LLM request → first streamed token', LATENCY_BUCKETS),
  ttsFirstAudio: histogram('tts_first_audio_seconds', 'TTS request → first audio of the sentence', LATENCY_BUCKETS),
  turnGap: histogram('turn_gap_seconds', "Caller's end of speech (endpoint decision) → first reply audio queued", LATENCY_BUCKETS),
  bargeIns: counter('barge_ins_total', 'Caller speech that took the turn over the agent'),
  falseInterruptions: counter('false_interruptions_total', 'Barge-ins too short to be a turn (the agent resumed)'),
  noInputReprompts: counter('no_input_reprompts_total', 'Reprompts after caller silence'),
  speechFallbacks: counter('speech_fallbacks_total', 'Calls whose STT or TTS provider failed mid-call and switched to the local one (pocketsphinx, flite) for the rest of the call, by kind (stt, tts), provider and reason (timeout, http_5xx, http_4xx, connection, error)', ['kind', 'provider', 'reason'] as const),
  // ---- media (per-call totals are added at hang-up; loop and VAD figures are read at scrape)
  rtpPackets: counter('rtp_packets_total', 'RTP packets of ended calls by direction', ['direction'] as const),
  rtpLost: counter('rtp_lost_packets_total', 'Inbound RTP packets lost (RFC 3550 cumulative loss) of ended calls'),
  rtpLate: counter('rtp_late_packets_total', 'Inbound RTP packets that arrived too late for playout, of ended calls'),
  rtpJitter: histogram('rtp_jitter_seconds', 'Inbound interarrival jitter (RFC 3550) per call at hang-up', [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]),
  // ---- tools and queues
  toolCalls: counter('tool_calls_total', 'MCP tool calls through the gateway by tool and result (ok, refused, timeout, failed, unknown_tool)', ['tool', 'result'] as const),
  toolLatency: histogram('tool_call_seconds', 'MCP tool call latency through the gateway', LATENCY_BUCKETS, ['tool'] as const),
  rtpengineCommands: counter('rtpengine_commands_total', 'rtpengine ng commands by command and result (ok, error, timeout)', ['command', 'result'] as const),
  rtpengineLatency: histogram('rtpengine_command_seconds', 'rtpengine ng command round trip', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2], ['command'] as const),
  cdrWriteFailures: counter('cdr_write_failures_total', 'Call record writes that failed (disk full, database locked …) by step (insert, progress, complete, case); the calls themselves go on', ['what'] as const),
  // ---- health
  draining: gauge('draining', '1 while the node drains (SIGTERM): readiness fails, new INVITEs get 503'),
};

client.collectDefaultMetrics({ register: registry, prefix: P, eventLoopMonitoringPrecision: 20 });

/** A histogram whose counts are kept elsewhere (e.g. the native media loop) and read at scrape. */
export interface ExternalHistogram {
  /** upper bounds in the metric's unit (ascending, without +Inf) */
  bounds: number[];
  /** per-bucket counts (not cumulative); one more than `bounds` (the last is above every bound) */
  counts: number[];
  count: number;
  sum: number;
}

/** What a collector reads: a number, label value → number, a histogram, or nothing this time. */
export type CollectorValue = number | Record<string, number> | ExternalHistogram | undefined;

interface ExternalMetric {
  name: string;
  help: string;
  type: 'gauge' | 'histogram' | 'counter';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }> }>;
}

/**
 * A metric whose value is read at scrape time. `read` returns a number (gauge/counter), a
 * map label value → number (one label, `label`), or an {@link ExternalHistogram}; `undefined`
 * skips the metric for this scrape (the source is not there yet). Registering the same name
 * again replaces the reader (a new engine in tests).
 */
export function registerCollector(
  name: string, help: string, type: 'gauge' | 'counter' | 'histogram',
  read: () => CollectorValue | Promise<CollectorValue>, label?: string,
): void {
  const full = P + name;
  registry.removeSingleMetric(full);
  const metric: ExternalMetric = {
    name: full, help, type, aggregator: 'sum',
    get: async () => {
      let v: CollectorValue;
      try {
        v = await read();
      } catch {
        v = undefined; // a source that fails is left out of this scrape, never fails it
      }
      const values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }> = [];
      if (typeof v === 'number') values.push({ value: v, labels: {} });
      else if (v && 'bounds' in v && Array.isArray((v as ExternalHistogram).bounds)) {
        const h = v as ExternalHistogram;
        let acc = 0;
        h.bounds.forEach((b, i) => {
          acc += h.counts[i] ?? 0;
          values.push({ value: acc, labels: { le: b }, metricName: `${full}_bucket` });
        });
        values.push({ value: h.count, labels: { le: '+Inf' }, metricName: `${full}_bucket` });
        values.push({ value: h.sum, labels: {}, metricName: `${full}_sum` });
        values.push({ value: h.count, labels: {}, metricName: `${full}_count` });
      } else if (v) {
        for (const [k, x] of Object.entries(v as Record<string, number>)) values.push({ value: x, labels: { [label ?? 'name']: k } });
      }
      return { name: full, help, type, aggregator: 'sum', values };
    },
  };
  registry.registerMetric(metric as unknown as client.Metric);
}

/** The Prometheus text exposition of every metric. */
export function exposition(): Promise<string> {
  return registry.metrics();
}

/** Content-Type of {@link exposition}. */
export const EXPOSITION_CONTENT_TYPE = registry.contentType;

/** What a finished call contributes to the call and media metrics (from its CDR). */
export interface CallEndFigures {
  tenant: string;
  outcome: string;
  media?: { packetsIn: number; packetsOut: number; lossInPct: number | null; jitterInMs: number | null; mos: number | null; late?: number } | null;
}

/** Count a finished call: `calls_total{tenant,outcome}`, MOS, RTP packets/loss/late, jitter. */
export function observeCallEnd(c: CallEndFigures): void {
  metrics.calls.inc({ tenant: c.tenant, outcome: c.outcome });
  const m = c.media;
  if (!m) return;
  metrics.rtpPackets.inc({ direction: 'in' }, m.packetsIn);
  metrics.rtpPackets.inc({ direction: 'out' }, m.packetsOut);
  if (m.lossInPct !== null && m.lossInPct > 0) {
    // the loss of the expected packets: received / (1 - loss) - received
    const lost = m.lossInPct >= 100 ? 0 : Math.round((m.packetsIn / (1 - m.lossInPct / 100)) - m.packetsIn);
    if (lost > 0) metrics.rtpLost.inc(lost);
  }
  if (m.late) metrics.rtpLate.inc(m.late);
  if (m.jitterInMs !== null) metrics.rtpJitter.observe(m.jitterInMs / 1000);
  if (m.mos !== null) metrics.mos.observe(m.mos);
}

/** Observe a duration given in milliseconds on a seconds histogram (skips non-finite values). */
export function observeMs(h: client.Histogram<string>, ms: number | undefined | null, labels?: Record<string, string>): void {
  if (ms === undefined || ms === null || !Number.isFinite(ms) || ms < 0) return;
  if (labels) h.observe(labels, ms / 1000);
  else h.observe(ms / 1000);
}
