/**
 * The voice of a call follows its language: a tenant's `voices` (tenants.yaml) maps a BCP 47
 * language to an engine and voice (`es-US: {engine: espeak-ng, voice: es-419}`). A
 * {@link LanguageTts} wraps the call's TTS (the tenant's provider by config, with its
 * fallback) and, for each text, asks the call's current language: a language with its own
 * voice is spoken by that engine, any other by the wrapped provider with the call's voice.
 * The language may change mid-call (the caller chose Spanish by key), so it is asked per
 * text, never fixed at the start.
 */
import { ConfigError } from '../config.ts';
import type { TenantVoice, VoiceEngine } from '../tenants/languages.ts';
import { EspeakTts, espeakVoiceProblem } from './espeak.ts';
import { FliteTts } from './flite.ts';
import type { TtsOptions, TtsProvider } from './types.ts';

/** Names of the offline engines (a base provider with another name is a cloud one). */
const LOCAL_ENGINES = new Set(['flite', 'espeak-ng']);

/** Local engines shared by every call of the process (stateless per call). */
const shared = new Map<string, TtsProvider>();

function localEngine(engine: 'flite' | 'espeak-ng', wpm?: number): TtsProvider {
  const key = `${engine}:${wpm ?? ''}`;
  let p = shared.get(key);
  if (!p) {
    p = engine === 'flite' ? new FliteTts() : new EspeakTts(wpm ? { wpm } : {});
    shared.set(key, p);
  }
  return p;
}

/** The configured voice of `language`: exact tag, else the first entry with the same primary language (es-MX → es-US). */
export function voiceFor(voices: Readonly<Record<string, TenantVoice>> | undefined, language: string): TenantVoice | undefined {
  if (!voices) return undefined;
  if (voices[language]) return voices[language];
  const primary = language.split('-')[0]!.toLowerCase();
  const k = Object.keys(voices).find((l) => l.split('-')[0]!.toLowerCase() === primary);
  return k ? voices[k] : undefined;
}

export interface LanguageTtsOptions {
  /** the call's TTS (tenant provider by config): speaks languages without a voice of their own */
  base: TtsProvider;
  /** the tenant's `voices` */
  voices: Readonly<Record<string, TenantVoice>> | undefined;
  /** the call's language now (agent state) */
  language: () => string;
  /** engines other than the local ones (openai: the call's own provider). @defaultValue openai → base */
  engines?: Partial<Record<VoiceEngine, TtsProvider>>;
}

export class LanguageTts implements TtsProvider {
  constructor(private readonly o: LanguageTtsOptions) {}

  /** The provider speaking now (its name goes into logs and the CDR). */
  get name(): string {
    return this.pick().provider.name;
  }

  private pick(language?: string): { provider: TtsProvider; voice?: string } {
    const v = voiceFor(this.o.voices, language ?? this.o.language());
    if (!v) return { provider: this.o.base };
    // a cloud TTS configured for the tenant (or for all) speaks the languages whose entry names
    // the local default engine; after it fails mid-call its fallback reports 'flite' and the
    // entry's flite voice is used again. espeak-ng entries (languages flite lacks) stay.
    if (v.engine === 'flite' && !LOCAL_ENGINES.has(this.o.base.name)) return { provider: this.o.base };
    const provider = this.o.engines?.[v.engine]
      ?? (v.engine === 'openai' ? this.o.base : localEngine(v.engine, v.wpm));
    return { provider, voice: v.voice };
  }

  synthesize(text: string, opts: TtsOptions): AsyncIterable<Int16Array> {
    const { provider, voice } = this.pick(opts.language);
    return provider.synthesize(text, voice ? { ...opts, voice } : opts);
  }
}

/**
 * Start-up check: every espeak-ng voice a tenant names exists in this espeak-ng.
 * @throws ConfigError naming the tenants file and `tenants[i].voices.<lang>.voice`
 */
export function checkTenantVoices(tenants: ReadonlyArray<{ voices?: Record<string, TenantVoice> }>, tenantsFile: string): void {
  tenants.forEach((t, i) => {
    for (const [lang, v] of Object.entries(t.voices ?? {})) {
      if (v.engine !== 'espeak-ng') continue;
      const problem = espeakVoiceProblem(v.voice);
      if (problem) throw new ConfigError(tenantsFile, `tenants[${i}].voices.${lang}.voice`, problem);
    }
  });
}
