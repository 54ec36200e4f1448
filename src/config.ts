/**
 * Process configuration: embedded defaults ← optional YAML file ← environment variables.
 *
 * The YAML file is named by `--config <path>` (or `--config=<path>`) on the command line,
 * else by `CONFIG_FILE`. Every key is optional; unknown keys are errors (typos should not
 * be silently ignored). Any invalid value throws a {@link ConfigError} whose message names
 * the source and the field, e.g.
 * `config error: /etc/voice-agent.yaml: sip.port: must be an integer 0-65535, got "abc"`;
 * `main` prints it and exits with code 2.
 *
 * YAML shape (all optional):
 * ```yaml
 * sip: { address: 127.0.0.1, port: 5060, transports: [udp, tcp] }
 *   # tls: { cert: sip-cert.pem, key: sip-key.pem, ca: ca.pem, port: 5061 }   # SIP over TLS (src/sip/tls-settings.ts)
 * edge: builtin            # or: drachtio
 * drachtio: { host: 127.0.0.1, port: 9022, secret: cymru }
 *   # mode: outbound, listenAddress: 127.0.0.1, listenPort: 9023   # drachtio-server connects to us (docs/SCALE.md)
 * rtp: { address: 127.0.0.1, publicAddress: 203.0.113.7, portMin: 40000, portMax: 40999,
 *        address6: '::1', publicAddress6: '2001:db8::7' }   # IPv6 media (c=IN IP6): optional
 * tenantsFile: ./tenants.yaml
 * maxCallSeconds: 3600
 * answerDelayMs: 0         # ring (180) this long before answering
 * rtpTimeoutSeconds: 30
 * sessionTimer: { enabled: true, interval: 1800, minSE: 90 }   # RFC 4028 session timers
 * logLevel: info
 * rtpengine:               # anchor media on rtpengine (off when absent)
 *   url: udp://127.0.0.1:22222
 *   timeoutMs: 1500
 *   transcode: [PCMU, PCMA]
 *   direction: [external, internal]
 *   flags: [SIP-source-address]
 * cdr:                     # call detail records (src/cdr/settings.ts documents every key)
 *   db: ./var/cdr.sqlite    # or off; env CDR_DB
 *   retentionDays: 90       # env CDR_RETENTION_DAYS; a tenant's cdr.retentionDays wins
 *   prices: { default: { carrier: { perMinute: 0.0085 } } }
 * defaultCountry: US       # national number forms (ANI/DNIS) when no trunk says otherwise
 * trunks:                  # carriers / PBXs we take calls from (identity headers trusted from these)
 *   - name: carrier-a
 *     sources: [203.0.113.0/24, 2001:db8:5::/48]
 *     trustIdentity: true  # P-Asserted-Identity / Remote-Party-ID from here are believed (default true)
 *     country: US          # national forms from this trunk (default: defaultCountry)
 *     earlyMedia: true     # 183 with our SDP before the 200 (default: earlyMedia below)
 *     srtp: required       # off | optional | required (default: srtp below)
 *     # auth: {realm, user, passwordEnv}, dids: [...], maxCalls: 30, tenant: acme   (src/sip/guard-settings.ts)
 * sipGuard: { unknownSources: auto, rateLimit: { requests: 16, seconds: 2, banSeconds: 300 } }   # src/sip/guard-settings.ts
 * earlyMedia: false        # 183 Session Progress with SDP (reliable when the caller supports 100rel) before the 200
 * srtp: optional           # SRTP (SDES) for calls from no trunk / trunks that do not say: off | optional | required
 * ```
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import ipaddr from 'ipaddr.js';
import { isSupportedCountry, type CountryCode } from 'libphonenumber-js';
import { parseRtpengineUrl } from './media/rtpengine/client.ts';
import { applyCdrEnv, applyCdrFile, defaultCdrSettings, type CdrSettings } from './cdr/settings.ts';
import {
  applySipTlsEnv, applySipTlsFile, checkSipTls, describeSipTls, finishSipTls, newSipTlsDraft,
  type SipTlsDraft, type SipTlsMaterial, type SipTlsSettings,
} from './sip/tls-settings.ts';
import { SRTP_POLICIES, type SrtpPolicy } from './sip/srtp-settings.ts';
import { applyConsoleAuthFile, CONSOLE_AUTH_KEYS, defaultConsoleAuth, demoRefusal, type ConsoleAuthSettings } from './escalation/console/settings.ts';
import { ADMISSION_DEFAULTS, type AdmissionLimits } from './sip/admission.ts';
import { isLoopbackHost } from './ops/auth.ts';
import {
  applySipGuardEnv, applySipGuardFile, defaultSipGuard, finishTrunkAccess, trunkAccess, TRUNK_ACCESS_KEYS,
  type SipGuardSettings, type TrunkAccess,
} from './sip/guard-settings.ts';
import { applySpeechEnv, applySpeechFile, defaultSpeechSettings, type SttSettings, type TtsSettings } from './speech/settings.ts';

export type Transport = 'udp' | 'tcp';
export type EdgeMode = 'builtin' | 'drachtio';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** A configuration problem; `message` is `<source>: <field>: <what is wrong>`. */
export class ConfigError extends Error {
  readonly source: string;
  readonly field: string;
  constructor(source: string, field: string, problem: string) {
    super(field ? `${source}: ${field}: ${problem}` : `${source}: ${problem}`);
    this.name = 'ConfigError';
    this.source = source;
    this.field = field;
  }
}

/**
 * Read and parse a YAML file (duplicate keys are an error). @throws ConfigError naming the
 * file: `cannot read <what> (ENOENT)` or `invalid YAML: <first line of the parser's message>`
 */
export function readYamlFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0]! : (err as Error).message;
    throw new ConfigError(file, '', `invalid YAML: ${msg}`);
  }
}

export interface SipConfig {
  /**
   * Address the SIP edge listens on (built-in edge only; a drachtio-server has its own).
   * Env `SIP_ADDRESS`. @defaultValue '127.0.0.1'
   */
  address: string;
  /**
   * SIP port (UDP and TCP). 0 picks a free port (tests). Env `SIP_PORT`. @defaultValue 5060
   */
  port: number;
  /**
   * Transports to listen on. Env `SIP_TRANSPORTS` (`udp,tcp` or `udp+tcp`).
   * @defaultValue ['udp', 'tcp']
   */
  transports: Transport[];
  /**
   * RFC 3261 T1 (round-trip estimate) of the built-in edge, in ms: 2xx retransmissions start
   * at T1 and a 2xx never ACKed is given up after 64·T1. Larger for long-delay trunks; smaller
   * only on a closed network (RFC 3261 §17.1.1.1). With edge `drachtio`, drachtio-server's own
   * timers apply. Env `SIP_T1_MS`. @defaultValue 500
   */
  t1Ms: number;
  /**
   * SIP over TLS (built-in edge): on when a certificate and key are given (YAML `sip.tls`,
   * env `SIP_TLS_CERT`/`SIP_TLS_KEY`/`SIP_TLS_CA`/`SIP_TLS_PORT`; src/sip/tls-settings.ts).
   * @defaultValue unset (off)
   */
  tls?: SipTlsSettings;
}

export interface DrachtioConfig {
  /**
   * drachtio control endpoint. In `builtin` mode the app starts the built-in edge's control
   * listener here and connects drachtio-srf to it; in `drachtio` mode this is the
   * drachtio-server's admin address. Env `DRACHTIO_HOST`. @defaultValue '127.0.0.1'
   */
  host: string;
  /** Env `DRACHTIO_PORT`; 0 = any free port (builtin only). @defaultValue 9022 */
  port: number;
  /** Shared secret of the control connection. Env `DRACHTIO_SECRET`. @defaultValue 'cymru' */
  secret: string;
  /**
   * Who opens the control connection (edge `drachtio` only). `inbound`: the app connects to
   * drachtio-server's admin port (`host`/`port`). `outbound`: the app listens on
   * `listenAddress`/`listenPort` and drachtio-server connects to it for each new request, as
   * its `<request-handlers>` (or `voice-agent drachtio-router`) decide. Env `DRACHTIO_MODE`.
   * @defaultValue 'inbound'
   */
  mode?: DrachtioMode;
  /** Address the app listens on for drachtio-server in `outbound` mode. Env `DRACHTIO_LISTEN_ADDRESS`. @defaultValue '127.0.0.1' */
  listenAddress?: string;
  /** Port the app listens on for drachtio-server in `outbound` mode. Env `DRACHTIO_LISTEN_PORT`. @defaultValue 9023 */
  listenPort?: number;
}

export type DrachtioMode = 'inbound' | 'outbound';

export interface RtpConfig {
  /** Local address RTP sockets bind to. Env `RTP_ADDRESS`. @defaultValue '127.0.0.1' */
  bindAddress: string;
  /**
   * Address advertised in SDP `c=`/`o=` (the public address behind NAT).
   * Env `RTP_PUBLIC_ADDRESS`. @defaultValue the bind address
   */
  publicAddress: string;
  /** Lowest RTP port. Env `RTP_PORT_MIN`. @defaultValue 40000 */
  portMin: number;
  /** Highest RTP port. Env `RTP_PORT_MAX`. @defaultValue 40999 */
  portMax: number;
  /**
   * Local IPv6 address for media of peers whose SDP says `c=IN IP6` (a second set of RTP
   * sockets from the same port range). Without it, and with an IPv4 `address`, such offers
   * are answered 488. YAML `rtp.address6`, env `RTP_ADDRESS6` (`off` clears).
   * @defaultValue unset
   */
  bindAddress6?: string;
  /**
   * IPv6 address advertised in `c=IN IP6` answers. YAML `rtp.publicAddress6`, env
   * `RTP_PUBLIC_ADDRESS6`. @defaultValue `address6` (`::1` when that is `::`), or `address`
   * when that is itself IPv6
   */
  publicAddress6?: string;
}

/**
 * rtpengine anchor mode: the carrier's media lands on rtpengine, which relays it to our
 * native media core (same shape as `RtpengineConfig` of src/media/rtpengine).
 */
export interface RtpengineSettings {
  /**
   * ng control URL of rtpengine (`listen-ng`), `udp://host:port`. Env `RTPENGINE_URL`
   * (`off` disables one set in the file). @defaultValue unset (anchoring off)
   */
  url: string;
  /**
   * Deadline of one ng command (ms); a call whose offer/answer misses it is answered 503.
   * Env `RTPENGINE_TIMEOUT_MS`. @defaultValue 1500
   */
  timeoutMs: number;
  /**
   * Codecs rtpengine adds toward us and transcodes, so carriers offering only codecs our
   * core lacks still connect. Env `RTPENGINE_TRANSCODE` (comma-separated, e.g. `PCMU,PCMA`).
   * @defaultValue [] (no transcoding)
   */
  transcode: string[];
  /**
   * Logical interfaces `[carrier side, our side]` of a multi-homed rtpengine.
   * Env `RTPENGINE_DIRECTION` (e.g. `external,internal`). @defaultValue unset
   */
  direction?: [string, string];
  /** Extra ng flags on every offer/answer. Env `RTPENGINE_FLAGS` (comma-separated). @defaultValue [] */
  flags: string[];
}

export interface Config {
  sip: SipConfig;
  /** `builtin` (src/sip-edge in-process) or `drachtio` (external drachtio-server). Env `EDGE`. @defaultValue 'builtin' */
  edge: EdgeMode;
  drachtio: DrachtioConfig;
  rtp: RtpConfig;
  /**
   * Tenant YAML file (absolute after loading; relative paths resolve against the config
   * file's directory, or the working directory for `TENANTS_FILE`).
   * Env `TENANTS_FILE`. @defaultValue the embedded demo file src/tenants/tenants.yaml
   */
  tenantsFile: string;
  /** Hang up calls longer than this (seconds after answer); 0 = no limit; a tenant's own limit can only lower it. Env `MAX_CALL_SECONDS`. @defaultValue 3600 */
  maxCallSeconds: number;
  /**
   * Ring before answering: send 180 Ringing and answer after this many ms (0 = answer at
   * once). Useful when a carrier expects ringback, and to let a CANCEL win deterministically
   * in tests. Env `ANSWER_DELAY_MS`. @defaultValue 0
   */
  answerDelayMs: number;
  /** Hang up when no RTP arrives for this long (seconds); 0 = off. Env `RTP_TIMEOUT_SECONDS`. @defaultValue 30 */
  rtpTimeoutSeconds: number;
  /** SIP session timers (RFC 4028), see src/call/session-timer.ts. */
  sessionTimer: SessionTimerSettings;
  /**
   * Early media for calls from no trunk (or a trunk that does not say): 183 Session Progress
   * with our SDP first (reliable when the caller supports 100rel), then the 200 with the same
   * SDP (after `answerDelayMs`). Env `EARLY_MEDIA` (`on`/`off`). @defaultValue false
   */
  earlyMedia: boolean;
  /**
   * SRTP (RTP/SAVP with SDES keys, RFC 4568) for calls from no trunk or a trunk that does not
   * say: `optional` answers SAVP offers with SRTP and plain ones with RTP, `required` refuses
   * plain RTP offers (488), `off` refuses SAVP offers (488). Env `SRTP`. See
   * src/sip/srtp-settings.ts. @defaultValue 'optional'
   */
  srtp: SrtpPolicy;
  /** Env `LOG_LEVEL`. @defaultValue 'info' */
  logLevel: LogLevel;
  /**
   * rtpengine anchor; null = media goes straight to the native core. Set by
   * `RTPENGINE_URL` (or `rtpengine.url` in the file). @defaultValue null
   */
  rtpengine: RtpengineSettings | null;
  /** Human hand-off: where reps' phones are and how long they ring. */
  handoff: HandoffSettings;
  /** The rep console (screen pops over HTTP + SSE). */
  console: ConsoleSettings;
  /**
   * Country whose national number forms are assumed for calling and dialed numbers that are
   * not in E.164 (`4155550100` → `+14155550100` for `US`), unless the trunk a call came
   * from names its own. ISO 3166 alpha-2. Env `DEFAULT_COUNTRY`. @defaultValue 'US'
   */
  defaultCountry: CountryCode;
  /**
   * The carriers and PBXs that send us calls, recognised by source address. Identity headers
   * (P-Asserted-Identity, Remote-Party-ID) are believed only from a trunk with
   * `trustIdentity`; with no trunk configured, only from loopback (the tests' and a local
   * SBC's address). Env `TRUNKS` (the same list as YAML/JSON flow text, e.g.
   * `[{name: a, sources: [203.0.113.0/24]}]`). @defaultValue [] (none)
   */
  trunks: TrunkSettings[];
  /**
   * What keeps the SIP side safe on a public address: unknown sources, the per-source rate
   * limit and ban, scanner User-Agents, message limits (src/sip/guard-settings.ts).
   */
  sipGuard: SipGuardSettings;
  /** The ops HTTP listener: /metrics, /livez, /readyz. */
  ops: OpsSettings;
  /** Overload admission (503 + Retry-After before answering). See src/sip/admission.ts. */
  admission: AdmissionLimits;
  /**
   * Graceful drain on SIGTERM: readiness fails, OPTIONS and new INVITEs get 503, live calls
   * run to their end for at most this long; then the agent says the tenant's `drainGoodbye`
   * and hangs up. A second SIGTERM stops at once. Env `DRAIN_SECONDS`. @defaultValue 300
   */
  drainSeconds: number;
  /** Log line format: `logfmt` (key=value) or `json` (one object per line). Env `LOG_FORMAT`. @defaultValue 'logfmt' */
  logFormat: 'logfmt' | 'json';
  /** Call detail records: the store, retention, price tables (src/cdr/settings.ts). */
  cdr: CdrSettings;
  /**
   * Speech-to-text of every call unless its tenant says otherwise: `pocketsphinx` (local) or
   * `openai` (an OpenAI-compatible /audio/transcriptions endpoint), src/speech/settings.ts.
   * Env `STT_PROVIDER`, `STT_BASE_URL`, `STT_MODEL`, `STT_API_KEY_ENV`, `STT_TIMEOUT_MS`.
   * @defaultValue { provider: 'pocketsphinx', timeoutMs: 3000 }
   */
  stt: SttSettings;
  /**
   * Text-to-speech of every call unless its tenant says otherwise: `flite` (local),
   * `espeak-ng` (local) or `openai` (/audio/speech, streamed PCM), src/speech/settings.ts.
   * Env `TTS_PROVIDER`, `TTS_BASE_URL`, `TTS_MODEL`, `TTS_VOICE`, `TTS_API_KEY_ENV`,
   * `TTS_FIRST_AUDIO_MS`, `TTS_TIMEOUT_MS`. @defaultValue { provider: 'flite', firstAudioMs: 1500, timeoutMs: 15000 }
   */
  tts: TtsSettings;
  /** The YAML file that was loaded, if any. */
  configFile?: string;
}

export interface OpsSettings {
  /** Listen address; `off` in `OPS_ADDRESS` disables the listener. Env `OPS_ADDRESS`. @defaultValue '127.0.0.1' */
  address: string;
  /** Port; 0 = any free port. Env `OPS_PORT`. @defaultValue 9464 */
  port: number;
  /** @defaultValue true */
  enabled: boolean;
}

/**
 * One carrier trunk or PBX (YAML `trunks[]`): who it is (source addresses), what of its
 * identity headers is believed, and its access rules — digest credentials, allowed DIDs,
 * concurrent calls, the tenant its calls go to ({@link TrunkAccess}, src/sip/guard-settings.ts).
 */
export interface TrunkSettings extends TrunkAccess {
  /** Name for logs and the CDR (`trunk=`); unique. */
  name: string;
  /** Source addresses of its signalling: IPv4/IPv6 CIDRs (a bare address is a /32 or /128). */
  sources: string[];
  /**
   * Believe the caller identity it asserts (P-Asserted-Identity, then Remote-Party-ID) over
   * From. @defaultValue true
   */
  trustIdentity: boolean;
  /** ISO 3166 alpha-2 country of its national number forms. @defaultValue the global defaultCountry */
  country: CountryCode;
  /**
   * Send 183 Session Progress with our SDP before the 200 (reliably when the caller supports
   * 100rel), for carriers that want early media. @defaultValue the global `earlyMedia` (false)
   */
  earlyMedia?: boolean;
  /** SRTP policy of its calls (off | optional | required). @defaultValue the global `srtp` (optional) */
  srtp?: SrtpPolicy;
}

export interface SessionTimerSettings {
  /**
   * Session timers on: honour the caller's Session-Expires/Min-SE, answer with
   * Session-Expires, refresh when we are the refresher, hang up (`session-expired`) when the
   * caller's refreshes stop. Off: no timer headers; `Require: timer` gets 420.
   * Env `SESSION_TIMER` (`on`/`off`). @defaultValue true
   */
  enabled: boolean;
  /** Session interval we ask for and the most we accept (seconds). Env `SESSION_EXPIRES`. @defaultValue 1800 */
  interval: number;
  /**
   * Shortest interval we accept (seconds): an INVITE, re-INVITE or UPDATE asking for less
   * gets 422 with this `Min-SE`. RFC 4028 says at least 90; lower values are for tests.
   * Env `SESSION_MIN_SE`. @defaultValue 90
   */
  minSE: number;
}

export interface HandoffSettings {
  /**
   * SIP URI template of a rep's or queue's phone; `{extension}` is replaced by the extension
   * the CRM's routing picked (a tenant's `escalation.repUri` wins). Env `REP_URI`.
   * @defaultValue 'sip:{extension}@127.0.0.1:5070'
   */
  repUri: string;
  /** How long the rep's phone rings before the agent takes the caller back (seconds). Env `REP_RING_SECONDS`. @defaultValue 20 */
  ringSeconds: number;
}

/** Rep logins, session and pop-link lifetimes: src/escalation/console/settings.ts. */
export interface ConsoleSettings extends ConsoleAuthSettings {
  /** Listen address of the rep console; `off` in `CONSOLE_ADDRESS` disables it. Env `CONSOLE_ADDRESS`. @defaultValue '127.0.0.1' */
  address: string;
  /** Port; 0 = any free port. Env `CONSOLE_PORT`. @defaultValue 8088 */
  port: number;
  /** Base URL reps' browsers and softphones use for pops (the `X-Screen-Pop-Url` header). Env `CONSOLE_URL`. @defaultValue http://address:port */
  publicUrl?: string;
  /** false: no console is served (pops still go to the CRM and SIP headers). @defaultValue true */
  enabled: boolean;
}

/** The embedded demo tenants file. */
export const DEFAULT_TENANTS_FILE = fileURLToPath(new URL('./tenants/tenants.yaml', import.meta.url));

/** Embedded defaults. */
export function defaultConfig(): Config {
  return {
    sip: { address: '127.0.0.1', port: 5060, transports: ['udp', 'tcp'], t1Ms: 500 },
    edge: 'builtin',
    drachtio: { host: '127.0.0.1', port: 9022, secret: 'cymru' },
    rtp: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', portMin: 40000, portMax: 40999 },
    tenantsFile: DEFAULT_TENANTS_FILE,
    maxCallSeconds: 3600,
    answerDelayMs: 0,
    rtpTimeoutSeconds: 30,
    sessionTimer: { enabled: true, interval: 1800, minSE: 90 },
    earlyMedia: false,
    srtp: 'optional',
    logLevel: 'info',
    rtpengine: null,
    handoff: { repUri: 'sip:{extension}@127.0.0.1:5070', ringSeconds: 20 },
    console: { address: '127.0.0.1', port: 8088, enabled: true, ...defaultConsoleAuth() },
    cdr: defaultCdrSettings(),
    ...defaultSpeechSettings(),
    ops: { address: '127.0.0.1', port: 9464, enabled: true },
    admission: { ...ADMISSION_DEFAULTS },
    drainSeconds: 300,
    logFormat: 'logfmt',
    defaultCountry: 'US',
    trunks: [],
    sipGuard: defaultSipGuard(),
  };
}

/** Defaults of {@link RtpengineSettings} other than `url`. */
export const RTPENGINE_SETTINGS_DEFAULTS = Object.freeze({ timeoutMs: 1500 });

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

/** Reads typed values from one source (a YAML mapping or the environment) with uniform errors. */
class Reader {
  constructor(readonly source: string, readonly fromEnv: boolean) {}

  fail(field: string, problem: string): never {
    throw new ConfigError(this.source, field, problem);
  }

  int(field: string, v: unknown, min: number, max: number): number {
    let n: number | undefined;
    if (typeof v === 'number' && Number.isInteger(v)) n = v;
    else if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) n = Number(v);
    if (n === undefined || n < min || n > max) this.fail(field, `must be an integer ${min}-${max}, got ${show(v)}`);
    return n;
  }

  host(field: string, v: unknown): string {
    if (typeof v !== 'string' || v.trim() === '' || !HOST_RE.test(v.trim())) this.fail(field, `must be an IP address or host name, got ${show(v)}`);
    return v.trim();
  }

  str(field: string, v: unknown): string {
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string' || v === '') this.fail(field, `must be a non-empty string, got ${show(v)}`);
    return v;
  }

  oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
    const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
    if (typeof s !== 'string' || !(allowed as readonly string[]).includes(s)) {
      this.fail(field, `must be one of ${allowed.join(', ')}, got ${show(v)}`);
    }
    return s as T;
  }

  transports(field: string, v: unknown): Transport[] {
    let items: unknown[];
    if (typeof v === 'string') items = v.split(/[,+\s]+/).filter((x) => x !== '');
    else if (Array.isArray(v)) items = v;
    else this.fail(field, `must be a list of udp/tcp, got ${show(v)}`);
    if (items.length === 0) this.fail(field, 'must name at least one transport (udp, tcp)');
    const out: Transport[] = [];
    for (const [i, item] of items.entries()) {
      const t = this.oneOf(this.fromEnv ? field : `${field}[${i}]`, item, ['udp', 'tcp'] as const);
      if (!out.includes(t)) out.push(t);
    }
    return out;
  }

  /** A list of names, from a YAML list or a comma-separated string. */
  names(field: string, v: unknown): string[] {
    let items: unknown[];
    if (typeof v === 'string') items = v.split(',');
    else if (Array.isArray(v)) items = v;
    else this.fail(field, `must be a list of names, got ${show(v)}`);
    const out: string[] = [];
    for (const item of items) {
      const x = typeof item === 'string' ? item.trim() : item;
      if (x === '') continue;
      if (typeof x !== 'string' || !/^[A-Za-z0-9._\-/=]+$/.test(x)) this.fail(field, `bad name ${show(item)}`);
      out.push(x);
    }
    return out;
  }

  rtpengineUrl(field: string, v: unknown): string {
    const u = this.str(field, v).trim();
    try {
      parseRtpengineUrl(u);
    } catch {
      this.fail(field, `must be udp://host:port (rtpengine listen-ng), got ${show(v)}`);
    }
    return u;
  }

  mapping(field: string, v: unknown, keys: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(field, `must be a mapping, got ${show(v)}`);
    for (const k of Object.keys(v)) {
      if (!keys.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown key (expected one of ${keys.join(', ')})`);
    }
    return v as Record<string, unknown>;
  }
}

const TOP_KEYS = ['sip', 'edge', 'drachtio', 'rtp', 'tenantsFile', 'maxCallSeconds', 'answerDelayMs', 'rtpTimeoutSeconds', 'logLevel', 'rtpengine', 'handoff', 'console', 'sessionTimer', 'earlyMedia', 'srtp', 'ops', 'admission', 'drainSeconds', 'logFormat', 'defaultCountry', 'trunks', 'sipGuard', 'cdr', 'stt', 'tts'] as const;

const ADMISSION_KEYS = ['maxCalls', 'maxCallsPerTenant', 'mediaLateMs', 'eventLoopMs', 'cpuPercent', 'windowSeconds'] as const;
/** Allowed ranges of the admission limits (0 = off, except the window). */
const ADMISSION_RANGES: Record<keyof AdmissionLimits, [number, number]> = {
  maxCalls: [0, 100000], maxCallsPerTenant: [0, 100000], mediaLateMs: [0, 1000], eventLoopMs: [0, 60000], cpuPercent: [0, 100], windowSeconds: [1, 300],
};
const ADMISSION_ENV: Record<keyof AdmissionLimits, string> = {
  maxCalls: 'MAX_CALLS', maxCallsPerTenant: 'MAX_CALLS_PER_TENANT', mediaLateMs: 'ADMISSION_MEDIA_LATE_MS',
  eventLoopMs: 'ADMISSION_EVENT_LOOP_MS', cpuPercent: 'ADMISSION_CPU_PERCENT', windowSeconds: 'ADMISSION_WINDOW_SECONDS',
};

function rtpengineOf(cfg: Config): RtpengineSettings {
  cfg.rtpengine ??= { url: '', timeoutMs: RTPENGINE_SETTINGS_DEFAULTS.timeoutMs, transcode: [], flags: [] };
  return cfg.rtpengine;
}

function direction(r: Reader, field: string, v: unknown): [string, string] {
  const d = r.names(field, v);
  if (d.length !== 2) r.fail(field, `expected two interface names (carrier side, our side), got ${show(v)}`);
  return [d[0]!, d[1]!];
}

/** A rep SIP URI template: `sip:` or `sips:` with `{extension}`. */
export function repUri(r: { fail(f: string, p: string): never }, field: string, v: unknown): string {
  if (typeof v !== 'string' || !/^sips?:\S*\{extension\}\S*$/.test(v.trim())) {
    r.fail(field, `must be a SIP URI template containing {extension}, e.g. sip:{extension}@pbx.example.com, got ${show(v)}`);
  }
  return (v as string).trim();
}

function httpUrl(r: Reader, field: string, v: unknown): string {
  if (typeof v !== 'string' || !/^https?:\/\/\S+$/.test(v.trim())) r.fail(field, `must be an http(s) URL, got ${show(v)}`);
  return (v as string).trim().replace(/\/+$/, '');
}

function country(r: Reader, field: string, v: unknown): CountryCode {
  const c = typeof v === 'string' ? v.trim().toUpperCase() : v;
  if (typeof c !== 'string' || !/^[A-Z]{2}$/.test(c) || !isSupportedCountry(c)) {
    r.fail(field, `must be an ISO 3166 alpha-2 country code with a telephone numbering plan (e.g. US, GB, DE), got ${show(v)}`);
  }
  return c as CountryCode;
}

/** An IPv4/IPv6 CIDR (or a bare address: /32, /128), normalised to `address/length`. */
function cidr(r: Reader, field: string, v: unknown): string {
  const s = typeof v === 'string' ? v.trim() : '';
  try {
    if (s.includes('/')) {
      const [addr, len] = ipaddr.parseCIDR(s);
      return `${addr.toString()}/${len}`;
    }
    const addr = ipaddr.parse(s);
    return `${addr.toString()}/${addr.kind() === 'ipv4' ? 32 : 128}`;
  } catch {
    return r.fail(field, `must be an IPv4 or IPv6 address or CIDR (e.g. 203.0.113.0/24, 2001:db8::/32), got ${show(v)}`);
  }
}

/** Trunk entries whose country was left to the global default (filled in at the end of loadConfig). */
const countryUnset = new WeakSet<TrunkSettings>();
/** Where each trunk entry was read (`trunks[2]` of the file, `TRUNKS[0]` of the environment), for errors found at the end. */
const trunkOrigin = new WeakMap<TrunkSettings, { source: string; field: string }>();

function trunks(r: Reader, field: string, v: unknown): TrunkSettings[] {
  if (!Array.isArray(v)) r.fail(field, `must be a list of trunks ({name, sources, trustIdentity, country, earlyMedia}), got ${show(v)}`);
  const out: TrunkSettings[] = [];
  const names = new Map<string, number>();
  (v as unknown[]).forEach((item, i) => {
    const f = `${field}[${i}]`;
    const o = r.mapping(f, item, ['name', 'sources', 'trustIdentity', 'country', 'earlyMedia', 'srtp', ...TRUNK_ACCESS_KEYS]);
    if (typeof o.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.name)) {
      r.fail(`${f}.name`, `must be a name of letters, digits, '.', '_' or '-' (at most 64), got ${show(o.name)}`);
    }
    const name = o.name as string;
    if (names.has(name)) r.fail(`${f}.name`, `duplicate trunk name ${JSON.stringify(name)} (also ${field}[${names.get(name)}])`);
    names.set(name, i);
    let srcs: unknown[];
    if (typeof o.sources === 'string') srcs = o.sources.split(',').filter((x) => x.trim() !== '');
    else if (Array.isArray(o.sources)) srcs = o.sources;
    else r.fail(`${f}.sources`, `must be a list of IPv4/IPv6 CIDRs, got ${show(o.sources)}`);
    if (srcs.length === 0) r.fail(`${f}.sources`, 'must list at least one source address or CIDR');
    const sources = srcs.map((s, j) => cidr(r, `${f}.sources[${j}]`, s));
    let trustIdentity = true;
    if (o.trustIdentity !== undefined && o.trustIdentity !== null) {
      if (typeof o.trustIdentity !== 'boolean') r.fail(`${f}.trustIdentity`, `must be true or false, got ${show(o.trustIdentity)}`);
      trustIdentity = o.trustIdentity as boolean;
    }
    const t: TrunkSettings = { name, sources, trustIdentity, country: 'US' };
    if (o.country !== undefined && o.country !== null) t.country = country(r, `${f}.country`, o.country);
    else countryUnset.add(t);
    if (o.earlyMedia !== undefined && o.earlyMedia !== null) t.earlyMedia = flag(r, `${f}.earlyMedia`, o.earlyMedia);
    if (o.srtp !== undefined && o.srtp !== null) t.srtp = r.oneOf(`${f}.srtp`, o.srtp, SRTP_POLICIES);
    Object.assign(t, trunkAccess((ff, p) => r.fail(ff, p), f, o));
    trunkOrigin.set(t, { source: r.source, field: f });
    out.push(t);
  });
  return out;
}

/** The `TRUNKS` environment variable: YAML or JSON flow text of the same list. */
function trunksFromEnv(r: Reader, v: string): TrunkSettings[] {
  let doc: unknown;
  try {
    doc = parseYaml(v, { uniqueKeys: true });
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0]! : (err as Error).message;
    r.fail('TRUNKS', `must be a YAML/JSON list of trunks, e.g. [{name: carrier, sources: [203.0.113.0/24]}] (${msg})`);
  }
  return trunks(r, 'TRUNKS', doc);
}

/** on/off, true/false, yes/no, 1/0 (any case) or a YAML boolean. */
function flag(r: Reader, field: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  const s = typeof v === 'string' ? v.trim().toLowerCase() : typeof v === 'number' ? String(v) : '';
  if (['on', 'true', 'yes', '1'].includes(s)) return true;
  if (['off', 'false', 'no', '0'].includes(s)) return false;
  return r.fail(field, `must be on or off (true/false), got ${show(v)}`);
}

function applyFile(cfg: Config, file: string): void {
  const doc = readYamlFile(file, 'file');
  if (doc === null || doc === undefined) return; // empty file = all defaults
  const r = new Reader(file, false);
  const top = r.mapping('', doc, TOP_KEYS);
  const has = (o: Record<string, unknown>, k: string): boolean => o[k] !== undefined && o[k] !== null;
  if (has(top, 'sip')) {
    const s = r.mapping('sip', top.sip, ['address', 'port', 'transports', 't1Ms', 'tls']);
    if (has(s, 'tls')) applySipTlsFile(sipTlsDraft(cfg), s.tls, path.dirname(file), file, (f, p) => r.fail(f, p));
    if (has(s, 'address')) cfg.sip.address = r.host('sip.address', s.address);
    if (has(s, 'port')) cfg.sip.port = r.int('sip.port', s.port, 0, 65535);
    if (has(s, 'transports')) cfg.sip.transports = r.transports('sip.transports', s.transports);
    if (has(s, 't1Ms')) cfg.sip.t1Ms = r.int('sip.t1Ms', s.t1Ms, 50, 10000);
  }
  if (has(top, 'edge')) cfg.edge = r.oneOf('edge', top.edge, ['builtin', 'drachtio'] as const);
  if (has(top, 'drachtio')) {
    const d = r.mapping('drachtio', top.drachtio, ['host', 'port', 'secret', 'mode', 'listenAddress', 'listenPort']);
    if (has(d, 'host')) cfg.drachtio.host = r.host('drachtio.host', d.host);
    if (has(d, 'port')) cfg.drachtio.port = r.int('drachtio.port', d.port, 0, 65535);
    if (has(d, 'secret')) cfg.drachtio.secret = r.str('drachtio.secret', d.secret);
    if (has(d, 'mode')) cfg.drachtio.mode = r.oneOf('drachtio.mode', d.mode, ['inbound', 'outbound'] as const);
    if (has(d, 'listenAddress')) cfg.drachtio.listenAddress = r.host('drachtio.listenAddress', d.listenAddress);
    if (has(d, 'listenPort')) cfg.drachtio.listenPort = r.int('drachtio.listenPort', d.listenPort, 1, 65535);
  }
  if (has(top, 'rtp')) {
    const p = r.mapping('rtp', top.rtp, ['address', 'publicAddress', 'portMin', 'portMax', 'address6', 'publicAddress6']);
    if (has(p, 'address6')) cfg.rtp.bindAddress6 = ipv6('rtp.address6', p.address6, r.fail.bind(r));
    if (has(p, 'publicAddress6')) cfg.rtp.publicAddress6 = ipv6('rtp.publicAddress6', p.publicAddress6, r.fail.bind(r));
    if (has(p, 'address')) cfg.rtp.bindAddress = r.host('rtp.address', p.address);
    if (has(p, 'publicAddress')) cfg.rtp.publicAddress = r.host('rtp.publicAddress', p.publicAddress);
    if (has(p, 'portMin')) cfg.rtp.portMin = r.int('rtp.portMin', p.portMin, 1024, 65535);
    if (has(p, 'portMax')) cfg.rtp.portMax = r.int('rtp.portMax', p.portMax, 1024, 65535);
  }
  if (has(top, 'tenantsFile')) cfg.tenantsFile = path.resolve(path.dirname(file), r.str('tenantsFile', top.tenantsFile));
  if (has(top, 'maxCallSeconds')) cfg.maxCallSeconds = r.int('maxCallSeconds', top.maxCallSeconds, 0, 86400 * 7);
  if (has(top, 'answerDelayMs')) cfg.answerDelayMs = r.int('answerDelayMs', top.answerDelayMs, 0, 60000);
  if (has(top, 'rtpTimeoutSeconds')) cfg.rtpTimeoutSeconds = r.int('rtpTimeoutSeconds', top.rtpTimeoutSeconds, 0, 86400);
  if (has(top, 'sessionTimer')) {
    const st = r.mapping('sessionTimer', top.sessionTimer, ['enabled', 'interval', 'minSE']);
    if (has(st, 'enabled')) cfg.sessionTimer.enabled = flag(r, 'sessionTimer.enabled', st.enabled);
    if (has(st, 'interval')) cfg.sessionTimer.interval = r.int('sessionTimer.interval', st.interval, 1, 86400);
    if (has(st, 'minSE')) cfg.sessionTimer.minSE = r.int('sessionTimer.minSE', st.minSE, 1, 86400);
  }
  if (has(top, 'earlyMedia')) cfg.earlyMedia = flag(r, 'earlyMedia', top.earlyMedia);
  if (has(top, 'srtp')) cfg.srtp = r.oneOf('srtp', top.srtp, SRTP_POLICIES);
  if (has(top, 'logLevel')) cfg.logLevel = r.oneOf('logLevel', top.logLevel, LOG_LEVELS);
  if (has(top, 'handoff')) {
    const h = r.mapping('handoff', top.handoff, ['repUri', 'ringSeconds']);
    if (has(h, 'repUri')) cfg.handoff.repUri = repUri(r, 'handoff.repUri', h.repUri);
    if (has(h, 'ringSeconds')) cfg.handoff.ringSeconds = r.int('handoff.ringSeconds', h.ringSeconds, 1, 300);
  }
  if (has(top, 'console')) {
    const c = r.mapping('console', top.console, ['address', 'port', 'publicUrl', 'enabled', ...CONSOLE_AUTH_KEYS]);
    applyConsoleAuthFile(cfg.console, c, (f, p) => r.fail(f, p));
    if (has(c, 'address')) cfg.console.address = r.host('console.address', c.address);
    if (has(c, 'port')) cfg.console.port = r.int('console.port', c.port, 0, 65535);
    if (has(c, 'publicUrl')) cfg.console.publicUrl = httpUrl(r, 'console.publicUrl', c.publicUrl);
    if (has(c, 'enabled')) {
      if (typeof c.enabled !== 'boolean') r.fail('console.enabled', `must be true or false, got ${show(c.enabled)}`);
      cfg.console.enabled = c.enabled as boolean;
    }
  }
  if (has(top, 'ops')) {
    const o = r.mapping('ops', top.ops, ['address', 'port', 'enabled']);
    if (has(o, 'address')) cfg.ops.address = r.host('ops.address', o.address);
    if (has(o, 'port')) cfg.ops.port = r.int('ops.port', o.port, 0, 65535);
    if (has(o, 'enabled')) {
      if (typeof o.enabled !== 'boolean') r.fail('ops.enabled', `must be true or false, got ${show(o.enabled)}`);
      cfg.ops.enabled = o.enabled as boolean;
    }
  }
  if (has(top, 'admission')) {
    const a = r.mapping('admission', top.admission, ADMISSION_KEYS);
    for (const k of ADMISSION_KEYS) if (has(a, k)) cfg.admission[k] = r.int(`admission.${k}`, a[k], ADMISSION_RANGES[k][0], ADMISSION_RANGES[k][1]);
  }
  if (has(top, 'drainSeconds')) cfg.drainSeconds = r.int('drainSeconds', top.drainSeconds, 0, 86400);
  if (has(top, 'logFormat')) cfg.logFormat = r.oneOf('logFormat', top.logFormat, ['logfmt', 'json'] as const);
  if (has(top, 'defaultCountry')) cfg.defaultCountry = country(r, 'defaultCountry', top.defaultCountry);
  if (has(top, 'trunks')) cfg.trunks = trunks(r, 'trunks', top.trunks);
  if (has(top, 'sipGuard')) applySipGuardFile(cfg.sipGuard, top.sipGuard, (f, p) => r.fail(f, p));
  if (has(top, 'cdr')) applyCdrFile(cfg.cdr, top.cdr, path.dirname(file), (f, p) => r.fail(f, p));
  applySpeechFile(cfg, top, (f, p) => r.fail(f, p));
  if (has(top, 'rtpengine')) {
    const e = r.mapping('rtpengine', top.rtpengine, ['url', 'timeoutMs', 'transcode', 'direction', 'flags']);
    const x = rtpengineOf(cfg);
    if (has(e, 'url')) x.url = r.rtpengineUrl('rtpengine.url', e.url);
    if (has(e, 'timeoutMs')) x.timeoutMs = r.int('rtpengine.timeoutMs', e.timeoutMs, 1, 60000);
    if (has(e, 'transcode')) x.transcode = r.names('rtpengine.transcode', e.transcode);
    if (has(e, 'direction')) x.direction = direction(r, 'rtpengine.direction', e.direction);
    if (has(e, 'flags')) x.flags = r.names('rtpengine.flags', e.flags);
  }
}

function applyEnv(cfg: Config, env: NodeJS.ProcessEnv, cwd: string): void {
  const r = new Reader('environment', true);
  const get = (k: string): string | undefined => {
    const v = env[k];
    return v === undefined || v === '' ? undefined : v;
  };
  let v: string | undefined;
  if ((v = get('SIP_ADDRESS')) !== undefined) cfg.sip.address = r.host('SIP_ADDRESS', v);
  if ((v = get('SIP_PORT')) !== undefined) cfg.sip.port = r.int('SIP_PORT', v, 0, 65535);
  if ((v = get('SIP_TRANSPORTS')) !== undefined) cfg.sip.transports = r.transports('SIP_TRANSPORTS', v);
  if ((v = get('SIP_T1_MS')) !== undefined) cfg.sip.t1Ms = r.int('SIP_T1_MS', v, 50, 10000);
  applySipTlsEnv(sipTlsDraft(cfg), env, cwd, (f, p) => r.fail(f, p));
  if ((v = get('EDGE')) !== undefined) cfg.edge = r.oneOf('EDGE', v, ['builtin', 'drachtio'] as const);
  if ((v = get('DRACHTIO_HOST')) !== undefined) cfg.drachtio.host = r.host('DRACHTIO_HOST', v);
  if ((v = get('DRACHTIO_PORT')) !== undefined) cfg.drachtio.port = r.int('DRACHTIO_PORT', v, 0, 65535);
  if ((v = get('DRACHTIO_SECRET')) !== undefined) cfg.drachtio.secret = v;
  if ((v = get('DRACHTIO_MODE')) !== undefined) cfg.drachtio.mode = r.oneOf('DRACHTIO_MODE', v, ['inbound', 'outbound'] as const);
  if ((v = get('DRACHTIO_LISTEN_ADDRESS')) !== undefined) cfg.drachtio.listenAddress = r.host('DRACHTIO_LISTEN_ADDRESS', v);
  if ((v = get('DRACHTIO_LISTEN_PORT')) !== undefined) cfg.drachtio.listenPort = r.int('DRACHTIO_LISTEN_PORT', v, 1, 65535);
  if ((v = get('RTP_ADDRESS')) !== undefined) cfg.rtp.bindAddress = r.host('RTP_ADDRESS', v);
  if ((v = get('RTP_PUBLIC_ADDRESS')) !== undefined) cfg.rtp.publicAddress = r.host('RTP_PUBLIC_ADDRESS', v);
  if ((v = get('RTP_ADDRESS6')) !== undefined) {
    if (v.trim() === '' || v.trim().toLowerCase() === 'off') delete cfg.rtp.bindAddress6;
    else cfg.rtp.bindAddress6 = ipv6('RTP_ADDRESS6', v, r.fail.bind(r));
  }
  if ((v = get('RTP_PUBLIC_ADDRESS6')) !== undefined) cfg.rtp.publicAddress6 = ipv6('RTP_PUBLIC_ADDRESS6', v, r.fail.bind(r));
  if ((v = get('RTP_PORT_MIN')) !== undefined) cfg.rtp.portMin = r.int('RTP_PORT_MIN', v, 1024, 65535);
  if ((v = get('RTP_PORT_MAX')) !== undefined) cfg.rtp.portMax = r.int('RTP_PORT_MAX', v, 1024, 65535);
  if ((v = get('TENANTS_FILE')) !== undefined) cfg.tenantsFile = path.resolve(cwd, v);
  if ((v = get('MAX_CALL_SECONDS')) !== undefined) cfg.maxCallSeconds = r.int('MAX_CALL_SECONDS', v, 0, 86400 * 7);
  if ((v = get('ANSWER_DELAY_MS')) !== undefined) cfg.answerDelayMs = r.int('ANSWER_DELAY_MS', v, 0, 60000);
  if ((v = get('RTP_TIMEOUT_SECONDS')) !== undefined) cfg.rtpTimeoutSeconds = r.int('RTP_TIMEOUT_SECONDS', v, 0, 86400);
  if ((v = get('SESSION_TIMER')) !== undefined) cfg.sessionTimer.enabled = flag(r, 'SESSION_TIMER', v);
  if ((v = get('SESSION_EXPIRES')) !== undefined) cfg.sessionTimer.interval = r.int('SESSION_EXPIRES', v, 1, 86400);
  if ((v = get('SESSION_MIN_SE')) !== undefined) cfg.sessionTimer.minSE = r.int('SESSION_MIN_SE', v, 1, 86400);
  if ((v = get('EARLY_MEDIA')) !== undefined) cfg.earlyMedia = flag(r, 'EARLY_MEDIA', v);
  if ((v = get('SRTP')) !== undefined) cfg.srtp = r.oneOf('SRTP', v, SRTP_POLICIES);
  if ((v = get('LOG_LEVEL')) !== undefined) cfg.logLevel = r.oneOf('LOG_LEVEL', v, LOG_LEVELS);
  if ((v = get('REP_URI')) !== undefined) cfg.handoff.repUri = repUri(r, 'REP_URI', v);
  if ((v = get('REP_RING_SECONDS')) !== undefined) cfg.handoff.ringSeconds = r.int('REP_RING_SECONDS', v, 1, 300);
  if ((v = get('CONSOLE_ADDRESS')) !== undefined) {
    if (['off', 'none', 'false'].includes(v.trim().toLowerCase())) cfg.console.enabled = false;
    else cfg.console.address = r.host('CONSOLE_ADDRESS', v);
  }
  if ((v = get('CONSOLE_PORT')) !== undefined) cfg.console.port = r.int('CONSOLE_PORT', v, 0, 65535);
  if ((v = get('CONSOLE_URL')) !== undefined) cfg.console.publicUrl = httpUrl(r, 'CONSOLE_URL', v);
  applyCdrEnv(cfg.cdr, env, cwd, (f, p) => r.fail(f, p));
  applySpeechEnv(cfg, env, (f, p) => r.fail(f, p));
  if ((v = get('RTPENGINE_URL')) !== undefined) {
    if (['off', 'none', 'false'].includes(v.trim().toLowerCase())) rtpengineOf(cfg).url = '';
    else rtpengineOf(cfg).url = r.rtpengineUrl('RTPENGINE_URL', v);
  }
  if ((v = get('RTPENGINE_TIMEOUT_MS')) !== undefined) rtpengineOf(cfg).timeoutMs = r.int('RTPENGINE_TIMEOUT_MS', v, 1, 60000);
  if ((v = get('RTPENGINE_TRANSCODE')) !== undefined) rtpengineOf(cfg).transcode = r.names('RTPENGINE_TRANSCODE', v);
  if ((v = get('RTPENGINE_DIRECTION')) !== undefined) rtpengineOf(cfg).direction = direction(r, 'RTPENGINE_DIRECTION', v);
  if ((v = get('RTPENGINE_FLAGS')) !== undefined) rtpengineOf(cfg).flags = r.names('RTPENGINE_FLAGS', v);
  if ((v = get('OPS_ADDRESS')) !== undefined) {
    if (['off', 'none', 'false'].includes(v.trim().toLowerCase())) cfg.ops.enabled = false;
    else cfg.ops.address = r.host('OPS_ADDRESS', v);
  }
  if ((v = get('OPS_PORT')) !== undefined) cfg.ops.port = r.int('OPS_PORT', v, 0, 65535);
  for (const [k, name] of Object.entries(ADMISSION_ENV) as [keyof AdmissionLimits, string][]) {
    if ((v = get(name)) !== undefined) cfg.admission[k] = r.int(name, v, ADMISSION_RANGES[k][0], ADMISSION_RANGES[k][1]);
  }
  if ((v = get('DRAIN_SECONDS')) !== undefined) cfg.drainSeconds = r.int('DRAIN_SECONDS', v, 0, 86400);
  if ((v = get('LOG_FORMAT')) !== undefined) cfg.logFormat = r.oneOf('LOG_FORMAT', v, ['logfmt', 'json'] as const);
  if ((v = get('DEFAULT_COUNTRY')) !== undefined) cfg.defaultCountry = country(r, 'DEFAULT_COUNTRY', v);
  if ((v = get('TRUNKS')) !== undefined) cfg.trunks = trunksFromEnv(r, v);
  applySipGuardEnv(cfg.sipGuard, env, (f, p) => r.fail(f, p));
}

/** The `--config` argument, if any. */
export function configFileFromArgs(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('-')) throw new ConfigError('command line', '--config', 'needs a file path');
      return next;
    }
    if (a.startsWith('--config=')) return a.slice('--config='.length);
  }
  return undefined;
}

export interface LoadConfigOptions {
  /** command-line arguments (without node and script) @defaultValue process.argv.slice(2) */
  argv?: readonly string[];
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** @defaultValue process.cwd() */
  cwd?: string;
}

/** A numeric IPv6 address (the media core binds and advertises it as is). */
function ipv6(field: string, v: unknown, fail: (field: string, problem: string) => never): string {
  const t = typeof v === 'string' ? v.trim() : '';
  if (!isIPv6(t)) fail(field, `must be a numeric IPv6 address, got ${show(v)}`);
  return t;
}

/** Load and validate the configuration. @throws ConfigError */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const cfg = defaultConfig();
  const argFile = configFileFromArgs(opts.argv ?? process.argv.slice(2));
  const fileArg = argFile ?? (env.CONFIG_FILE ? env.CONFIG_FILE : undefined);
  cfg.rtp.publicAddress = ''; // unset: follows the bind address unless given explicitly
  if (fileArg !== undefined) {
    const file = path.resolve(cwd, fileArg);
    applyFile(cfg, file);
    cfg.configFile = file;
  }
  applyEnv(cfg, env, cwd);
  if (cfg.rtp.publicAddress === '') {
    cfg.rtp.publicAddress = cfg.rtp.bindAddress === '0.0.0.0' || cfg.rtp.bindAddress === '::' ? '127.0.0.1' : cfg.rtp.bindAddress;
  }
  if (cfg.rtp.publicAddress6 === undefined) {
    const b6 = cfg.rtp.bindAddress6 ?? (isIPv6(cfg.rtp.bindAddress) ? cfg.rtp.bindAddress : undefined);
    if (b6 !== undefined) cfg.rtp.publicAddress6 = b6 === '::' ? '::1' : b6;
  }

  const src = cfg.configFile ?? 'environment';
  const tlsSettings = finishSipTls(sipTlsDraft(cfg), failAt, src);
  if (tlsSettings) {
    cfg.sip.tls = tlsSettings;
    if (cfg.edge === 'builtin') checkSipTls(tlsSettings, failAt, src); // unreadable file, key mismatch → exit 2
  }
  for (const t of cfg.trunks) if (countryUnset.has(t)) t.country = cfg.defaultCountry;
  finishTrunkAccess(cfg.trunks, env, (i) => trunkOrigin.get(cfg.trunks[i]!)?.field ?? `trunks[${i}]`, (field, problem) => {
    const origin = cfg.trunks.find((t) => field.startsWith(`${trunkOrigin.get(t)?.field ?? '\u0000'}.`));
    throw new ConfigError(origin ? trunkOrigin.get(origin)!.source : src, field, problem);
  });
  // rtpengine settings without a URL (e.g. only a timeout given) leave anchoring off.
  if (cfg.rtpengine && cfg.rtpengine.url === '') cfg.rtpengine = null;
  if (cfg.rtp.portMin > cfg.rtp.portMax) {
    throw new ConfigError(src, 'rtp.portMin', `must not exceed rtp.portMax (${cfg.rtp.portMin} > ${cfg.rtp.portMax})`);
  }
  // drachtio-server answers an in-dialog refresh (re-INVITE, UPDATE) asking for less than 90 s
  // with 422 itself (a fixed Min-SE of 90, before the app sees it), so a call set up with a
  // shorter interval could never be refreshed and would end at its expiry
  if (cfg.edge === 'drachtio' && cfg.sip.t1Ms !== 500) {
    throw new ConfigError(src, 'sip.t1Ms', `applies to the built-in edge only; with edge drachtio set drachtio-server's own SIP timers (got ${cfg.sip.t1Ms})`);
  }
  if (cfg.edge === 'drachtio' && cfg.sessionTimer.enabled && cfg.sessionTimer.minSE < DRACHTIO_MIN_SE) {
    throw new ConfigError(src, 'sessionTimer.minSE', `must be at least ${DRACHTIO_MIN_SE} with edge drachtio (drachtio-server refuses session refreshes below ${DRACHTIO_MIN_SE} s itself), got ${cfg.sessionTimer.minSE}`);
  }
  if (cfg.sessionTimer.interval < cfg.sessionTimer.minSE) {
    throw new ConfigError(src, 'sessionTimer.interval', `must not be below sessionTimer.minSE (${cfg.sessionTimer.interval} < ${cfg.sessionTimer.minSE})`);
  }
  // no reps: the console runs without a login, so only on loopback (loopback-demo mode)
  const consoleRefusal = cfg.console.enabled ? demoRefusal(cfg.console) : null;
  if (consoleRefusal) throw new ConfigError(src, 'console.reps', consoleRefusal);
  if (cfg.edge === 'drachtio' && cfg.drachtio.port === 0) {
    throw new ConfigError(src, 'drachtio.port', 'must be set to the drachtio-server admin port when edge is drachtio (0 is only for the built-in edge)');
  }
  if (cfg.edge === 'builtin' && cfg.drachtio.mode === 'outbound') {
    throw new ConfigError(src, 'drachtio.mode', 'outbound is for a drachtio-server edge (set edge: drachtio); the built-in edge always takes an inbound connection');
  }
  // Exposed services must not rely on well-known or missing secrets.
  if (cfg.drachtio.secret === DEFAULT_DRACHTIO_SECRET) {
    const control = cfg.edge === 'drachtio' && cfg.drachtio.mode === 'outbound' ? cfg.drachtio.listenAddress ?? '127.0.0.1' : cfg.drachtio.host;
    const exposed = [control, ...(cfg.edge === 'builtin' ? [cfg.sip.address] : [])].find((h) => !isLoopbackHost(h));
    if (exposed !== undefined) {
      throw new ConfigError(src, 'drachtio.secret', `is the well-known default "${DEFAULT_DRACHTIO_SECRET}" while ${exposed === control ? 'the drachtio control connection' : 'the SIP edge'} uses ${exposed}, off loopback: set DRACHTIO_SECRET`);
    }
  }
  if (cfg.ops.enabled && !isLoopbackHost(cfg.ops.address) && !env.OPS_TOKEN) {
    throw new ConfigError('environment', 'OPS_TOKEN', `must be set (a bearer token for /metrics, /livez, /readyz) when the ops listener binds ${cfg.ops.address}, off loopback`);
  }
  return cfg;
}

/** The Min-SE drachtio-server enforces on in-dialog refreshes (fixed in drachtio-server, seconds). */
export const DRACHTIO_MIN_SE = 90;

/** drachtio's well-known default secret; refused whenever the control connection or the built-in edge leaves loopback. */
export const DEFAULT_DRACHTIO_SECRET = 'cymru';

/** `udp+tcp/127.0.0.1:5060` (`,tls/127.0.0.1:5061` with TLS) — how logs show the SIP listener. */
export function describeSip(sip: SipConfig, port = sip.port): string {
  return `${sip.transports.join('+')}/${sip.address}:${port}${describeSipTls(sip.address, sip.tls)}`;
}

const sipTlsDrafts = new WeakMap<Config, SipTlsDraft>();
function sipTlsDraft(cfg: Config): SipTlsDraft {
  let d = sipTlsDrafts.get(cfg);
  if (!d) sipTlsDrafts.set(cfg, (d = newSipTlsDraft()));
  return d;
}
const failAt = (source: string, field: string, problem: string): never => {
  throw new ConfigError(source, field, problem);
};

/** The PEM files of `sip.tls`, read and checked (undefined when TLS is off). @throws ConfigError */
export function sipTlsMaterial(cfg: Config): SipTlsMaterial | undefined {
  return cfg.sip.tls ? checkSipTls(cfg.sip.tls, failAt, cfg.configFile ?? 'environment') : undefined;
}
