/**
 * Languages of a tenant: the voice per language (`voices`), the prompt keys of the
 * language choice and of the keypad path, and the load-time fallback of prompts a language
 * leaves out (filled from the tenant's default language, with a warning listing the keys).
 *
 * ```yaml
 * language: en-US                 # the DID's language (prompts[language] is the default set)
 * voices:
 *   en-US: { engine: flite, voice: slt }
 *   es-US: { engine: espeak-ng, voice: es-419 }
 * prompts:
 *   en-US: { greeting: …, … }
 *   es-US: { greeting: …, languageOffer: "Para español, oprima {key}.", keypadMenu: …, … }
 * ```
 */

/** Engines a per-language voice may name. */
export const VOICE_ENGINES = ['flite', 'espeak-ng', 'openai'] as const;
export type VoiceEngine = (typeof VOICE_ENGINES)[number];

/** The voice of one language: which TTS engine, which of its voices. */
export interface TenantVoice {
  engine: VoiceEngine;
  /** flite: kal, kal16, slt, rms, awb; espeak-ng: a language or voice (es-419, es, en-us, `+f3` variants); openai: alloy, nova … */
  voice: string;
  /** espeak-ng speaking rate, words per minute (80-450). @defaultValue 160 */
  wpm?: number;
}

/**
 * Prompt keys of the language choice and of the keypad path (calls in a language the
 * recogniser does not understand), in the call's language. Templates: {key}, {po}, {status},
 * {date}, {carrier}, {eta}.
 */
export const LANGUAGE_PROMPT_KEYS = [
  /** offered in the greeting of the tenant's default language by every other language it has: "Para español, oprima {key}." */
  'languageOffer',
  /** keypad path: why the caller is served by keypad ("… solo entiende inglés por voz …") */
  'keypadNotice',
  /** keypad path: the menu (1 order status, 2 message, 0 a person) */
  'keypadMenu',
  /** keypad path: asks for the PO digits */
  'keypadPo',
  /** keypad path: no order with those digits */
  'keypadPoNotFound',
  /** keypad path: the order's status ({po}, {status}) */
  'keypadStatus',
  /** keypad path: when and how it shipped ({date}, {carrier}) */
  'keypadShipped',
  /** keypad path: expected delivery ({eta}) */
  'keypadEta',
  /** keypad path: "leave your message after this prompt" */
  'keypadRecord',
  /** keypad path: the message was recorded and goes to the rep */
  'keypadRecorded',
  /** keypad path: nothing was heard to record */
  'keypadNoMessage',
  /** keypad path: a key that means nothing here */
  'keypadInvalid',
  /** keypad path: after an answer, what next */
  'keypadMore',
] as const;
export type LanguagePromptKey = (typeof LANGUAGE_PROMPT_KEYS)[number];

/** A BCP 47 tag as tenants.yaml writes them (en-US, es-US, es-419, fr). */
export const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

type Fail = (field: string, problem: string) => never;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `voices`: language → {engine, voice, wpm?}. Shapes are checked here; whether espeak-ng
 * really has the voice is checked at start-up (src/tts/voices.ts checkTenantVoices), with
 * the same field path. @throws through `fail`
 */
export function parseVoices(v: unknown, f: string, fliteVoices: readonly string[], fail: Fail): Record<string, TenantVoice> {
  const out: Record<string, TenantVoice> = {};
  if (v === undefined) return out;
  if (!isMap(v)) fail(f, `must be a mapping of language → {engine, voice}, got ${show(v)}`);
  for (const [lang, raw] of Object.entries(v as Record<string, unknown>)) {
    const lf = `${f}.${lang}`;
    if (!LANGUAGE_TAG.test(lang)) fail(lf, 'must be keyed by a language tag like es-US');
    if (!isMap(raw)) fail(lf, `must be a mapping with engine and voice, got ${show(raw)}`);
    const o = raw as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['engine', 'voice', 'wpm'].includes(k)) fail(`${lf}.${k}`, 'unknown key (expected engine, voice, wpm)');
    if (typeof o.engine !== 'string' || !(VOICE_ENGINES as readonly string[]).includes(o.engine)) fail(`${lf}.engine`, `must be one of ${VOICE_ENGINES.join(', ')}, got ${show(o.engine)}`);
    if (typeof o.voice !== 'string' || o.voice.trim() === '') fail(`${lf}.voice`, `must be a voice name, got ${show(o.voice)}`);
    const engine = o.engine as VoiceEngine;
    const voice = (o.voice as string).trim();
    if (engine === 'flite' && !fliteVoices.includes(voice)) fail(`${lf}.voice`, `must be one of ${fliteVoices.join(', ')} (flite voices), got ${show(voice)}`);
    if (engine === 'espeak-ng' && !/^[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,16})?$/i.test(voice)) fail(`${lf}.voice`, `must be an espeak-ng voice such as es-419, es or en-us (optionally +f3 …), got ${show(voice)}`);
    const tv: TenantVoice = { engine, voice };
    if (o.wpm !== undefined) {
      if (engine !== 'espeak-ng') fail(`${lf}.wpm`, 'only an espeak-ng voice takes wpm');
      if (typeof o.wpm !== 'number' || !Number.isInteger(o.wpm) || o.wpm < 80 || o.wpm > 450) fail(`${lf}.wpm`, `must be an integer 80-450 (words per minute), got ${show(o.wpm)}`);
      tv.wpm = o.wpm as number;
    }
    out[lang] = tv;
  }
  return out;
}

/**
 * Fill each language's missing prompts from the default language's set (in place) and
 * return one warning per language that lacked any, listing the keys. Prompts only the
 * other language has (the keypad path, the language offer) are not expected of the default.
 */
export function fillPromptFallbacks(prompts: Record<string, Record<string, unknown>>, defaultLanguage: string, where: string): string[] {
  const base = prompts[defaultLanguage];
  if (!base) return [];
  const warnings: string[] = [];
  for (const [lang, set] of Object.entries(prompts)) {
    if (lang === defaultLanguage) continue;
    const missing = Object.keys(base).filter((k) => set[k] === undefined || set[k] === '');
    if (!missing.length) continue;
    for (const k of missing) set[k] = base[k];
    warnings.push(`${where}.${lang}: no ${missing.join(', ')} — the ${defaultLanguage} text is used`);
  }
  return warnings;
}
