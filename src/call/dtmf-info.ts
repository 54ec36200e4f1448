/**
 * DTMF in SIP INFO (RFC 2976 "legacy" INFO, no Info-Package), the two bodies carriers
 * and PBXs actually send:
 *
 * - `application/dtmf-relay` (Cisco style): `Signal=5\r\nDuration=160\r\n` — Signal is the
 *   key (0-9 * # A-D; some gateways send the RFC 4733 event number 10-15 for * # A-D),
 *   Duration in ms (optional).
 * - `application/dtmf`: the key alone (`5`); some senders put the relay format here too.
 *
 * Pure parsing; what to answer is decided by the caller ({@link dtmfInfoBody}).
 */

/** Bodies we take in INFO, for the `Accept` header of a 415. */
export const INFO_ACCEPT = 'application/dtmf-relay, application/dtmf';

/** Duration of an INFO digit that names none (ms). @defaultValue 100 */
export const INFO_DEFAULT_DURATION_MS = 100;

export type DtmfInfo =
  /** a key press */
  | { kind: 'digit'; digit: string; durationMs: number }
  /** no body: a keep-alive / dialog probe INFO → 200 */
  | { kind: 'empty' }
  /** a DTMF body naming a signal we do not deliver (hook flash, event 16) → 200, ignored */
  | { kind: 'ignored'; why: string }
  /** a DTMF content type whose body holds no usable key → 400 */
  | { kind: 'malformed'; why: string }
  /** any other body → 415 with Accept */
  | { kind: 'unsupported'; contentType: string };

const EVENT_KEYS = '0123456789*#ABCD';

function keyOf(raw: string): string | null | 'flash' {
  const v = raw.trim().toUpperCase();
  if (/^[0-9*#A-D]$/.test(v)) return v;
  if (/^1[0-5]$/.test(v)) return EVENT_KEYS[Number(v)]!; // RFC 4733 event numbers
  if (v === '16' || v === '!') return 'flash';
  return null;
}

function relay(body: string): DtmfInfo | null {
  const signal = /^\s*signal\s*=\s*(\S+)\s*$/im.exec(body)?.[1];
  if (signal === undefined) return null;
  const key = keyOf(signal);
  if (key === 'flash') return { kind: 'ignored', why: 'hook flash' };
  if (key === null) return { kind: 'malformed', why: `Signal=${signal.slice(0, 20)} is not a DTMF key` };
  const dur = /^\s*duration\s*=\s*(\d{1,6})\s*$/im.exec(body)?.[1];
  return { kind: 'digit', digit: key, durationMs: dur !== undefined ? Number(dur) : INFO_DEFAULT_DURATION_MS };
}

/** Classify an INFO request's body. `contentType` is the header value (parameters allowed). */
export function dtmfInfoBody(contentType: string | undefined, body: string | undefined): DtmfInfo {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const text = body ?? '';
  if (text.trim() === '') {
    if (type === 'application/dtmf-relay' || type === 'application/dtmf') return { kind: 'malformed', why: `empty ${type} body` };
    return { kind: 'empty' };
  }
  if (type === 'application/dtmf-relay') {
    return relay(text) ?? { kind: 'malformed', why: 'no Signal= line' };
  }
  if (type === 'application/dtmf') {
    const key = keyOf(text);
    if (key === 'flash') return { kind: 'ignored', why: 'hook flash' };
    if (key !== null) return { kind: 'digit', digit: key, durationMs: INFO_DEFAULT_DURATION_MS };
    return relay(text) ?? { kind: 'malformed', why: 'body is not a single DTMF key' };
  }
  return { kind: 'unsupported', contentType: type || '(none)' };
}
