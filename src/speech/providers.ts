/**
 * The speech providers of each call, by tenant: the tenant's `stt`/`tts` fields over the
 * config's (src/speech/settings.ts), endpoints resolved (base URL, the API key read from the
 * environment variable the settings name), providers built once per tenant and wrapped per
 * call with the local fallback (src/speech/fallback.ts).
 *
 * The local providers (pocketsphinx, flite) are built once per process by main and shared.
 */
import { ConfigError } from '../config.ts';
import type { Logger } from '../ops/log.ts';
import { OpenAiStt } from '../stt/openai.ts';
import type { SttProvider } from '../stt/types.ts';
import { createTts, ttsProblem, type TtsBuildSettings } from '../tts/factory.ts';
import type { TtsProvider } from '../tts/types.ts';
import type { Tenant } from '../tenants/tenant.ts';
import { SpeechFallback, type FallbackEvent } from './fallback.ts';
import type { SpeechSettings, SttSettings, TtsSettings } from './settings.ts';

/** Base URL of a cloud provider that names none (and no OPENAI_BASE_URL is set). @defaultValue 'https://api.openai.com/v1' */
export const DEFAULT_SPEECH_BASE_URL = 'https://api.openai.com/v1';
/** The key's environment variable when the settings name none. @defaultValue 'OPENAI_API_KEY' */
export const DEFAULT_API_KEY_ENV = 'OPENAI_API_KEY';

/** A tenant's effective settings: its fields over the defaults. */
export function tenantSpeech(defaults: SpeechSettings, tenant: Pick<Tenant, 'stt' | 'tts'>): { stt: SttSettings; tts: TtsSettings } {
  return { stt: { ...defaults.stt, ...tenant.stt }, tts: { ...defaults.tts, ...tenant.tts } };
}

/** Where a setting of a tenant's speech came from (for errors): the tenants file or the config. */
interface Origin {
  source: string;
  field: string;
}

export interface SpeechSources {
  /** the config file, or 'environment' */
  config: string;
  tenantsFile: string;
}

function origin(kind: 'stt' | 'tts', key: string, tenant: Pick<Tenant, 'stt' | 'tts'>, index: number, src: SpeechSources): Origin {
  const own = (tenant[kind] as Record<string, unknown> | undefined)?.[key] !== undefined;
  return own ? { source: src.tenantsFile, field: `tenants[${index}].${kind}.${key}` } : { source: src.config, field: `${kind}.${key}` };
}

/** The endpoint of a cloud provider: base URL and key (undefined when the named key variable is unset). */
function endpoint(s: { baseUrl?: string; apiKeyEnv?: string }, env: NodeJS.ProcessEnv): { baseURL: string; apiKey: string | undefined } {
  const keyVar = s.apiKeyEnv ?? DEFAULT_API_KEY_ENV;
  const key = env[keyVar];
  return {
    baseURL: s.baseUrl ?? (env.OPENAI_BASE_URL || DEFAULT_SPEECH_BASE_URL),
    apiKey: key ? key : s.apiKeyEnv ? undefined : 'none',
  };
}

/**
 * Start-up check of every tenant's speech settings against this process: the TTS provider
 * exists in this build and takes the voice, and a named key variable is set.
 * @throws ConfigError naming the file and the field
 */
export function checkSpeech(defaults: SpeechSettings, tenants: ReadonlyArray<Pick<Tenant, 'stt' | 'tts'>>, src: SpeechSources, env: NodeJS.ProcessEnv = process.env): void {
  if (defaults.tts.provider === 'flite' && defaults.tts.voice !== undefined) {
    throw new ConfigError(src.config, 'tts.voice', 'flite voices are chosen per tenant (tenants.yaml tts.voice); a default voice here is only for the espeak-ng and openai providers');
  }
  const check = (t: Pick<Tenant, 'stt' | 'tts'>, i: number): void => {
    const s = tenantSpeech(defaults, t);
    const p = ttsProblem({ provider: s.tts.provider, ...(s.tts.provider !== 'flite' && s.tts.voice ? { voice: s.tts.voice } : {}) });
    if (p) {
      const o = origin('tts', p.field, t, i, src);
      throw new ConfigError(o.source, o.field, p.problem);
    }
    for (const kind of ['stt', 'tts'] as const) {
      const k = s[kind];
      if (k.provider !== 'openai' || !k.apiKeyEnv) continue;
      if (!env[k.apiKeyEnv]) {
        const o = origin(kind, 'apiKeyEnv', t, i, src);
        throw new ConfigError(o.source, o.field, `names the environment variable ${k.apiKeyEnv}, which is not set (it must hold the ${kind === 'stt' ? 'speech-to-text' : 'text-to-speech'} API key)`);
      }
    }
  };
  check({}, -1); // the defaults alone (a config error names the config, not a tenant)
  tenants.forEach(check);
}

/** The speech of one call. */
export interface CallSpeech {
  stt: SttProvider;
  tts: TtsProvider;
  /** voice handed to the TTS (undefined: the provider's configured voice) */
  voice?: string;
  /** the per-call fallback state (null when the call runs on local speech anyway) */
  fallback: SpeechFallback | null;
}

export interface SpeechProvidersOptions {
  defaults: SpeechSettings;
  /** the process-wide local providers: pocketsphinx and flite */
  local: { stt: SttProvider; tts: TtsProvider };
  env?: NodeJS.ProcessEnv;
  /** build an OpenAI-compatible STT. @defaultValue new OpenAiStt(…) */
  createOpenAiStt?: (s: { baseURL: string; apiKey: string; model?: string; timeoutMs: number }) => SttProvider;
  /** build a TTS by provider name. @defaultValue createTts (src/tts/factory.ts) */
  createTts?: (s: TtsBuildSettings) => TtsProvider;
  /** told when a call falls back to local speech */
  onFallback?: (ev: FallbackEvent, tenant: Tenant) => void;
}

export class SpeechProviders {
  private readonly env: NodeJS.ProcessEnv;
  private readonly byTenant = new Map<string, { stt: SttProvider; tts: TtsProvider; voice?: string }>();

  constructor(private readonly o: SpeechProvidersOptions) {
    this.env = o.env ?? process.env;
  }

  /** The tenant's primary providers (built on first use, then kept). */
  primary(tenant: Tenant): { stt: SttProvider; tts: TtsProvider; voice?: string } {
    let p = this.byTenant.get(tenant.id);
    if (p) return p;
    const s = tenantSpeech(this.o.defaults, tenant);
    let stt = this.o.local.stt;
    if (s.stt.provider === 'openai') {
      const e = endpoint(s.stt, this.env);
      const make = this.o.createOpenAiStt ?? ((x) => new OpenAiStt({ baseURL: x.baseURL, apiKey: x.apiKey, ...(x.model ? { model: x.model } : {}), timeoutMs: x.timeoutMs, maxRetries: 0 }));
      stt = make({ baseURL: e.baseURL, apiKey: e.apiKey ?? 'none', ...(s.stt.model ? { model: s.stt.model } : {}), timeoutMs: s.stt.timeoutMs });
    }
    let tts = this.o.local.tts;
    let voice: string | undefined = tenant.voice;
    if (s.tts.provider !== 'flite') {
      const e = endpoint(s.tts, this.env);
      tts = (this.o.createTts ?? createTts)({
        provider: s.tts.provider,
        ...(s.tts.voice ? { voice: s.tts.voice } : {}),
        ...(s.tts.provider === 'openai' ? { baseURL: e.baseURL, apiKey: e.apiKey ?? 'none' } : {}),
        ...(s.tts.model ? { model: s.tts.model } : {}),
        firstAudioMs: s.tts.firstAudioMs, timeoutMs: s.tts.timeoutMs,
      });
      voice = s.tts.voice;
    }
    p = { stt, tts, ...(voice ? { voice } : {}) };
    this.byTenant.set(tenant.id, p);
    return p;
  }

  /** The providers of one call of `tenant`, with the local fallback wrapped around cloud ones. */
  forCall(tenant: Tenant, log?: Logger): CallSpeech {
    const p = this.primary(tenant);
    if (p.stt === this.o.local.stt && p.tts === this.o.local.tts) return { stt: p.stt, tts: p.tts, ...(p.voice ? { voice: p.voice } : {}), fallback: null };
    const fb = new SpeechFallback(p, this.o.local, {
      ...(log ? { log } : {}), tenant: tenant.id, localVoice: tenant.voice,
      ...(this.o.onFallback ? { onFallback: (ev: FallbackEvent) => this.o.onFallback!(ev, tenant) } : {}),
    });
    return { stt: fb.stt, tts: fb.tts, ...(p.voice ? { voice: p.voice } : {}), fallback: fb };
  }
}
