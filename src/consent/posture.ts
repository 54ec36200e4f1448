/**
 * The recording posture of one call: the tenant's configured posture for the caller's
 * jurisdiction (most specific override wins: state → country → EU → unknown → default), then
 * the legal floor — where consent is required by every party, or the rule is unknown, a
 * posture that records is raised to `consent`. `off` stays off (nothing is recorded, so
 * nothing needs consent). Code decides this before the call is answered; the agent and the
 * LLM never see it as something to negotiate.
 */
import type { RecordingPosture, TenantRecording } from '../tenants/tenant.ts';
import type { Jurisdiction } from './jurisdiction.ts';

export interface PostureDecision {
  /** what the call does */
  posture: RecordingPosture;
  /** what the tenant's config said for this jurisdiction, before the floor */
  configured: RecordingPosture;
  /** which config key decided `configured` (`overrides.US-CA`, `posture`, …) */
  source: string;
  /** the floor raised `configured` to consent */
  raised: boolean;
}

const RANK: Record<RecordingPosture, number> = { off: 0, notify: 1, consent: 2 };

/** The posture a jurisdiction demands at least, when anything is recorded. */
export function legalFloor(j: Jurisdiction): RecordingPosture {
  return j.rule === 'one-party' ? 'notify' : 'consent';
}

/** Resolve the posture of a call from the tenant's `recording` block (absent = off) and the caller's jurisdiction. */
export function resolvePosture(rec: TenantRecording | undefined, j: Jurisdiction): PostureDecision {
  if (!rec) return { posture: 'off', configured: 'off', source: 'none', raised: false };
  const keys: string[] = [];
  if (j.key !== 'unknown') keys.push(j.key);
  if (j.state && j.country) keys.push(j.country);
  if (j.eu) keys.push('EU');
  if (j.rule === 'unknown' || j.key === 'unknown') keys.push('unknown');
  let configured = rec.posture;
  let source = 'posture';
  for (const k of keys) {
    const o = rec.overrides[k];
    if (o) { configured = o; source = `overrides.${k}`; break; }
  }
  if (configured === 'off') return { posture: 'off', configured, source, raised: false };
  const floor = legalFloor(j);
  const raised = RANK[floor] > RANK[configured];
  return { posture: raised ? floor : configured, configured, source, raised };
}
