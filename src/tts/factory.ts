/**
 * Text-to-speech providers by name. Each provider module registers a builder
 * (`registerTts('espeak-ng', { create, voiceProblem })`); src/tts/index.ts registers the
 * built-in ones (flite, openai). `createTts()` builds one from resolved settings, and a name
 * nobody registered is a configuration problem, reported by {@link ttsProblem} so start-up
 * can name the file and the field.
 */
import type { TtsProvider } from './types.ts';

/** What a builder gets: the provider's merged settings, the endpoint resolved (URL, key). */
export interface TtsBuildSettings {
  provider: string;
  voice?: string;
  /** cloud providers: base URL, key and model */
  baseURL?: string;
  apiKey?: string;
  model?: string;
  /** deadlines (cloud providers), ms */
  firstAudioMs?: number;
  timeoutMs?: number;
}

export interface TtsRegistration {
  create(s: TtsBuildSettings): TtsProvider;
  /** null when `voice` is usable with this provider, else why not (checked at start-up). */
  voiceProblem?(voice: string): string | null;
}

const registry = new Map<string, TtsRegistration>();

/** Register (or replace) the builder of a provider name. */
export function registerTts(name: string, reg: TtsRegistration): void {
  registry.set(name, reg);
}

/** Provider names with a builder. */
export function registeredTts(): string[] {
  return [...registry.keys()];
}

/**
 * null when `s` can be built, else the problem and the settings field it is about
 * (`provider` when the name has no builder in this build, `voice` when the provider rejects it).
 */
export function ttsProblem(s: Pick<TtsBuildSettings, 'provider' | 'voice'>): { field: 'provider' | 'voice'; problem: string } | null {
  const reg = registry.get(s.provider);
  if (!reg) {
    return {
      field: 'provider',
      problem: `text-to-speech provider "${s.provider}" is not available in this build (available: ${registeredTts().join(', ') || 'none'})`,
    };
  }
  if (s.voice !== undefined && reg.voiceProblem) {
    const p = reg.voiceProblem(s.voice);
    if (p) return { field: 'voice', problem: p };
  }
  return null;
}

/** Build a provider. @throws Error with the {@link ttsProblem} text when it cannot be built */
export function createTts(s: TtsBuildSettings): TtsProvider {
  const p = ttsProblem(s);
  if (p) throw new Error(`tts.${p.field}: ${p.problem}`);
  return registry.get(s.provider)!.create(s);
}
