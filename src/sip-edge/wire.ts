/**
 * drachtio wire protocol: framing and frame (de)composition.
 *
 * Every message on the control TCP stream is `<utf8-byte-length>#<payload>`, with no
 * separator between messages. A payload is a first line of `|`-separated tokens; when a
 * SIP message travels with it, the token line ends with CRLF and the SIP message runs to
 * the end of the payload. Token 0 is always a message id (UUID v4), token 1 the type.
 */
import { randomUUID } from 'node:crypto';

/** Largest payload we accept from an application, in bytes. @defaultValue 1 MiB */
export const MAX_FRAME_BYTES = 1024 * 1024;

const HASH = 0x23; // '#'
const CRLF = Buffer.from('\r\n');

/** Thrown by {@link FrameDecoder} when the stream cannot be framed any further. */
export class WireFramingError extends Error {
  override name = 'WireFramingError';
}

/**
 * Incremental decoder: feed it TCP chunks, get whole payloads back. Handles several
 * frames per chunk and frames split across chunks; lengths count UTF-8 bytes.
 */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Append a chunk and return every payload now complete (as raw bytes). */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const hash = this.buf.indexOf(HASH);
      if (hash < 0) {
        if (this.buf.length > 20) throw new WireFramingError('missing length prefix');
        break;
      }
      const prefix = this.buf.subarray(0, hash).toString('latin1');
      if (!/^[1-9][0-9]{0,9}$/.test(prefix)) {
        throw new WireFramingError(`invalid length prefix ${JSON.stringify(prefix.slice(0, 20))}`);
      }
      const len = Number(prefix);
      if (len > this.maxBytes) throw new WireFramingError(`frame too large: ${len} bytes`);
      const end = hash + 1 + len;
      if (this.buf.length < end) break;
      out.push(this.buf.subarray(hash + 1, end));
      this.buf = this.buf.subarray(end);
    }
    return out;
  }

  /** Bytes buffered while waiting for the rest of a frame. */
  get pending(): number {
    return this.buf.length;
  }
}

/** Frame a payload: `<utf8 byte length>#<payload>`. */
export function encodeFrame(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from(`${body.length}#`, 'latin1'), body]);
}

/** A decoded payload: its token line and the SIP message bytes that followed it, if any. */
export interface WireMessage {
  tokens: string[];
  /** The SIP message after the first CRLF, or undefined when the payload had none. */
  sip?: Buffer;
}

/** Split a payload into its token line and the SIP part. */
export function splitPayload(payload: Buffer): WireMessage {
  const crlf = payload.indexOf(CRLF);
  if (crlf < 0) return { tokens: payload.toString('utf8').split('|') };
  return {
    tokens: payload.subarray(0, crlf).toString('utf8').split('|'),
    sip: payload.subarray(crlf + 2),
  };
}

/** Build a payload from tokens (a message id is NOT added) and an optional SIP part. */
export function joinPayload(tokens: readonly (string | number)[], sip?: Buffer | string): Buffer {
  const line = Buffer.from(tokens.join('|'), 'utf8');
  if (sip === undefined) return line;
  const sipBuf = typeof sip === 'string' ? Buffer.from(sip, 'utf8') : sip;
  return Buffer.concat([line, CRLF, sipBuf]);
}

/** A fresh message / transaction id (UUID v4, lowercase). */
export function newId(): string {
  return randomUUID();
}

/** Wall-clock time as the wire shows it: `HH:MM:SS.ffffff` (UTC, microseconds, no date). */
export function wireTime(d: Date = new Date()): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds() * 1000, 6)}`;
}

/** Where a SIP message came from or went to, as the `sip` / `response` token fields carry it. */
export interface WireMeta {
  /** `network` (from the SIP side) or `application` (sent on the app's behalf). */
  source: 'network' | 'application';
  /** Size of the message on the SIP wire (0 for locally generated responses). */
  bytes: number;
  /** `udp` / `tcp`, or empty (ACKs, confirmations of non-INVITE responses, as drachtio-server does). */
  transport: string;
  address: string;
  port: number;
  time: string;
  transactionId: string;
  dialogId: string;
}

/**
 * Server → app `sip` message. With `local` this is the 13-token form used for requests
 * outside any dialog (`…|<txn>||<local addr>|<local port>|`), else the 11-token form.
 */
export function sipFrame(meta: WireMeta, sip: Buffer, local?: { address: string; port: number }): Buffer {
  const t: (string | number)[] = [
    newId(), 'sip', meta.source, meta.bytes, meta.transport, meta.address, meta.port, meta.time,
    meta.transactionId, meta.dialogId,
  ];
  if (local) t.push(local.address, local.port);
  t.push('');
  return joinPayload(t, sip);
}

/** `response` confirming an app-sent SIP **response** (15 tokens, remote address, dialogId). */
export function sentResponseFrame(appMsgId: string, meta: WireMeta, sip: Buffer): Buffer {
  return joinPayload(
    [newId(), 'response', appMsgId, 'OK', 'application', meta.bytes, meta.transport, meta.address, meta.port,
      meta.time, meta.transactionId, meta.dialogId, '', 'Msg sent:', ''],
    sip,
  );
}

/** `response` confirming an app-sent SIP **request** (13 tokens, local address, new transactionId). */
export function sentRequestFrame(appMsgId: string, meta: WireMeta, sip: Buffer): Buffer {
  return joinPayload(
    [newId(), 'response', appMsgId, 'OK', 'application', meta.bytes, meta.transport, meta.address, meta.port,
      meta.time, meta.transactionId, 'Msg sent:', ''],
    sip,
  );
}

/** Plain `response` to an app message: `OK`, `OK|pong`, `NOK|<reason>`, `NO|incorrect secret`, … */
export function replyFrame(appMsgId: string, ...rest: string[]): Buffer {
  return joinPayload([newId(), 'response', appMsgId, ...rest]);
}
