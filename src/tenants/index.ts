/**
 * Tenant configuration: who answers which dialed number, with what greeting and voice.
 *
 * The YAML (see src/tenants/tenants.yaml for the annotated demo) is validated by hand so
 * every error names the file and the field path, e.g.
 * `tenants.yaml: tenants[0].dids[1]: must be a string of digits, got "12-ab"`.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigError } from '../config.ts';
import { TURN_DEFAULTS, validateTurnTunables, type TurnTunables } from '../vad/policy.ts';

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
  /** Prompts per BCP 47 language; `prompts[language]` always exists (filled from `greeting`). */
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
}

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
export interface TenantPrompts {
  /** LLM system prompt (the agent adds caller and call facts after it). */
  system?: string;
  /** greeting for an unidentified caller (also the plain greeting the call plays) */
  greeting: string;
  /** greeting for a caller identified by their number. @defaultValue 'Thank you for calling {tenant}. Hi {first_name}, I see you're calling from {account}. How can I help you today?' */
  greetingKnown?: string;
  /** what is said when the CRM reports the office closed. @defaultValue 'Our office is closed right now, but I can take a message and have your rep call you back.' */
  afterHours?: string;
  /** said while a slow tool call runs. @defaultValue 'Let me check that for you.' */
  filler?: string;
  /** said before the caller is put through ({target}: the rep or team). @defaultValue 'I am going to transfer you to {target} who can help with that. Hold on for just a moment.' */
  handshake?: string;
  /** said when the rep does not answer ({target}, {callback}). @defaultValue "I'm sorry, {target} is not available right now. I've taken a message, and they will call you back at {callback}." */
  transferFailed?: string;
  /** said when the caller has been silent for noInput.timeoutMs, before the last question is repeated. @defaultValue "Sorry, I didn't catch that." */
  noInput?: string;
  /** said before hanging up after the last no-input reprompt. @defaultValue "I'm not hearing anything, so I'll end the call now. Please call us back any time. Goodbye." */
  noInputGoodbye?: string;
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

/** An MCP server a tenant's gateway connects to. */
export type McpServerConfig =
  | { name: string; transport: 'stdio'; command: string; args?: string[] }
  | { name: string; transport: 'http'; url: string };

/** Action presets understood by the tool gateway. */
export const ACTION_PRESETS = ['read_only', 'order_placement'] as const;

/** Default flite voice for tenants that do not name one. @defaultValue 'slt' */
export const DEFAULT_VOICE: TtsVoice = 'slt';
/** Default prompt language. @defaultValue 'en-US' */
export const DEFAULT_LANGUAGE = 'en-US';

const TENANT_KEYS = ['id', 'name', 'default', 'dids', 'language', 'greeting', 'tts', 'maxCallSeconds',
  'actions', 'prompts', 'llm', 'mcpServers', 'businessHoursTenant', 'afterHours', 'toolTimeoutMs', 'escalation', 'turnTaking', 'noInput'] as const;
const PROMPT_KEYS = ['system', 'greeting', 'greetingKnown', 'afterHours', 'filler', 'handshake', 'transferFailed', 'noInput', 'noInputGoodbye'] as const;

/** Strip a leading `+` and visual separators (RFC 3966) so `+1 (800) 555-0100` matches `18005550100`. */
export function normalizeNumber(n: string): string {
  return n.replace(/[\s+\-.()]/g, '');
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

/** Lookup of tenants by dialed number. */
export class TenantDirectory {
  readonly tenants: readonly Tenant[];
  readonly defaultTenant: Tenant | undefined;
  private readonly byDid = new Map<string, Tenant>();

  constructor(tenants: Tenant[]) {
    this.tenants = tenants;
    this.defaultTenant = tenants.find((t) => t.isDefault);
    for (const t of tenants) for (const d of t.dids) this.byDid.set(d, t);
  }

  /**
   * The tenant for a dialed number: exact DID match, else the default tenant, else undefined.
   * Pass the Request-URI user first and the To user second; the first that matches a DID wins.
   */
  lookup(...dialed: (string | undefined | null)[]): { tenant: Tenant; matched: string | null } | undefined {
    for (const d of dialed) {
      if (!d) continue;
      const t = this.byDid.get(normalizeNumber(d));
      if (t) return { tenant: t, matched: normalizeNumber(d) };
    }
    return this.defaultTenant ? { tenant: this.defaultTenant, matched: null } : undefined;
  }

  get size(): number {
    return this.tenants.length;
  }
}

/** Validate a parsed YAML document. `source` names the file in errors. @throws ConfigError */
export function parseTenants(doc: unknown, source: string): TenantDirectory {
  const fail = (field: string, problem: string): never => {
    throw new ConfigError(source, field, problem);
  };
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) fail('', 'must be a mapping with a "tenants" list');
  const top = doc as Record<string, unknown>;
  for (const k of Object.keys(top)) if (k !== 'tenants') fail(k, 'unknown key (expected "tenants")');
  const list = top.tenants;
  if (!Array.isArray(list)) fail('tenants', `must be a list of tenants, got ${show(list)}`);
  const arr = list as unknown[];
  if (arr.length === 0) fail('tenants', 'must list at least one tenant');

  const tenants: Tenant[] = [];
  const seenIds = new Map<string, number>();
  const seenDids = new Map<string, string>();
  let defaultAt: number | undefined;

  arr.forEach((raw, i) => {
    const p = `tenants[${i}]`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(p, `must be a mapping, got ${show(raw)}`);
    const o = raw as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!(TENANT_KEYS as readonly string[]).includes(k)) fail(`${p}.${k}`, `unknown key (expected one of ${TENANT_KEYS.join(', ')})`);
    }
    if (typeof o.id !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(o.id)) {
      fail(`${p}.id`, `must be a short identifier (a-z, 0-9, -, _), got ${show(o.id)}`);
    }
    const id = o.id as string;
    if (seenIds.has(id)) fail(`${p}.id`, `duplicate id "${id}" (also tenants[${seenIds.get(id)}])`);
    seenIds.set(id, i);
    if (typeof o.name !== 'string' || o.name.trim() === '') fail(`${p}.name`, `must be a non-empty string, got ${show(o.name)}`);

    let isDefault = false;
    if (o.default !== undefined) {
      if (typeof o.default !== 'boolean') fail(`${p}.default`, `must be true or false, got ${show(o.default)}`);
      isDefault = o.default as boolean;
      if (isDefault && defaultAt !== undefined) fail(`${p}.default`, `only one tenant may be the default (tenants[${defaultAt}] already is)`);
      if (isDefault) defaultAt = i;
    }

    const dids: string[] = [];
    if (o.dids !== undefined) {
      if (!Array.isArray(o.dids)) fail(`${p}.dids`, `must be a list of dialed numbers, got ${show(o.dids)}`);
      (o.dids as unknown[]).forEach((d, j) => {
        const f = `${p}.dids[${j}]`;
        if (typeof d === 'number') fail(f, `must be a string of digits, got the number ${d} (quote it: "${d}")`);
        if (typeof d !== 'string' || !/^\+?[0-9]{1,32}$/.test(d)) fail(f, `must be a string of digits, got ${show(d)}`);
        const n = normalizeNumber(d as string);
        const other = seenDids.get(n);
        if (other !== undefined) fail(f, `number ${n} is already listed by ${other}`);
        seenDids.set(n, `${p} (${id})`);
        dids.push(n);
      });
    }
    if (dids.length === 0 && !isDefault) fail(`${p}.dids`, 'must list at least one dialed number (or mark the tenant default: true)');

    let language = DEFAULT_LANGUAGE;
    if (o.language !== undefined) {
      if (typeof o.language !== 'string' || !/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(o.language)) {
        fail(`${p}.language`, `must be a language tag like en-US, got ${show(o.language)}`);
      }
      language = o.language as string;
    }
    const prompts = parsePrompts(o.prompts, `${p}.prompts`, fail);
    if (o.greeting === undefined && prompts[language]?.greeting) o.greeting = prompts[language]!.greeting;
    if (typeof o.greeting !== 'string' || o.greeting.trim() === '') fail(`${p}.greeting`, `must be a non-empty string, got ${show(o.greeting)}`);
    if ((o.greeting as string).length > 2000) fail(`${p}.greeting`, 'must be at most 2000 characters');
    const greeting = (o.greeting as string).trim().replace(/\s+/g, ' ');
    prompts[language] = { ...prompts[language], greeting: prompts[language]?.greeting || greeting };

    let voice: TtsVoice = DEFAULT_VOICE;
    if (o.tts !== undefined) {
      if (o.tts === null || typeof o.tts !== 'object' || Array.isArray(o.tts)) fail(`${p}.tts`, `must be a mapping, got ${show(o.tts)}`);
      const tts = o.tts as Record<string, unknown>;
      for (const k of Object.keys(tts)) if (k !== 'voice') fail(`${p}.tts.${k}`, 'unknown key (expected voice)');
      if (tts.voice !== undefined) {
        if (typeof tts.voice !== 'string' || !(TTS_VOICES as readonly string[]).includes(tts.voice)) {
          fail(`${p}.tts.voice`, `must be one of ${TTS_VOICES.join(', ')}, got ${show(tts.voice)}`);
        }
        voice = tts.voice as TtsVoice;
      }
    }

    const tenant: Tenant = {
      id, name: (o.name as string).trim(), isDefault, dids, language, greeting, voice,
      actions: parseActions(o.actions, `${p}.actions`, fail),
      prompts,
      llm: parseLlm(o.llm, `${p}.llm`, fail),
      mcpServers: parseMcpServers(o.mcpServers, `${p}.mcpServers`, fail),
      businessHoursTenant: id,
      afterHours: { enabled: true },
      escalation: parseEscalation(o.escalation, `${p}.escalation`, fail),
      turnTaking: parseTurnTaking(o.turnTaking, `${p}.turnTaking`, fail),
      noInput: parseNoInput(o.noInput, `${p}.noInput`, fail),
    };
    if (o.businessHoursTenant !== undefined) {
      if (typeof o.businessHoursTenant !== 'string' || o.businessHoursTenant.trim() === '') fail(`${p}.businessHoursTenant`, `must be a non-empty string, got ${show(o.businessHoursTenant)}`);
      tenant.businessHoursTenant = (o.businessHoursTenant as string).trim();
    }
    if (o.afterHours !== undefined) {
      const ah = o.afterHours;
      if (ah === null || typeof ah !== 'object' || Array.isArray(ah)) fail(`${p}.afterHours`, `must be a mapping, got ${show(ah)}`);
      for (const k of Object.keys(ah as object)) if (k !== 'enabled') fail(`${p}.afterHours.${k}`, 'unknown key (expected enabled)');
      const en = (ah as Record<string, unknown>).enabled;
      if (en !== undefined && typeof en !== 'boolean') fail(`${p}.afterHours.enabled`, `must be true or false, got ${show(en)}`);
      tenant.afterHours = { enabled: en !== false };
    }
    if (o.toolTimeoutMs !== undefined) {
      const m = o.toolTimeoutMs;
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 50 || m > 120000) fail(`${p}.toolTimeoutMs`, `must be an integer 50-120000 (milliseconds), got ${show(m)}`);
      tenant.toolTimeoutMs = m as number;
    }
    if (o.maxCallSeconds !== undefined) {
      const m = o.maxCallSeconds;
      if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m > 86400 * 7) {
        fail(`${p}.maxCallSeconds`, `must be an integer 0-604800 (seconds; 0 = no limit), got ${show(m)}`);
      }
      tenant.maxCallSeconds = m as number;
    }
    tenants.push(tenant);
  });
  return new TenantDirectory(tenants);
}

type Fail = (field: string, problem: string) => never;

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parseActions(v: unknown, f: string, fail: Fail): string[] {
  if (v === undefined) return ['read_only'];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) fail(f, `must be read_only, order_placement or a list of tool names, got ${show(v)}`);
  return (list as unknown[]).map((a, i) => {
    if (typeof a !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(a)) fail(typeof v === 'string' ? f : `${f}[${i}]`, `must be read_only, order_placement or a tool name, got ${show(a)}`);
    return a as string;
  });
}

function parsePrompts(v: unknown, f: string, fail: Fail): Record<string, TenantPrompts> {
  const out: Record<string, TenantPrompts> = {};
  if (v === undefined) return out;
  if (!isMap(v)) fail(f, `must be a mapping of language → prompts, got ${show(v)}`);
  for (const [lang, raw] of Object.entries(v as Record<string, unknown>)) {
    const lf = `${f}.${lang}`;
    if (!/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(lang)) fail(lf, 'must be keyed by a language tag like en-US');
    if (!isMap(raw)) fail(lf, `must be a mapping, got ${show(raw)}`);
    const pr: Record<string, string> = {};
    for (const [k, val] of Object.entries(raw as Record<string, unknown>)) {
      if (!(PROMPT_KEYS as readonly string[]).includes(k)) fail(`${lf}.${k}`, `unknown key (expected one of ${PROMPT_KEYS.join(', ')})`);
      if (typeof val !== 'string' || val.trim() === '') fail(`${lf}.${k}`, `must be a non-empty string, got ${show(val)}`);
      if ((val as string).length > 8000) fail(`${lf}.${k}`, 'must be at most 8000 characters');
      pr[k] = k === 'system' ? (val as string).trim() : (val as string).trim().replace(/\s+/g, ' ');
    }
    out[lang] = { greeting: '', ...pr } as TenantPrompts;
  }
  return out;
}

function parseNoInput(v: unknown, f: string, fail: Fail): Tenant['noInput'] {
  const out = { ...NO_INPUT_DEFAULTS };
  if (v === undefined) return out;
  if (!isMap(v)) fail(f, `must be a mapping with timeoutMs and/or reprompts, got ${show(v)}`);
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'timeoutMs') {
      if (typeof val !== 'number' || !Number.isInteger(val) || (val !== 0 && (val < 2000 || val > 120000))) {
        fail(`${f}.timeoutMs`, `must be 0 (off) or an integer 2000-120000 (milliseconds), got ${show(val)}`);
      }
      out.timeoutMs = val as number;
    } else if (k === 'reprompts') {
      if (typeof val !== 'number' || !Number.isInteger(val) || val < 0 || val > 10) fail(`${f}.reprompts`, `must be an integer 0-10, got ${show(val)}`);
      out.reprompts = val as number;
    } else {
      fail(`${f}.${k}`, 'unknown key (expected timeoutMs, reprompts)');
    }
  }
  return out;
}

function parseTurnTaking(v: unknown, f: string, fail: Fail): Partial<TurnTunables> {
  if (v === undefined) return {};
  if (!isMap(v)) fail(f, `must be a mapping of turn-taking tunables, got ${show(v)}`);
  const keys = Object.keys(TURN_DEFAULTS);
  const out: Record<string, number> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!keys.includes(k)) fail(`${f}.${k}`, `unknown key (expected one of ${keys.join(', ')})`);
    if (typeof val !== 'number' || !Number.isFinite(val)) fail(`${f}.${k}`, `must be a number, got ${show(val)}`);
    out[k] = val as number;
  }
  const problem = validateTurnTunables({ ...TURN_DEFAULTS, ...out });
  if (problem) {
    const field = problem.split(' ')[0]!;
    fail(`${f}.${keys.includes(field) ? field : ''}`.replace(/\.$/, ''), problem);
  }
  return out as Partial<TurnTunables>;
}

const ESCALATION_KEYS = ['mode', 'repUri', 'ringSeconds', 'triggers'] as const;
const TRIGGER_KEYS = ['explicit', 'routing', 'dtmfZero', 'repetition', 'frustration', 'complexPart', 'alwaysHuman', 'llmTool'] as const;

function parseEscalation(v: unknown, f: string, fail: Fail): TenantEscalation {
  const e = defaultEscalation();
  if (v === undefined) return e;
  if (!isMap(v)) fail(f, `must be a mapping, got ${show(v)}`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(ESCALATION_KEYS as readonly string[]).includes(k)) fail(`${f}.${k}`, `unknown key (expected one of ${ESCALATION_KEYS.join(', ')})`);
  if (o.mode !== undefined) {
    if (o.mode !== 'warm' && o.mode !== 'blind') fail(`${f}.mode`, `must be warm or blind, got ${show(o.mode)}`);
    e.mode = o.mode as 'warm' | 'blind';
  }
  if (o.repUri !== undefined) {
    if (typeof o.repUri !== 'string' || !/^sips?:\S*\{extension\}\S*$/.test(o.repUri.trim())) fail(`${f}.repUri`, `must be a SIP URI template containing {extension}, got ${show(o.repUri)}`);
    e.repUri = (o.repUri as string).trim();
  }
  if (o.ringSeconds !== undefined) {
    const m = o.ringSeconds;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 300) fail(`${f}.ringSeconds`, `must be an integer 1-300 (seconds), got ${show(m)}`);
    e.ringSeconds = m as number;
  }
  if (o.triggers !== undefined) {
    const tf = `${f}.triggers`;
    if (!isMap(o.triggers)) fail(tf, `must be a mapping, got ${show(o.triggers)}`);
    const t = o.triggers as Record<string, unknown>;
    for (const [k, val] of Object.entries(t)) {
      if (!(TRIGGER_KEYS as readonly string[]).includes(k)) fail(`${tf}.${k}`, `unknown trigger (expected one of ${TRIGGER_KEYS.join(', ')})`);
      if (k === 'repetition') {
        if (typeof val !== 'number' || !Number.isInteger(val) || val < 0 || val > 10) fail(`${tf}.repetition`, `must be an integer 0-10 (0 = off), got ${show(val)}`);
        e.triggers.repetition = val as number;
      } else if (k === 'alwaysHuman') {
        if (!Array.isArray(val)) fail(`${tf}.alwaysHuman`, `must be a list of ${ALWAYS_HUMAN_CATEGORIES.join(', ')}, got ${show(val)}`);
        e.triggers.alwaysHuman = (val as unknown[]).map((c, i) => {
          if (typeof c !== 'string' || !(ALWAYS_HUMAN_CATEGORIES as readonly string[]).includes(c)) fail(`${tf}.alwaysHuman[${i}]`, `must be one of ${ALWAYS_HUMAN_CATEGORIES.join(', ')}, got ${show(c)}`);
          return c as AlwaysHumanCategory;
        });
      } else {
        if (typeof val !== 'boolean') fail(`${tf}.${k}`, `must be true or false, got ${show(val)}`);
        (e.triggers as unknown as Record<string, boolean>)[k] = val as boolean;
      }
    }
  }
  return e;
}

function parseLlm(v: unknown, f: string, fail: Fail): TenantLlm {
  const llm: TenantLlm = { enabled: true };
  if (v === undefined) return llm;
  if (!isMap(v)) fail(f, `must be a mapping, got ${show(v)}`);
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'enabled') {
      if (typeof val !== 'boolean') fail(`${f}.enabled`, `must be true or false, got ${show(val)}`);
      llm.enabled = val as boolean;
    } else if (k === 'baseUrl') {
      if (typeof val !== 'string' || !/^https?:\/\/[^\s]+$/.test(val)) fail(`${f}.baseUrl`, `must be an http(s) URL, got ${show(val)}`);
      llm.baseUrl = val as string;
    } else if (k === 'model') {
      if (typeof val !== 'string' || val.trim() === '') fail(`${f}.model`, `must be a non-empty string, got ${show(val)}`);
      llm.model = (val as string).trim();
    } else if (k === 'apiKeyEnv') {
      if (typeof val !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(val)) fail(`${f}.apiKeyEnv`, `must be an environment variable name, got ${show(val)}`);
      llm.apiKeyEnv = val as string;
    } else fail(`${f}.${k}`, 'unknown key (expected one of enabled, baseUrl, model, apiKeyEnv)');
  }
  return llm;
}

function parseMcpServers(v: unknown, f: string, fail: Fail): McpServerConfig[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(f, `must be a list of MCP servers, got ${show(v)}`);
  const names = new Set<string>();
  return (v as unknown[]).map((raw, i) => {
    const sf = `${f}[${i}]`;
    if (!isMap(raw)) fail(sf, `must be a mapping, got ${show(raw)}`);
    const o = raw as Record<string, unknown>;
    if (typeof o.name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(o.name)) fail(`${sf}.name`, `must be a short identifier (a-z, 0-9, -, _), got ${show(o.name)}`);
    if (names.has(o.name as string)) fail(`${sf}.name`, `duplicate MCP server name "${o.name as string}"`);
    names.add(o.name as string);
    if (o.transport === 'stdio') {
      for (const k of Object.keys(o)) if (!['name', 'transport', 'command', 'args'].includes(k)) fail(`${sf}.${k}`, 'unknown key (expected one of name, transport, command, args)');
      if (typeof o.command !== 'string' || o.command.trim() === '') fail(`${sf}.command`, `must be a non-empty string, got ${show(o.command)}`);
      if (o.args !== undefined && (!Array.isArray(o.args) || !(o.args as unknown[]).every((a) => typeof a === 'string'))) fail(`${sf}.args`, 'must be a list of strings');
      return { name: o.name as string, transport: 'stdio' as const, command: o.command as string, ...(o.args ? { args: o.args as string[] } : {}) };
    }
    if (o.transport === 'http') {
      for (const k of Object.keys(o)) if (!['name', 'transport', 'url'].includes(k)) fail(`${sf}.${k}`, 'unknown key (expected one of name, transport, url)');
      if (typeof o.url !== 'string' || !/^https?:\/\/\S+$/.test(o.url)) fail(`${sf}.url`, `must be an http(s) URL, got ${show(o.url)}`);
      return { name: o.name as string, transport: 'http' as const, url: o.url as string };
    }
    return fail(`${sf}.transport`, `must be stdio or http, got ${show(o.transport)}`);
  });
}

/** Read and validate a tenants YAML file. @throws ConfigError naming the file and field */
export function loadTenants(file: string): TenantDirectory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read tenants file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0]! : (err as Error).message;
    throw new ConfigError(file, '', `invalid YAML: ${msg}`);
  }
  return parseTenants(doc, file);
}
