/**
 * Which speech-to-text and text-to-speech provider a call uses: the `stt` and `tts` blocks of
 * the config file (the process-wide default, also settable from the environment) and of each
 * tenant (tenants.yaml; a tenant's fields win over the default's, field by field).
 *
 * ```yaml
 * stt:
 *   provider: openai            # pocketsphinx (embedded default) | openai
 *   baseUrl: http://127.0.0.1:8000/v1
 *   model: whisper-1
 *   apiKeyEnv: STT_API_KEY      # the environment variable holding the key (never the key itself)
 *   timeoutMs: 3000             # whole request; then the utterance is recognised locally
 * tts:
 *   provider: openai            # flite (embedded default) | espeak-ng | openai
 *   baseUrl: http://127.0.0.1:8000/v1
 *   model: gpt-4o-mini-tts
 *   voice: alloy
 *   apiKeyEnv: TTS_API_KEY
 *   firstAudioMs: 1500          # request → first PCM, and the longest stall between chunks
 *   timeoutMs: 15000            # one sentence, start to end
 * ```
 *
 * Every problem is reported through `fail(field, problem)` with the full field path
 * (`stt.timeoutMs`, `tenants[1].tts.provider`), which the callers turn into a ConfigError
 * naming the file.
 */

export const STT_PROVIDERS = ['pocketsphinx', 'openai'] as const;
export type SttProviderName = (typeof STT_PROVIDERS)[number];
export const TTS_PROVIDERS = ['flite', 'espeak-ng', 'openai'] as const;
export type TtsProviderName = (typeof TTS_PROVIDERS)[number];

/** Settings of a cloud (OpenAI-compatible) endpoint; ignored by the local providers. */
interface EndpointSettings {
  /** OpenAI-compatible base URL. @defaultValue env OPENAI_BASE_URL, else https://api.openai.com/v1 */
  baseUrl?: string;
  /** Model name. @defaultValue 'whisper-1' (STT), 'gpt-4o-mini-tts' (TTS) */
  model?: string;
  /** Name of the environment variable holding the API key. @defaultValue 'OPENAI_API_KEY' */
  apiKeyEnv?: string;
}

export interface SttSettings extends EndpointSettings {
  /** @defaultValue 'pocketsphinx' */
  provider: SttProviderName;
  /**
   * Longest wait for one utterance's transcript, ms; past it (or on a 5xx, a refused
   * connection …) the same audio is recognised locally and the rest of the call stays local.
   * @defaultValue 3000
   */
  timeoutMs: number;
}

export interface TtsSettings extends EndpointSettings {
  /** @defaultValue 'flite' */
  provider: TtsProviderName;
  /** Provider voice (flite: kal, slt …; OpenAI: alloy, nova …). @defaultValue the tenant's / provider's default */
  voice?: string;
  /**
   * Longest wait for a sentence's first PCM after its request, and the longest stall between
   * two chunks of it, ms; past it the sentence is synthesised locally and the rest of the call
   * stays local. @defaultValue 1500
   */
  firstAudioMs: number;
  /** Longest time for one whole sentence, ms. @defaultValue 15000 */
  timeoutMs: number;
}

/** The process-wide speech settings (config `stt` / `tts`). */
export interface SpeechSettings {
  stt: SttSettings;
  tts: TtsSettings;
}

/** Defaults of {@link SttSettings} and {@link TtsSettings}. */
export const SPEECH_DEFAULTS = Object.freeze({
  stt: Object.freeze({ provider: 'pocketsphinx' as SttProviderName, timeoutMs: 3000 }),
  tts: Object.freeze({ provider: 'flite' as TtsProviderName, firstAudioMs: 1500, timeoutMs: 15000 }),
});

export function defaultSpeechSettings(): SpeechSettings {
  return { stt: { ...SPEECH_DEFAULTS.stt }, tts: { ...SPEECH_DEFAULTS.tts } };
}

type Fail = (field: string, problem: string) => never;

export const STT_KEYS = ['provider', 'baseUrl', 'model', 'apiKeyEnv', 'timeoutMs'] as const;
export const TTS_KEYS = ['provider', 'baseUrl', 'model', 'voice', 'apiKeyEnv', 'firstAudioMs', 'timeoutMs'] as const;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

function intIn(f: string, v: unknown, min: number, max: number, fail: Fail): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) fail(f, `must be an integer ${min}-${max} (milliseconds), got ${show(v)}`);
  return n as number;
}

function field(kind: 'stt' | 'tts', k: string, v: unknown, f: string, fail: Fail): unknown {
  switch (k) {
    case 'provider': {
      const list: readonly string[] = kind === 'stt' ? STT_PROVIDERS : TTS_PROVIDERS;
      const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
      if (typeof s !== 'string' || !list.includes(s)) fail(f, `must be one of ${list.join(', ')}, got ${show(v)}`);
      return s;
    }
    case 'baseUrl':
      if (typeof v !== 'string' || !/^https?:\/\/\S+$/.test(v.trim())) fail(f, `must be an http(s) URL, got ${show(v)}`);
      return (v as string).trim().replace(/\/+$/, '');
    case 'model':
    case 'voice':
      if (typeof v !== 'string' || v.trim() === '') fail(f, `must be a non-empty string, got ${show(v)}`);
      return (v as string).trim();
    case 'apiKeyEnv':
      if (typeof v !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) {
        fail(f, `must be the name of an environment variable that holds the key (the key itself never goes in a file), got ${typeof v === 'string' && v.length > 12 ? 'a value that is not a variable name' : show(v)}`);
      }
      return v;
    case 'timeoutMs':
      return intIn(f, v, 100, 120000, fail);
    case 'firstAudioMs':
      return intIn(f, v, 100, 60000, fail);
    default:
      return undefined;
  }
}

/**
 * Parse an `stt` or `tts` mapping; only the fields given are returned (tenant blocks are
 * overrides). `f` is the block's field path (`stt`, `tenants[0].tts`).
 */
export function parseSpeechBlock(kind: 'stt', v: unknown, f: string, fail: Fail): Partial<SttSettings>;
export function parseSpeechBlock(kind: 'tts', v: unknown, f: string, fail: Fail): Partial<TtsSettings>;
export function parseSpeechBlock(kind: 'stt' | 'tts', v: unknown, f: string, fail: Fail): Partial<SttSettings> | Partial<TtsSettings> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(f, `must be a mapping, got ${show(v)}`);
  const keys: readonly string[] = kind === 'stt' ? STT_KEYS : TTS_KEYS;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!keys.includes(k)) fail(`${f}.${k}`, `unknown key (expected one of ${keys.join(', ')})`);
    out[k] = field(kind, k, val, `${f}.${k}`, fail);
  }
  return out;
}

/** Config file: apply the top-level `stt` / `tts` blocks onto `s`. */
export function applySpeechFile(s: SpeechSettings, top: Record<string, unknown>, fail: Fail): void {
  if (top.stt !== undefined) Object.assign(s.stt, parseSpeechBlock('stt', top.stt, 'stt', fail));
  if (top.tts !== undefined) Object.assign(s.tts, parseSpeechBlock('tts', top.tts, 'tts', fail));
}

/** Environment variables of the process-wide default (`STT_PROVIDER`, `TTS_VOICE`, …). */
export const SPEECH_ENV: Readonly<Record<'stt' | 'tts', Readonly<Record<string, string>>>> = Object.freeze({
  stt: { provider: 'STT_PROVIDER', baseUrl: 'STT_BASE_URL', model: 'STT_MODEL', apiKeyEnv: 'STT_API_KEY_ENV', timeoutMs: 'STT_TIMEOUT_MS' },
  tts: {
    provider: 'TTS_PROVIDER', baseUrl: 'TTS_BASE_URL', model: 'TTS_MODEL', voice: 'TTS_VOICE', apiKeyEnv: 'TTS_API_KEY_ENV',
    firstAudioMs: 'TTS_FIRST_AUDIO_MS', timeoutMs: 'TTS_TIMEOUT_MS',
  },
});

/** Environment: apply `STT_*` / `TTS_*` onto `s` (errors name the variable). */
export function applySpeechEnv(s: SpeechSettings, env: NodeJS.ProcessEnv, fail: Fail): void {
  for (const kind of ['stt', 'tts'] as const) {
    for (const [k, name] of Object.entries(SPEECH_ENV[kind])) {
      const v = env[name];
      if (v === undefined || v === '') continue;
      (s[kind] as unknown as Record<string, unknown>)[k] = field(kind, k, v, name, fail);
    }
  }
}
