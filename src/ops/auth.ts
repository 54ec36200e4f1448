/**
 * Small guards for services the product exposes besides SIP: is an address loopback-only,
 * and does a request carry the expected bearer token (compared in constant time).
 * Used by the ops listener (`OPS_TOKEN`), the CRM/ERP MCP HTTP server (`CRM_MCP_TOKEN`) and
 * the config's refusal of the well-known default drachtio secret off loopback.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import ipaddr from 'ipaddr.js';

/** True when `host` reaches only this machine: 127.0.0.0/8, ::1, `localhost`. A wildcard (0.0.0.0, ::) is not. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === 'localhost.localdomain') return true;
  try {
    const a = ipaddr.process(h);
    return a.range() === 'loopback';
  } catch {
    return false; // a host name: it may resolve anywhere
  }
}

/** Does the request carry `Authorization: Bearer <token>`? Constant-time comparison. */
export function hasBearer(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  // compare digests: equal length, no early exit on the first differing byte
  const a = createHash('sha256').update(m[1]!).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
