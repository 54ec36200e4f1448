/**
 * Typed wrapper around rtpengine-client's UDP `Client` (rtpengine's "ng" control protocol:
 * bencoded dictionaries over UDP, one request → one reply correlated by a cookie).
 *
 * What it adds to the raw client:
 * - every command has a deadline ({@link RtpengineClientOptions.timeoutMs}); a daemon that is
 *   down or unreachable gives an {@link RtpengineError} with `kind: 'timeout'` that names the
 *   URL, the command and the wait, instead of a promise that never settles;
 * - `result: error` replies become an {@link RtpengineError} (`kind: 'rejected'`) carrying
 *   rtpengine's `error-reason`; `result: ok` replies with a `warning` are logged;
 * - a reply that arrives after its deadline is dropped quietly (the raw client would print to
 *   stdout and emit an unhandled 'error');
 * - the socket never keeps the process alive on its own (pending commands do, through their
 *   deadline timers).
 */
import { createRequire } from 'node:module';
import { logger } from '../../ops/log.ts';
import { metrics } from '../../ops/metrics.ts';

const log = logger('rtpengine');

/** Where rtpengine's ng control socket listens. */
export interface RtpengineEndpoint {
  host: string;
  port: number;
}

/**
 * Parse `RTPENGINE_URL`: `udp://host:port` (also accepted: `ng://host:port`, `host:port`).
 * Only UDP is supported (rtpengine's default `listen-ng` transport). Throws with a message
 * that quotes the bad value.
 */
export function parseRtpengineUrl(url: string): RtpengineEndpoint {
  const raw = url.trim();
  const m = /^(?:(udp|ng|tcp|ws|wss|http|https):\/\/)?(\[[0-9A-Fa-f:.]+\]|[^:/\s]+):(\d{1,5})\/?$/.exec(raw);
  if (!m) throw new Error(`RTPENGINE_URL: expected udp://host:port, got ${JSON.stringify(url)}`);
  const scheme = m[1] ?? 'udp';
  if (scheme !== 'udp' && scheme !== 'ng') {
    throw new Error(`RTPENGINE_URL: only udp:// (rtpengine listen-ng) is supported, got ${JSON.stringify(url)}`);
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new Error(`RTPENGINE_URL: port out of range in ${JSON.stringify(url)}`);
  const host = m[2]!.replace(/^\[|\]$/g, '');
  return { host, port };
}

/** Why an ng command failed. */
export type RtpengineErrorKind = 'timeout' | 'rejected' | 'transport' | 'closed';

/** An ng command that failed; `message` says which command, where, and why. */
export class RtpengineError extends Error {
  readonly kind: RtpengineErrorKind;
  readonly command: string;
  /** rtpengine's `error-reason` for `kind: 'rejected'`. */
  readonly reason?: string;
  constructor(kind: RtpengineErrorKind, command: string, message: string, reason?: string) {
    super(message);
    this.name = 'RtpengineError';
    this.kind = kind;
    this.command = command;
    if (reason !== undefined) this.reason = reason;
  }
}

/** ng dictionary values (bencode: strings, integers, lists, dictionaries). */
export type NgValue = string | number | NgValue[] | { [k: string]: NgValue | undefined };
export type NgParams = { [k: string]: NgValue | undefined };

/** A reply dictionary. `result` is `ok`, `pong` or `error` (errors are thrown, never returned). */
export interface NgReply {
  result: string;
  warning?: string;
  sdp?: string;
  [k: string]: unknown;
}

/** Common parameters of offer/answer. */
export interface OfferAnswerParams extends NgParams {
  'call-id': string;
  'from-tag': string;
  sdp: string;
}

export interface RtpengineClientOptions {
  /** ng control endpoint, e.g. `udp://127.0.0.1:22222` (see {@link parseRtpengineUrl}). */
  url: string;
  /**
   * Deadline of one ng command (no retransmission: the reply is awaited this long).
   * @defaultValue 1500
   */
  timeoutMs?: number;
  /**
   * Local address of the control socket.
   * @defaultValue all interfaces (OS-chosen port)
   */
  localAddress?: string;
}

/** Defaults of {@link RtpengineClientOptions}. */
export const RTPENGINE_CLIENT_DEFAULTS = Object.freeze({ timeoutMs: 1500 });

interface RawClient {
  ping(dest: RtpengineEndpoint): Promise<Record<string, unknown>>;
  offer(dest: RtpengineEndpoint, p: NgParams): Promise<Record<string, unknown>>;
  answer(dest: RtpengineEndpoint, p: NgParams): Promise<Record<string, unknown>>;
  delete(dest: RtpengineEndpoint, p: NgParams): Promise<Record<string, unknown>>;
  query(dest: RtpengineEndpoint, p: NgParams): Promise<Record<string, unknown>>;
  list(dest: RtpengineEndpoint, p: NgParams): Promise<Record<string, unknown>>;
  statistics(dest: RtpengineEndpoint, p: NgParams): Promise<Record<string, unknown>>;
  on(ev: string, fn: (...a: unknown[]) => void): unknown;
  once(ev: string, fn: (...a: unknown[]) => void): unknown;
  close(): void;
  socket: { unref(): void; address(): { port: number } };
  messages: Map<string, unknown>;
  _onParsedMessage?: (obj: { id: string; data: unknown }) => void;
}

type RawCtor = new (opts: { timeout: number; localAddress?: string; localPort?: number }) => RawClient;

let RawClientCtor: RawCtor | null = null;
function rawCtor(): RawCtor {
  if (!RawClientCtor) {
    const require = createRequire(import.meta.url);
    try {
      RawClientCtor = (require('rtpengine-client') as { Client: RawCtor }).Client;
    } catch (err) {
      throw new Error(`rtpengine-client could not be loaded (${(err as Error).message}); it needs the npm packages rtpengine-client and debug`);
    }
  }
  return RawClientCtor;
}

/** One ng control connection (one UDP socket) to one rtpengine. */
export class RtpengineClient {
  readonly url: string;
  readonly endpoint: RtpengineEndpoint;
  readonly timeoutMs: number;
  private raw: RawClient | null;
  private ready: Promise<void>;
  private readonly pending = new Set<(e: Error) => void>();

  constructor(opts: RtpengineClientOptions) {
    this.url = opts.url;
    this.endpoint = parseRtpengineUrl(opts.url);
    this.timeoutMs = opts.timeoutMs ?? RTPENGINE_CLIENT_DEFAULTS.timeoutMs;
    if (!(this.timeoutMs > 0)) throw new Error(`rtpengine timeout must be > 0 ms, got ${opts.timeoutMs}`);
    const Ctor = rawCtor();
    // The raw client's own timeout releases its per-cookie callback; ours (a little later)
    // guarantees the promise settles even if that ever changes.
    const raw = new Ctor({ timeout: this.timeoutMs, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    this.raw = raw;
    raw.socket.unref();
    raw.on('error', (err) => log.debug('ng socket error', { url: this.url, err: err as Error }));
    // Replies to commands that already timed out: drop them (the raw client would
    // console.log and emit 'error').
    const orig = raw._onParsedMessage;
    if (typeof orig === 'function') {
      raw._onParsedMessage = (obj) => {
        if (!raw.messages.has(obj.id)) {
          log.debug('late ng reply dropped', { url: this.url, cookie: obj.id });
          return;
        }
        orig.call(raw, obj);
      };
    }
    this.ready = new Promise((resolve) => raw.once('listening', () => resolve()));
  }

  /** `ping` → resolves when rtpengine answers `pong`. */
  async ping(): Promise<void> {
    await this.command('ping', {});
  }

  /** `offer`: the offerer's SDP in, the SDP rtpengine wants sent to the answerer out. */
  async offer(params: OfferAnswerParams): Promise<NgReply & { sdp: string }> {
    return this.withSdp('offer', await this.command('offer', params));
  }

  /** `answer`: the answerer's SDP in (needs `to-tag`), the SDP for the offerer out. */
  async answer(params: OfferAnswerParams & { 'to-tag': string }): Promise<NgReply & { sdp: string }> {
    return this.withSdp('answer', await this.command('answer', params));
  }

  /** `delete`: tear down a call (or one tag of it). "Call-ID not found" comes back as a warning, not an error. */
  async delete(params: { 'call-id': string; 'from-tag'?: string; 'to-tag'?: string } & NgParams): Promise<NgReply> {
    return this.command('delete', params);
  }

  /** `query`: per-call state and packet statistics. */
  async query(params: { 'call-id': string } & NgParams): Promise<NgReply> {
    return this.command('query', params);
  }

  /** Close the control socket; pending and later commands fail with `kind: 'closed'`. Idempotent. */
  close(): void {
    const raw = this.raw;
    if (!raw) return;
    this.raw = null;
    for (const abort of this.pending) abort(new RtpengineError('closed', 'close', `rtpengine client for ${this.url} was closed`));
    this.pending.clear();
    try {
      raw.close();
    } catch { /* already closed */ }
  }

  get closed(): boolean {
    return this.raw === null;
  }

  private withSdp(cmd: string, r: NgReply): NgReply & { sdp: string } {
    if (typeof r.sdp !== 'string' || r.sdp.length === 0) {
      throw new RtpengineError('rejected', cmd, `rtpengine at ${this.url}: '${cmd}' reply carries no SDP`);
    }
    return r as NgReply & { sdp: string };
  }

  /** Send one ng command and wait for its reply (bounded by `timeoutMs`). */
  async command(cmd: 'ping' | 'offer' | 'answer' | 'delete' | 'query' | 'list' | 'statistics', params: NgParams): Promise<NgReply> {
    const raw = this.raw;
    if (!raw) throw new RtpengineError('closed', cmd, `rtpengine client for ${this.url} is closed`);
    const clean: NgParams = {};
    for (const [k, v] of Object.entries(params)) if (v !== undefined) clean[k] = v;
    const t0 = performance.now();
    const timeoutError = (): RtpengineError => new RtpengineError('timeout', cmd,
      `rtpengine at ${this.url} did not answer '${cmd}' within ${this.timeoutMs} ms (is it running and listening there?)`);
    let timer: NodeJS.Timeout | undefined;
    let abort!: (e: Error) => void;
    const deadline = new Promise<never>((_, reject) => {
      abort = reject;
      timer = setTimeout(() => reject(timeoutError()), this.timeoutMs + 50);
    });
    this.pending.add(abort);
    let data: Record<string, unknown>;
    try {
      data = await Promise.race([this.ready.then(() => raw[cmd](this.endpoint, clean)), deadline]);
    } catch (err) {
      const kind = err instanceof RtpengineError ? err.kind : /timeout/i.test(err instanceof Error ? err.message : String(err)) ? 'timeout' : 'error';
      metrics.rtpengineCommands.inc({ command: cmd, result: kind === 'timeout' ? 'timeout' : 'error' });
      if (err instanceof RtpengineError) throw err;
      const text = err instanceof Error ? err.message : String(err);
      if (/timeout/i.test(text)) throw timeoutError();
      if (this.raw === null) throw new RtpengineError('closed', cmd, `rtpengine client for ${this.url} closed during '${cmd}'`);
      throw new RtpengineError('transport', cmd, `rtpengine at ${this.url}: '${cmd}' could not be sent: ${text}`);
    } finally {
      clearTimeout(timer);
      this.pending.delete(abort);
    }
    const reply = data as NgReply;
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    metrics.rtpengineLatency.observe({ command: cmd }, (performance.now() - t0) / 1000);
    metrics.rtpengineCommands.inc({ command: cmd, result: reply.result === 'error' ? 'error' : 'ok' });
    if (reply.result === 'error') {
      const reason = String(reply['error-reason'] ?? 'no error-reason given');
      log.warn('rtpengine rejected command', { url: this.url, cmd, callId: params['call-id'], reason });
      throw new RtpengineError('rejected', cmd, `rtpengine at ${this.url} rejected '${cmd}': ${reason}`, reason);
    }
    if (reply.warning) log.info('rtpengine warning', { url: this.url, cmd, callId: params['call-id'], warning: reply.warning });
    log.debug('ng reply', { cmd, callId: params['call-id'], result: reply.result, ms });
    return reply;
  }
}
