/**
 * SDES: SRTP keys in SDP (RFC 4568 `a=crypto`), for RTP/SAVP and RTP/SAVPF media lines.
 *
 * `a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]` where key-params is
 * `inline:<base64 key||salt>[|<lifetime>][|<MKI>:<MKI length>]` (several, `;`-separated,
 * only with MKIs). What the native core (libsrtp2) runs, and so what we accept:
 * - suites AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (30 bytes of key||salt);
 * - one key, no MKI (an MKI would put an MKI field in every packet; we keep one key per
 *   direction for the whole call);
 * - a lifetime of at least 2^31 packets, or none (we never re-key inside a call: at 50
 *   packets a second 2^31 is over a year; a shorter lifetime is a promise we cannot keep);
 * - no session parameters except `WSH=` (a replay window hint, RFC 4568 §6.3.7, which we may
 *   ignore); KDR, UNENCRYPTED_SRTP/SRTCP, UNAUTHENTICATED_SRTP, FEC_* change the transform.
 * A line we cannot use is skipped with a reason; none usable → the stream is refused.
 *
 * Keys are secrets: nothing here logs them, and the reasons name tags and suites only.
 */
import { randomBytes } from 'node:crypto';
import type { SdpMedia } from './parse.ts';

/** SRTP policy of a trunk (config `srtp`, per trunk or global). */
export type SrtpPolicy = 'off' | 'optional' | 'required';
export const SRTP_POLICIES: readonly SrtpPolicy[] = ['off', 'optional', 'required'];

export type SrtpSuiteName = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32';
/** Suites we implement, in the order we offer them. */
export const SRTP_SUITES: readonly SrtpSuiteName[] = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

/** Bytes of master key (16) + master salt (14) for both suites. */
export const SRTP_KEY_BYTES = 30;
/** Smallest a=crypto lifetime we accept (packets). */
export const MIN_SRTP_LIFETIME = 2 ** 31;

/** The SRTP parameters of a negotiated stream. */
export interface SrtpParams {
  suite: SrtpSuiteName;
  /** the a=crypto tag the answer echoes */
  tag: number;
  /** our key||salt (30 bytes), in our a=crypto */
  localKey: Uint8Array;
  /** the peer's key||salt (30 bytes), from its a=crypto */
  remoteKey: Uint8Array;
}

/** One parsed a=crypto line. */
export interface CryptoLine {
  tag: number;
  suite: string;
  /** decoded key||salt */
  key: Uint8Array;
}

/** A fresh key||salt from the CSPRNG (node:crypto randomBytes). */
export function newSrtpKey(): Uint8Array {
  return new Uint8Array(randomBytes(SRTP_KEY_BYTES));
}

/** Is this m= proto SRTP keyed by SDES (RTP/SAVP, RTP/SAVPF)? */
export function isSdesProto(proto: string): boolean {
  const p = proto.toUpperCase();
  return p === 'RTP/SAVP' || p === 'RTP/SAVPF';
}

const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function lifetimeOf(s: string): number | null {
  const pow = /^2\^(\d{1,2})$/.exec(s);
  if (pow) return 2 ** Number(pow[1]);
  if (/^\d{1,16}$/.test(s)) return Number(s);
  return null;
}

/**
 * Parse one `a=crypto` value. Returns the line, or a reason it cannot be used (naming the
 * tag and suite, never the key).
 */
export function parseCryptoLine(value: string): CryptoLine | { tag?: number; reason: string } {
  const parts = value.trim().split(/\s+/);
  if (parts.length < 3) return { reason: 'malformed a=crypto (need "<tag> <suite> inline:<key>")' };
  const [tagField, suite, keyParams, ...sessionParams] = parts as [string, string, string, ...string[]];
  if (!/^\d{1,9}$/.test(tagField)) return { reason: `malformed a=crypto tag "${tagField.slice(0, 12)}"` };
  const tag = Number(tagField);
  const what = `tag ${tag} ${suite.slice(0, 40)}`;
  if (!(SRTP_SUITES as readonly string[]).includes(suite)) return { tag, reason: `${what}: suite not supported` };
  if (keyParams.includes(';')) return { tag, reason: `${what}: several keys (MKI) not supported` };
  if (!keyParams.toLowerCase().startsWith('inline:')) return { tag, reason: `${what}: key method not supported (only inline:)` };
  const [b64, ...rest] = keyParams.slice('inline:'.length).split('|') as [string, ...string[]];
  if (rest.length > 2) return { tag, reason: `${what}: malformed key parameters` };
  if (rest.some((r) => r.includes(':'))) return { tag, reason: `${what}: MKI not supported` };
  for (const r of rest) {
    const life = lifetimeOf(r);
    if (life === null) return { tag, reason: `${what}: malformed key lifetime` };
    if (life < MIN_SRTP_LIFETIME) return { tag, reason: `${what}: key lifetime ${r} not supported (need 2^31 or more)` };
  }
  if (!B64_RE.test(b64)) return { tag, reason: `${what}: key is not base64` };
  const key = new Uint8Array(Buffer.from(b64, 'base64'));
  if (key.length !== SRTP_KEY_BYTES) return { tag, reason: `${what}: key||salt is ${key.length} bytes, need ${SRTP_KEY_BYTES}` };
  for (const p of sessionParams) {
    if (/^WSH=\d+$/i.test(p)) continue; // window-size hint: may be ignored (RFC 4568 §6.3.7)
    return { tag, reason: `${what}: session parameter ${p.split('=')[0]!.slice(0, 30)} not supported` };
  }
  return { tag, suite, key };
}

/**
 * The first usable `a=crypto` line of an SDES media line (the offerer's preference order;
 * with `preferSuite`, a line of that suite first — a re-INVITE keeps the running suite).
 */
export function chooseCrypto(m: SdpMedia, preferSuite?: SrtpSuiteName): { line: CryptoLine } | { reasons: string[] } {
  const reasons: string[] = [];
  const usable: CryptoLine[] = [];
  for (const a of m.attributes) {
    if (a.name.toLowerCase() !== 'crypto') continue;
    const c = parseCryptoLine(a.value ?? '');
    if ('reason' in c) reasons.push(c.reason);
    else usable.push(c);
  }
  if (usable.length === 0) return { reasons: reasons.length > 0 ? reasons : ['no a=crypto line'] };
  const line = (preferSuite && usable.find((c) => c.suite === preferSuite)) || usable[0]!;
  return { line };
}

/** The value of our `a=crypto` (after `a=crypto:`). */
export function cryptoValue(tag: number, suite: SrtpSuiteName, key: Uint8Array): string {
  return `${tag} ${suite} inline:${Buffer.from(key).toString('base64')}`;
}

/** Same bytes? (keys compared to notice a re-key) */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}
