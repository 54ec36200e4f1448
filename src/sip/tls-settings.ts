/**
 * Config `sip.tls` (YAML) and its environment variables: SIP over TLS on the built-in edge
 * (src/sip-edge). Parsed here, called from src/config.ts, so the keys live next to what
 * reads them; problems go through the caller's `fail`, which names the file (or the
 * environment) and the field.
 *
 * ```yaml
 * sip:
 *   tls:
 *     cert: /etc/voice-agent/sip-cert.pem   # PEM certificate (+ chain); env SIP_TLS_CERT
 *     key: /etc/voice-agent/sip-key.pem     # PEM private key; env SIP_TLS_KEY
 *     ca: /etc/voice-agent/ca.pem           # optional: verifies client certs (verifyClient) and the
 *                                           # servers the edge connects to; env SIP_TLS_CA
 *     port: 5061                            # env SIP_TLS_PORT (0 = OS picks)
 *     verifyClient: false                   # mutual TLS: require client certs signed by `ca`
 *     rejectUnauthorized: true              # false only in a lab: accept any server certificate
 * ```
 * TLS is on when both `cert` and `key` are given. Relative paths are relative to the config
 * file (YAML) or the working directory (environment).
 *
 * {@link checkSipTls} reads the files at start-up: an unreadable file, a PEM that is not a
 * certificate/key, or a key that does not belong to the certificate stops start-up with a
 * config error naming the field.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import tls from 'node:tls';

export interface SipTlsSettings {
  /** PEM certificate file (the edge's; a chain may follow it). YAML `sip.tls.cert`, env `SIP_TLS_CERT`. */
  cert: string;
  /** PEM private key file of `cert`. YAML `sip.tls.key`, env `SIP_TLS_KEY`. */
  key: string;
  /**
   * PEM CA file: client certificates are verified against it when `verifyClient`, and servers
   * the edge connects to over TLS. YAML `sip.tls.ca`, env `SIP_TLS_CA`.
   * @defaultValue unset (servers: Node's system CA store; no client certificates asked for)
   */
  ca?: string;
  /** TLS listen port (0 = OS picks). YAML `sip.tls.port`, env `SIP_TLS_PORT`. @defaultValue 5061 */
  port: number;
  /** Mutual TLS: a client must present a certificate signed by `ca`. YAML `sip.tls.verifyClient`. @defaultValue false */
  verifyClient: boolean;
  /**
   * Verify the certificates of servers the edge connects to (reps' phones, PBXs). `false`
   * only by explicit configuration, for a lab. YAML `sip.tls.rejectUnauthorized`. @defaultValue true
   */
  rejectUnauthorized: boolean;
}

/** The PEM material of {@link SipTlsSettings}, read from its files. */
export interface SipTlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

type Fail = (field: string, problem: string) => never;
/** Fail naming a field of a given source (the config file or `environment`). */
type FailAt = (source: string, field: string, problem: string) => never;

/** Default TLS port (RFC 3261 §26.2: sips / SIP over TLS). */
export const DEFAULT_SIP_TLS_PORT = 5061;

const KEYS = ['cert', 'key', 'ca', 'port', 'verifyClient', 'rejectUnauthorized'] as const;
type Key = (typeof KEYS)[number];
const ENV: Partial<Record<Key, string>> = { cert: 'SIP_TLS_CERT', key: 'SIP_TLS_KEY', ca: 'SIP_TLS_CA', port: 'SIP_TLS_PORT' };

/** Settings being assembled: the values and where each came from (`source`, `field`). */
export interface SipTlsDraft {
  values: Partial<SipTlsSettings>;
  from: Partial<Record<Key, { source: string; field: string }>>;
}

export function newSipTlsDraft(): SipTlsDraft {
  return { values: {}, from: {} };
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

function filePath(fail: Fail, field: string, v: unknown, base: string): string {
  if (typeof v !== 'string' || v.trim() === '') fail(field, `must be a file path (PEM), got ${show(v)}`);
  return path.resolve(base, (v as string).trim());
}

function port(fail: Fail, field: string, v: unknown): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) fail(field, `must be an integer 0-65535, got ${show(v)}`);
  return n as number;
}

function bool(fail: Fail, field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(field, `must be true or false, got ${show(v)}`);
  return v as boolean;
}

/** YAML `sip.tls` (`v`) from `source`; relative paths against `dir`. */
export function applySipTlsFile(d: SipTlsDraft, v: unknown, dir: string, source: string, fail: Fail): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('sip.tls', `must be a mapping (cert, key, ca, port, verifyClient, rejectUnauthorized), got ${show(v)}`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(KEYS as readonly string[]).includes(k)) fail(`sip.tls.${k}`, `unknown key (expected one of ${KEYS.join(', ')})`);
  const set = <K extends Key>(k: K, val: SipTlsSettings[K]): void => {
    d.values[k] = val;
    d.from[k] = { source, field: `sip.tls.${k}` };
  };
  const has = (k: string): boolean => o[k] !== undefined && o[k] !== null;
  if (has('cert')) set('cert', filePath(fail, 'sip.tls.cert', o.cert, dir));
  if (has('key')) set('key', filePath(fail, 'sip.tls.key', o.key, dir));
  if (has('ca')) set('ca', filePath(fail, 'sip.tls.ca', o.ca, dir));
  if (has('port')) set('port', port(fail, 'sip.tls.port', o.port));
  if (has('verifyClient')) set('verifyClient', bool(fail, 'sip.tls.verifyClient', o.verifyClient));
  if (has('rejectUnauthorized')) set('rejectUnauthorized', bool(fail, 'sip.tls.rejectUnauthorized', o.rejectUnauthorized));
}

/** `SIP_TLS_CERT`, `SIP_TLS_KEY`, `SIP_TLS_CA`, `SIP_TLS_PORT` (empty = unset); paths against `cwd`. */
export function applySipTlsEnv(d: SipTlsDraft, env: NodeJS.ProcessEnv, cwd: string, fail: Fail): void {
  for (const k of ['cert', 'key', 'ca', 'port'] as const) {
    const name = ENV[k]!;
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (k === 'port') d.values.port = port(fail, name, v);
    else d.values[k] = filePath(fail, name, v, cwd);
    d.from[k] = { source: 'environment', field: name };
  }
}

/**
 * The settings (TLS on: cert and key given), or undefined (off). Fields given without both
 * cert and key are an error, so a half-configured TLS never goes unnoticed.
 */
export function finishSipTls(d: SipTlsDraft, fail: FailAt, defaultSource: string): SipTlsSettings | undefined {
  const { values: v, from } = d;
  const given = Object.keys(from) as Key[];
  if (given.length === 0) return undefined;
  if (v.cert === undefined || v.key === undefined) {
    const missing = v.cert === undefined ? 'cert' : 'key';
    const other = from[given[0]!]!;
    const name = other.source === 'environment' ? ENV[missing]! : `sip.tls.${missing}`;
    return fail(other.source, other.field, `SIP over TLS needs both a certificate and a key: ${name} is not set`);
  }
  const s: SipTlsSettings = {
    cert: v.cert, key: v.key, port: v.port ?? DEFAULT_SIP_TLS_PORT,
    verifyClient: v.verifyClient ?? false, rejectUnauthorized: v.rejectUnauthorized ?? true,
    ...(v.ca !== undefined ? { ca: v.ca } : {}),
  };
  if (s.verifyClient && s.ca === undefined) {
    const at = from.verifyClient ?? { source: defaultSource, field: 'sip.tls.verifyClient' };
    return fail(at.source, at.field, 'needs sip.tls.ca (SIP_TLS_CA): the CA that signs the client certificates');
  }
  sources.set(s, from);
  return s;
}

const sources = new WeakMap<SipTlsSettings, SipTlsDraft['from']>();

function readPem(fail: FailAt, at: { source: string; field: string }, file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    return fail(at.source, at.field, `cannot read the ${what} ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/**
 * Read and check the files: the certificate and CA parse as X.509 PEM, the key as a private
 * key, the key belongs to the certificate. @returns the PEM material for the TLS listener.
 */
export function checkSipTls(s: SipTlsSettings, fail: FailAt, defaultSource = 'environment'): SipTlsMaterial {
  const from = sources.get(s) ?? {};
  const at = (k: Key): { source: string; field: string } => from[k] ?? { source: defaultSource, field: `sip.tls.${k}` };
  const cert = readPem(fail, at('cert'), s.cert, 'certificate');
  const key = readPem(fail, at('key'), s.key, 'private key');
  const ca = s.ca !== undefined ? readPem(fail, at('ca'), s.ca, 'CA certificate') : undefined;
  let x509: crypto.X509Certificate;
  try {
    x509 = new crypto.X509Certificate(cert);
  } catch (err) {
    return fail(at('cert').source, at('cert').field, `${s.cert} is not a PEM certificate (${(err as Error).message})`);
  }
  let pkey: crypto.KeyObject;
  try {
    pkey = crypto.createPrivateKey(key);
  } catch (err) {
    return fail(at('key').source, at('key').field, `${s.key} is not a PEM private key (${(err as Error).message}; encrypted keys are not supported)`);
  }
  if (!x509.checkPrivateKey(pkey)) {
    return fail(at('key').source, at('key').field, `the private key ${s.key} does not match the certificate ${s.cert} (${x509.subject.replace(/\n/g, ', ')})`);
  }
  if (Date.parse(x509.validTo) < Date.now()) {
    return fail(at('cert').source, at('cert').field, `the certificate ${s.cert} expired on ${x509.validTo}`);
  }
  if (ca) {
    try {
      new crypto.X509Certificate(ca);
      tls.createSecureContext({ ca });
    } catch (err) {
      return fail(at('ca').source, at('ca').field, `${s.ca} is not a PEM CA certificate (${(err as Error).message})`);
    }
  }
  try {
    tls.createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    return fail(at('cert').source, at('cert').field, `TLS rejects ${s.cert} / ${s.key}: ${(err as Error).message}`);
  }
  return { cert, key, ...(ca ? { ca } : {}) };
}

/** `tls/127.0.0.1:5061` — how logs show the TLS listener. */
export function describeSipTls(address: string, s: SipTlsSettings | undefined, port = s?.port): string {
  return s ? `,tls/${address}:${port}${s.verifyClient ? '(mutual)' : ''}` : '';
}
