/**
 * Call quality estimate: the simplified ITU-T G.107 E-model as rtpengine computes it
 * (its "legacy" MOS, after PingPlotter's description), from packet loss, jitter and RTT.
 *
 * ```
 * effective latency  Le = RTT + 2·jitter + 10                       (ms)
 * R = 93.2 − Le/40                 when Le < 160
 * R = 93.2 − (Le − 120)/10         otherwise
 * R = R − 2.5·loss                                                  (loss in %)
 * MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R)                   (G.107 Annex B)
 * ```
 * R is clamped to 0…100 and MOS to 1…4.5, as G.107 defines MOS for R outside that range.
 * Without an RTT (the far end sent no RTCP receiver report) RTT counts as 0, like
 * rtpengine's listening-quality mode (MOS-LQ).
 */

/** Inputs of the estimate, all for one direction (or the worse of both). */
export interface QualityInputs {
  /** packet loss, percent 0…100 */
  lossPct: number;
  /** interarrival jitter (RFC 3550), ms */
  jitterMs: number;
  /** round-trip time, ms; null/undefined when unknown (counts as 0) */
  rttMs?: number | null;
}

/** The R factor (0…100) for the given loss, jitter and RTT. */
export function rFactor(q: QualityInputs): number {
  const loss = clamp(finite(q.lossPct), 0, 100);
  const jitter = Math.max(0, finite(q.jitterMs));
  const rtt = Math.max(0, finite(q.rttMs ?? 0));
  const le = rtt + 2 * jitter + 10;
  let r = le < 160 ? 93.2 - le / 40 : 93.2 - (le - 120) / 10;
  r -= 2.5 * loss;
  return clamp(r, 0, 100);
}

/** MOS (1…4.5) from an R factor (ITU-T G.107 Annex B). */
export function mosFromR(r: number): number {
  if (!(r > 0)) return 1;
  if (r >= 100) return 4.5;
  const mos = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
  return clamp(mos, 1, 4.5);
}

/** R and MOS, rounded for storage (R to 0.1, MOS to 0.01). */
export function estimateQuality(q: QualityInputs): { r: number; mos: number } {
  const r = rFactor(q);
  return { r: Math.round(r * 10) / 10, mos: Math.round(mosFromR(r) * 100) / 100 };
}

function finite(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
