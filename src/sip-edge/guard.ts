/**
 * The built-in edge's hook for a SIP guard (flood, scanner and access defence): the transport
 * asks it about every incoming message before parsing ({@link guardBeforeParse}) and after
 * parsing ({@link guardAfterParse}) — before any transaction, dialog or app sees it — and
 * carries the verdict out here: nothing (a silent drop), a final response with a reason
 * phrase, a To tag and `Warning: 399 <host> "<why>"`, or closing a TCP/TLS connection.
 *
 * The policy itself lives above the edge (src/sip/sip-guard.ts, shared with the drachtio-srf
 * middleware of the drachtio-server topology); main hands it to the edge as an
 * {@link EdgeGuard}. Without one the edge behaves as before.
 */
import { logger } from '../ops/log.ts';
import { SipMessage, makeResponse, newTag, setToTag } from './message.ts';
import { responseEndpoint, type Endpoint } from './transport.ts';

const log = logger('sip-transport');

/** What to do with a message (src/sip/sip-guard.ts `GuardVerdict`). */
export type EdgeVerdict =
  | { action: 'drop'; reason: string }
  | { action: 'close'; reason: string }
  | { action: 'reject'; reason: string; status: number; phrase: string; detail: string };

/** A parsed request as the guard reads it. */
export interface EdgeGuardRequest {
  address: string;
  port: number;
  transport: string;
  method: string;
  userAgent: string | undefined;
  inDialog: boolean;
  bytes: number;
  bodyBytes: number;
  headerCount: number;
  longestHeader: { name: string; bytes: number } | undefined;
}

/** The guard the edge consults (src/sip/sip-guard.ts `SipGuard` is one). */
export interface EdgeGuard {
  /** Before parsing: a banned source, the rate limit. Null: go on. */
  screenSource(address: string, transport: string, isRequest: boolean, data?: Buffer): EdgeVerdict | null;
  /** After parsing a request: scanners, unknown sources, message limits. Null: go on. */
  screenMessage(r: EdgeGuardRequest): EdgeVerdict | null;
}

/** What the guard hook needs of the transport. */
export interface GuardedTransport {
  readonly address: string;
  send(msg: SipMessage, dest: Endpoint): Promise<void>;
  /** Close a TCP/TLS connection at once. */
  closeConnection(connId: string): void;
  readonly warningHost?: string | undefined;
}

/** Whether a raw message is a response (`SIP/2.0 …` status line). */
function isResponse(data: Buffer): boolean {
  let i = 0;
  while (i < data.length && (data[i] === 0x0d || data[i] === 0x0a)) i++;
  return data.length - i >= 4 && data[i] === 0x53 && data[i + 1] === 0x49 && data[i + 2] === 0x50 && data[i + 3] === 0x2f; // "SIP/"
}

function carryOut(t: GuardedTransport, v: EdgeVerdict, src: Endpoint, msg?: SipMessage): void {
  if (v.action === 'close') {
    if (src.connId) t.closeConnection(src.connId);
    return;
  }
  if (v.action !== 'reject' || !msg || !msg.isRequest || msg.method === 'ACK' || !msg.get('Via')) return;
  let dest: Endpoint;
  try {
    dest = responseEndpoint(msg, src);
  } catch {
    return;
  }
  const res = makeResponse(msg, v.status, v.phrase);
  if (!msg.toTag) setToTag(res, newTag());
  const host = t.warningHost ?? (t.address === '0.0.0.0' || t.address === '::' ? 'sip-edge' : t.address);
  res.add('Warning', `399 ${host} "${v.detail.replace(/["\\\r\n]/g, "'")}"`);
  t.send(res, dest).catch((e) => log.debug(`sending ${v.status} failed`, { err: e as Error }));
}

/** Before parsing. True: the message is finished with (dropped, connection closed). */
export function guardBeforeParse(g: EdgeGuard, t: GuardedTransport, data: Buffer, src: Endpoint): boolean {
  const v = g.screenSource(src.address, src.transport, !isResponse(data), data);
  if (!v) return false;
  carryOut(t, v, src);
  return true;
}

/** After parsing. True: the message is finished with (dropped, answered, connection closed). */
export function guardAfterParse(g: EdgeGuard, t: GuardedTransport, msg: SipMessage, src: Endpoint, bytes: number): boolean {
  if (!msg.isRequest) return false;
  let longest: { name: string; bytes: number } | undefined;
  for (const h of msg.headers) {
    const n = h.name.length + 2 + h.value.length;
    if (!longest || n > longest.bytes) longest = { name: h.name, bytes: n };
  }
  const v = g.screenMessage({
    address: src.address, port: src.port, transport: src.transport, method: msg.method ?? '',
    userAgent: msg.get('User-Agent'), inDialog: msg.toTag !== undefined && msg.toTag !== '',
    bytes, bodyBytes: msg.body.length, headerCount: msg.headers.length, longestHeader: longest,
  });
  if (!v) return false;
  carryOut(t, v, src, msg);
  return true;
}
