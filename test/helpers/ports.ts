/**
 * Free-port helpers for tests. Each test role owns fixed ranges (so parallel suites of other
 * engineers/CI jobs do not collide); inside a range ports are probed by binding them on
 * 127.0.0.1 and handed out from a per-process cursor that starts at a random offset.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** An inclusive port range. */
export interface PortRange {
  min: number;
  max: number;
}

/** Port ranges of the QA suites (SIP listeners, drachtio control, server RTP, SIPp media, SIPp -cp). */
export const RANGES = {
  sip: { min: 17000, max: 17499 },
  control: { min: 19200, max: 19299 },
  rtp: { min: 25000, max: 26999 },
  sippMedia: { min: 27000, max: 27999 },
  sippControl: { min: 8900, max: 8999 },
} as const satisfies Record<string, PortRange>;

const cursors = new Map<string, number>();

/** Whether `port` can be bound on 127.0.0.1 over UDP. */
export function udpFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

/** Whether `port` can be bound on 127.0.0.1 over TCP. */
export function tcpFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export type PortKind = 'udp' | 'tcp' | 'both';

async function isFree(port: number, kind: PortKind): Promise<boolean> {
  if (kind !== 'tcp' && !(await udpFree(port))) return false;
  if (kind !== 'udp' && !(await tcpFree(port))) return false;
  return true;
}

/**
 * A port in `range` that is currently free for `kind` (UDP, TCP or both), stepping by
 * `step` (2 keeps RTP ports even; SIPp media uses port and port+2).
 */
export async function freePort(range: PortRange, kind: PortKind = 'both', step = 1): Promise<number> {
  const key = `${range.min}-${range.max}-${step}`;
  const span = Math.floor((range.max - range.min) / step) + 1;
  let idx = cursors.get(key) ?? Math.floor(Math.random() * span);
  for (let tries = 0; tries < span; tries++, idx++) {
    const port = range.min + (idx % span) * step;
    if (await isFree(port, kind)) {
      cursors.set(key, idx + 1);
      return port;
    }
  }
  throw new Error(`no free ${kind} port in ${range.min}-${range.max}`);
}

/**
 * A block of `size` consecutive UDP ports inside `range`, all free right now (for a server's
 * RTP_PORT_MIN/RTP_PORT_MAX). Blocks are aligned to `size` so concurrent users rarely overlap.
 */
export async function freePortBlock(range: PortRange, size: number): Promise<PortRange> {
  const blocks = Math.floor((range.max - range.min + 1) / size);
  if (blocks < 1) throw new Error(`range ${range.min}-${range.max} smaller than ${size}`);
  const key = `block-${range.min}-${range.max}-${size}`;
  let idx = cursors.get(key) ?? Math.floor(Math.random() * blocks);
  for (let tries = 0; tries < blocks; tries++, idx++) {
    const min = range.min + (idx % blocks) * size;
    let ok = true;
    for (let p = min; p < min + size && ok; p++) ok = await udpFree(p);
    if (ok) {
      cursors.set(key, idx + 1);
      return { min, max: min + size - 1 };
    }
  }
  throw new Error(`no free block of ${size} UDP ports in ${range.min}-${range.max}`);
}
