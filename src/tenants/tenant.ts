/**
 * What a tenant is: who answers which dialed number, with what prompts, voice, allowed
 * actions, escalation and turn-taking. Parsed and validated by ./load.ts; looked up by
 * dialed number in ./directory.ts; the action presets and MCP server shapes are in ./policy.ts.
 */
import type { TurnTunables } from '../vad/policy.ts';
import type { McpServerConfig } from './policy.ts';
import type { LanguagePromptKey, TenantVoice } from './languages.ts';
import type { SttSettings, TtsSettings } from '../speech/settings.ts';

/** flite voices the media layer can synthesize with. */
export const TTS_VOICES = ['kal', 'kal16', 'slt', 'rms', 'awb'] as const;
export type TtsVoice = (typeof TTS_VOICES)[number];

export interface Tenant {
  /** short identifier for logs and CDRs */
  id: string;
  /** company name */
  name: string;
  /** the catch-all tenant for numbers nobody lists */
  isDefault: boolean;
  /** normalised dialed numbers (digits only) */
  dids: string[];
  /** BCP 47 language of the prompts. @defaultValue 'en-US' */
  language: string;
  /** spoken right after answer */
  greeting: string;
  /** flite voice. @defaultValue 'slt' */
  voice: TtsVoice;
  /** per-tenant call-length limit in seconds; may only lower the global MAX_CALL_SECONDS (0 = no tenant limit) */
  maxCallSeconds?: number;
  /**
   * What the agent may do: presets `read_only` / `order_placement` and/or MCP tool names.
   * Enforced by the tool gateway, not by the model. @defaultValue ['read_only']
   */
  actions: string[];
  /**
   * Voice per BCP 47 language (engine flite | espeak-ng | openai, voice): a call in a language
   * listed here is spoken with that voice; other calls use `tts`/`voice`. @defaultValue {}
   */
  voices?: Record<string, TenantVoice>;
  /**
   * Prompts per BCP 47 language; `prompts[language]` always exists (filled from `greeting`).
   * Keys another language leaves out are filled from `prompts[language]` at load (with a warning).
   */
  prompts: Record<string, TenantPrompts>;
  /** LLM settings; without a base URL/key here or in the environment the rules agent answers. */
  llm: TenantLlm;
  /** Extra MCP servers whose tools this tenant may use (beside the built-in CRM/ERP server). */
  mcpServers: McpServerConfig[];
  /** Tenant id passed to the CRM's business_hours tool. @defaultValue the tenant id */
  businessHoursTenant: string;
  /** After-hours behaviour: when enabled and the CRM says closed at call start, the agent takes a message. */
  afterHours: { /** @defaultValue true */ enabled: boolean };
  /** Per-tool-call timeout in ms for this tenant's gateway. @defaultValue 4000 */
  toolTimeoutMs?: number;
  /** Human hand-off: transfer mode, the reps' phones, which triggers escalate. */
  escalation: TenantEscalation;
  /**
   * Turn-taking overrides for this tenant's calls (native VAD state machine): endpointing
   * silence, barge-in minimum, thresholds … (src/vad/policy.ts documents each and its
   * default). @defaultValue {} (the defaults)
   */
  turnTaking: Partial<TurnTunables>;
  /**
   * Dead-air guard: when the caller says nothing for `timeoutMs` after the agent finished
   * speaking, the agent says the `noInput` prompt and repeats its last question; after
   * `reprompts` such reprompts it says `noInputGoodbye` and hangs up.
   * @defaultValue { timeoutMs: 8000, reprompts: 2 } (timeoutMs 0 turns it off)
   */
  noInput: { timeoutMs: number; reprompts: number };
  /** Call records: days this tenant's CDR rows are kept (0 = forever). @defaultValue the config's cdr.retentionDays */
  cdr?: { retentionDays?: number };
  /**
   * Speech-to-text of this tenant's calls: fields given here win over the config's `stt`
   * (src/speech/settings.ts). @defaultValue unset (the config's `stt`)
   */
  stt?: Partial<SttSettings>;
  /**
   * Text-to-speech of this tenant's calls (provider, baseUrl, model, voice, apiKeyEnv,
   * firstAudioMs, timeoutMs) over the config's `tts`. A `voice` given without a provider (or
   * with `flite`) is the flite voice and lives in {@link Tenant.voice}, which is also the
   * voice of the local fallback. @defaultValue unset (the config's `tts`)
   */
  tts?: Partial<TtsSettings>;
  /**
   * Call recording posture, per caller jurisdiction (src/consent). Absent = `off` everywhere
   * and no disclosure is added to the greeting. @defaultValue undefined
   */
  recording?: TenantRecording;
}

/** `off`: never record; `notify`: say "this call is recorded", then record; `consent`: ask, record only after a yes. */
export const RECORDING_POSTURES = ['off', 'notify', 'consent'] as const;
export type RecordingPosture = (typeof RECORDING_POSTURES)[number];

/** Per-tenant recording settings (tenants.yaml `recording`). */
export interface TenantRecording {
  /** Posture where no override matches. @defaultValue 'off' */
  posture: RecordingPosture;
  /**
   * Posture per jurisdiction: `US-CA` (ISO 3166-2 US state / DC), `US`, `GB`, `DE` … (ISO
   * 3166-1 country), `EU` (any EU/EEA country), `unknown` (no country from the number). The
   * most specific key wins (state → country → EU → posture). The legal floor of the caller's
   * jurisdiction is applied after this (src/consent/posture.ts): a recording posture is never
   * lowered below `consent` where all-party consent is required. @defaultValue {}
   */
  overrides: Record<string, RecordingPosture>;
  /** Directory of the WAV files and their JSON sidecars (created 0700); a relative path is under DATA_DIR (default ./var). @defaultValue 'recordings' */
  dir: string;
  /** Days a recording is kept before the purge deletes it (0 = forever). @defaultValue 30 */
  retentionDays: number;
  /** What a refusal leads to: `continue` (not recorded, the call goes on) or `human` (hand-off to a rep). @defaultValue 'continue' */
  onDecline: 'continue' | 'human';
}

/** Recording defaults for the fields a tenant's `recording` block leaves out. */
export const RECORDING_DEFAULTS: Readonly<Omit<TenantRecording, 'overrides'>> = Object.freeze({
  posture: 'off', dir: 'recordings', retentionDays: 30, onDecline: 'continue',
});

/** No-input reprompting of a tenant that configures none. */
export const NO_INPUT_DEFAULTS: Readonly<Tenant['noInput']> = Object.freeze({ timeoutMs: 8000, reprompts: 2 });

/** Intent categories a tenant can mark always-human (src/escalation/triggers.ts detects them). */
export const ALWAYS_HUMAN_CATEGORIES = ['price_negotiation', 'complaint', 'financial_dispute'] as const;
export type AlwaysHumanCategory = (typeof ALWAYS_HUMAN_CATEGORIES)[number];

/** Per-tenant escalation settings (tenants.yaml `escalation`). */
export interface TenantEscalation {
  /**
   * `warm`: the app dials the rep, the caller hears hold audio, on answer the two are bridged
   * natively and the agent leaves; `blind`: REFER the caller's leg to the rep.
   * @defaultValue 'warm'
   */
  mode: 'warm' | 'blind';
  /** SIP URI template of the reps' phones (`{extension}`). @defaultValue the global handoff.repUri */
  repUri?: string;
  /** Ring time before the agent takes the caller back, seconds. @defaultValue the global handoff.ringSeconds */
  ringSeconds?: number;
  triggers: {
    /** @defaultValue true */ explicit: boolean;
    /** the caller names a department or their rep ("billing", "returns", "my rep"): route there. @defaultValue true */ routing: boolean;
    /** @defaultValue true */ dtmfZero: boolean;
    /** Nth repetition of the same unresolved request escalates; 0 = off. @defaultValue 3 */ repetition: number;
    /** @defaultValue true */ frustration: boolean;
    /** @defaultValue true */ complexPart: boolean;
    /** @defaultValue all three categories */ alwaysHuman: AlwaysHumanCategory[];
    /** @defaultValue true */ llmTool: boolean;
  };
}

/** Escalation settings of a tenant that names none. */
export function defaultEscalation(): TenantEscalation {
  return {
    mode: 'warm',
    triggers: { explicit: true, routing: true, dtmfZero: true, repetition: 3, frustration: true, complexPart: true, alwaysHuman: [...ALWAYS_HUMAN_CATEGORIES], llmTool: true },
  };
}

/** Prompt texts for one language. Templates may use {tenant}, {first_name}, {account}. */
export interface TenantPrompts extends Partial<Record<LanguagePromptKey, string>> {
  /** LLM system prompt (the agent adds caller and call facts after it). */
  system?: string;
  /** greeting for an unidentified caller (also the plain greeting the call plays) */
  greeting: string;
  /** greeting for a caller identified by their number. @defaultValue 'Thank you for calling {tenant}. Hi {first_name}, I see you're calling from {account}. How can I help you today?' */
  greetingKnown?: string;
  /**
   * what is said when the CRM reports the office closed ({opens}: when it opens again, "tomorrow at 7 AM");
   * order status and reorders still work then, only what needs a person becomes a message.
   * @defaultValue 'Our office is closed until {opens}, but I can still check an order or take a reorder. To leave a message for your rep, say message, or press 1. What would you like to do?'
   */
  afterHours?: string;
  /** said while a slow tool call runs. @defaultValue 'Let me check that for you.' */
  filler?: string;
  /** said before the caller is put through ({target}: the rep or team). @defaultValue 'I am going to transfer you to {target} who can help with that. Hold on for just a moment.' */
  handshake?: string;
  /** said when the rep does not answer ({target}, {callback}). @defaultValue "I'm sorry, {target} is not available right now. I've taken a message, and they will call you back at {callback}." */
  transferFailed?: string;
  /** said when the caller has been silent for noInput.timeoutMs, before the last question is repeated. @defaultValue "Sorry, I didn't catch that." */
  noInput?: string;
  /** said when a draining node's deadline ends the call. @defaultValue "I'm sorry, I have to end this call now for maintenance. Please call us back in a few minutes. Goodbye." */
  drainGoodbye?: string;
  /** said before hanging up after the last no-input reprompt. @defaultValue "I'm not hearing anything, so I'll end the call now. Please call us back any time. Goodbye." */
  noInputGoodbye?: string;
  /** said first on every call of a tenant with a `recording` block (uninterruptible). @defaultValue 'You are speaking with an automated assistant.' */
  disclosureAi?: string;
  /** said after disclosureAi when the call will be recorded (notify and consent). @defaultValue 'This call is recorded for quality and training.' */
  disclosureRecorded?: string;
  /** the consent question (consent posture; end it with the question: a no-input reprompt repeats it). @defaultValue 'To allow it, say yes or press 1; if not, say no or press 2. Is it OK to record this call?' */
  consentAsk?: string;
  /** said after a yes. @defaultValue 'Thank you.' */
  consentThanks?: string;
  /** said after a no (or no answer): the call is not recorded. @defaultValue 'No problem, this call will not be recorded.' */
  consentDeclined?: string;
}

/** Per-tenant LLM endpoint; unset fields fall back to OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL. */
export interface TenantLlm {
  /** OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 */
  baseUrl?: string;
  /** model name. @defaultValue env OPENAI_MODEL, else 'gpt-4o-mini' */
  model?: string;
  /** name of the environment variable that holds the API key. @defaultValue 'OPENAI_API_KEY' */
  apiKeyEnv?: string;
  /** false forces the rules agent even when an LLM is configured. @defaultValue true */
  enabled: boolean;
}

/** Default flite voice for tenants that do not name one. @defaultValue 'slt' */
export const DEFAULT_VOICE: TtsVoice = 'slt';
/** Default prompt language. @defaultValue 'en-US' */
export const DEFAULT_LANGUAGE = 'en-US';

/**
 * The prompts of a call in `language`: that language's set, else the tenant's own language,
 * else just the greeting. The one place the language fallback is decided.
 */
export function promptsFor(tenant: Pick<Tenant, 'prompts' | 'language' | 'greeting'>, language?: string): TenantPrompts {
  return (language ? tenant.prompts[language] : undefined) ?? tenant.prompts[tenant.language] ?? { greeting: tenant.greeting };
}
