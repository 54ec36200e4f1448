/**
 * Overload admission: decide before answering whether a new call may come in.
 *
 * Limits (config `admission`, env `MAX_CALLS`, `MAX_CALLS_PER_TENANT`, `ADMISSION_*`):
 * - concurrent calls, global and per tenant;
 * - load signals, sampled once a second over a sliding window (`windowSeconds`):
 *   the native media loop's lateness (more than 1 % of outbound packets later than
 *   `mediaLateMs` = its p99 is over that), the Node event loop's delay p99, and the
 *   process CPU as a share of all cores.
 *
 * Over a limit the INVITE gets `503 Service Unavailable` with `Retry-After` derived from how
 * far over the limit the node is (5 s at the limit, more the further over, at most 60 s)
 * and a reason that is counted (`voice_agent_invites_rejected_total{reason}`) and logged.
 * Admitted calls are never degraded to make room: nothing already up is touched.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { cpus } from 'node:os';

/** Admission limits. 0 turns a limit off. */
export interface AdmissionLimits {
  /** Concurrent calls on this node. Env `MAX_CALLS`. @defaultValue 400 (what one 2-core box holds with VAD) */
  maxCalls: number;
  /** Concurrent calls of one tenant. Env `MAX_CALLS_PER_TENANT`. @defaultValue 0 (off) */
  maxCallsPerTenant: number;
  /**
   * Media-loop lateness limit in ms: reject while more than 1 % of outbound packets in the
   * window were sent later than this. Env `ADMISSION_MEDIA_LATE_MS`. @defaultValue 10
   */
  mediaLateMs: number;
  /** Event-loop delay p99 limit in ms over the window. Env `ADMISSION_EVENT_LOOP_MS`. @defaultValue 500 */
  eventLoopMs: number;
  /** Process CPU limit, percent of all cores over the window. Env `ADMISSION_CPU_PERCENT`. @defaultValue 0 (off) */
  cpuPercent: number;
  /** Sliding window of the load signals, seconds. @defaultValue 5 */
  windowSeconds: number;
}

export const ADMISSION_DEFAULTS: Readonly<AdmissionLimits> = Object.freeze({
  maxCalls: 400, maxCallsPerTenant: 0, mediaLateMs: 10, eventLoopMs: 500, cpuPercent: 0, windowSeconds: 5,
});

/** What the admission needs to read (the media engine and the live calls). */
export interface AdmissionSources {
  /** live calls, all tenants */
  activeCalls(): number;
  /** live calls of one tenant */
  tenantCalls(tenantId: string): number;
  /** the media loop's never-reset lateness histogram (µs bounds, per-bucket counts) */
  pacingHistogram?(): { boundsUs: number[]; counts: number[]; count: number } | undefined;
}

export type AdmissionReason = 'calls' | 'tenant-calls' | 'media-loop' | 'event-loop' | 'cpu';

export type AdmissionDecision =
  | { ok: true }
  | { ok: false; reason: AdmissionReason; retryAfter: number; detail: string };

interface Sample { at: number; late: number; total: number; cpuUs: number }

/** Retry-After in seconds for a node `factor` times over a limit (1 = at the limit). */
export function retryAfterFor(factor: number): number {
  return Math.max(1, Math.min(60, Math.round(5 * Math.max(1, factor) ** 2)));
}

export class Admission {
  readonly limits: AdmissionLimits;
  private readonly samples: Sample[] = [];
  private readonly loop: IntervalHistogram;
  private timer: NodeJS.Timeout | null = null;
  private loopP99Ms = 0;
  private mediaLateShare = 0;
  private cpuShare = 0;
  private readonly cores = Math.max(1, cpus().length);

  constructor(private readonly src: AdmissionSources, limits: Partial<AdmissionLimits> = {}) {
    this.limits = { ...ADMISSION_DEFAULTS, ...limits };
    this.loop = monitorEventLoopDelay({ resolution: 10 });
  }

  /** Start sampling the load signals (once a second; the timer does not keep the process alive). */
  start(): this {
    if (this.timer) return this;
    this.loop.enable();
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.loop.disable();
  }

  /** The current load signals (for logs and tests). */
  get load(): { mediaLateShare: number; eventLoopP99Ms: number; cpuShare: number } {
    return { mediaLateShare: this.mediaLateShare, eventLoopP99Ms: this.loopP99Ms, cpuShare: this.cpuShare };
  }

  /** May a call for `tenantId` be answered now? */
  admit(tenantId?: string): AdmissionDecision {
    const L = this.limits;
    const active = this.src.activeCalls();
    if (L.maxCalls > 0 && active >= L.maxCalls) {
      return { ok: false, reason: 'calls', retryAfter: retryAfterFor((active + 1) / L.maxCalls), detail: `${active} calls up, limit ${L.maxCalls}` };
    }
    if (tenantId !== undefined && L.maxCallsPerTenant > 0) {
      const n = this.src.tenantCalls(tenantId);
      if (n >= L.maxCallsPerTenant) {
        return { ok: false, reason: 'tenant-calls', retryAfter: retryAfterFor((n + 1) / L.maxCallsPerTenant), detail: `${n} calls of tenant ${tenantId} up, limit ${L.maxCallsPerTenant}` };
      }
    }
    if (L.mediaLateMs > 0 && this.mediaLateShare > 0.01) {
      return { ok: false, reason: 'media-loop', retryAfter: retryAfterFor(this.mediaLateShare / 0.01 / 2 + 0.5), detail: `${(this.mediaLateShare * 100).toFixed(1)} % of RTP sent later than ${L.mediaLateMs} ms` };
    }
    if (L.eventLoopMs > 0 && this.loopP99Ms > L.eventLoopMs) {
      return { ok: false, reason: 'event-loop', retryAfter: retryAfterFor(this.loopP99Ms / L.eventLoopMs), detail: `event-loop delay p99 ${Math.round(this.loopP99Ms)} ms, limit ${L.eventLoopMs} ms` };
    }
    if (L.cpuPercent > 0 && this.cpuShare * 100 > L.cpuPercent) {
      return { ok: false, reason: 'cpu', retryAfter: retryAfterFor((this.cpuShare * 100) / L.cpuPercent), detail: `CPU ${Math.round(this.cpuShare * 100)} % of ${this.cores} cores, limit ${L.cpuPercent} %` };
    }
    return { ok: true };
  }

  /** One sample of every signal; the window's values are recomputed from the oldest kept sample. */
  sample(now = Date.now()): void {
    const h = this.src.pacingHistogram?.();
    let late = 0;
    let total = 0;
    if (h) {
      total = h.count;
      const limitUs = this.limits.mediaLateMs * 1000;
      // counts[i + 1] holds packets later than bounds[i] (up to bounds[i + 1]): the packets
      // later than the limit are the buckets above the first bound at or over it
      const firstAbove = h.boundsUs.findIndex((b) => b >= limitUs);
      late = firstAbove < 0 ? (h.counts[h.counts.length - 1] ?? 0) : h.counts.slice(firstAbove + 1).reduce((a, b) => a + b, 0);
    }
    const u = process.cpuUsage();
    this.samples.push({ at: now, late, total, cpuUs: u.user + u.system });
    const keepFrom = now - this.limits.windowSeconds * 1000;
    while (this.samples.length > 2 && this.samples[1]!.at <= keepFrom) this.samples.shift();
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dTotal = last.total - first.total;
    this.mediaLateShare = dTotal > 0 ? (last.late - first.late) / dTotal : 0;
    const dWall = (last.at - first.at) * 1000;
    this.cpuShare = dWall > 0 ? (last.cpuUs - first.cpuUs) / dWall / this.cores : 0;
    // the event-loop histogram covers the time since its last reset: reset once per window
    this.loopP99Ms = this.loop.count > 0 ? this.loop.percentile(99) / 1e6 : 0;
    if (now - (this.loopResetAt ?? 0) >= this.limits.windowSeconds * 1000) {
      this.loop.reset();
      this.loopResetAt = now;
    }
  }

  private loopResetAt: number | undefined;
}
