/**
 * Tenant configuration: who answers which dialed number, with what greeting and voice.
 *
 * The YAML (see src/tenants/tenants.yaml for the annotated demo) is validated by hand so
 * every error names the file and the field path, e.g.
 * `tenants.yaml: tenants[0].dids[1]: must be a string of digits, got "12-ab"`.
 */
import { ConfigError, readYamlFile } from '../config.ts';
import { TURN_DEFAULTS, validateTurnTunables, type TurnTunables } from '../vad/policy.ts';
import {
  ALWAYS_HUMAN_CATEGORIES, DEFAULT_LANGUAGE, DEFAULT_VOICE, NO_INPUT_DEFAULTS, RECORDING_DEFAULTS, RECORDING_POSTURES, TTS_VOICES, defaultEscalation,
  type AlwaysHumanCategory, type RecordingPosture, type Tenant, type TenantRecording, type TenantEscalation, type TenantLlm, type TenantPrompts, type TtsVoice,
} from './tenant.ts';
import { ACTION_RULE, type McpServerConfig } from './policy.ts';
import { parseSpeechBlock } from '../speech/settings.ts';
import { TenantDirectory, normalizeNumber } from './directory.ts';
import { LANGUAGE_PROMPT_KEYS, fillPromptFallbacks, parseVoices } from './languages.ts';
import { logger } from '../ops/log.ts';

const TENANT_KEYS = ['id', 'name', 'default', 'dids', 'language', 'greeting', 'tts', 'stt', 'maxCallSeconds',
  'actions', 'prompts', 'llm', 'mcpServers', 'businessHoursTenant', 'afterHours', 'toolTimeoutMs', 'escalation', 'turnTaking', 'noInput', 'cdr', 'recording', 'voices'] as const;
const PROMPT_KEYS = ['system', 'greeting', 'greetingKnown', 'afterHours', 'filler', 'handshake', 'transferFailed', 'noInput', 'noInputGoodbye', 'drainGoodbye',
  'disclosureAi', 'disclosureRecorded', 'consentAsk', 'consentThanks', 'consentDeclined', ...LANGUAGE_PROMPT_KEYS] as const;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
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
  const warnings: string[] = [];
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
    warnings.push(...fillPromptFallbacks(prompts as unknown as Record<string, Record<string, unknown>>, language, `${p}.prompts`));
    const voices = parseVoices(o.voices, `${p}.voices`, TTS_VOICES, fail);
    for (const lang of Object.keys(voices)) if (!prompts[lang]) warnings.push(`${p}.voices.${lang}: no prompts.${lang} — calls in ${lang} hear the ${language} prompts`);

    let voice: TtsVoice = DEFAULT_VOICE;
    // speech providers (src/speech/settings.ts); a voice without a provider is a flite voice
    const stt = o.stt === undefined ? undefined : parseSpeechBlock('stt', o.stt, `${p}.stt`, fail);
    const tts = o.tts === undefined ? undefined : parseSpeechBlock('tts', o.tts, `${p}.tts`, fail);
    if (tts?.voice !== undefined && (tts.provider ?? 'flite') === 'flite') {
      if (!(TTS_VOICES as readonly string[]).includes(tts.voice)) {
        fail(`${p}.tts.voice`, `must be one of ${TTS_VOICES.join(', ')} (flite voices; name tts.provider for another provider's voice), got ${show(tts.voice)}`);
      }
      voice = tts.voice as TtsVoice;
      delete tts.voice;
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
    if (o.cdr !== undefined) tenant.cdr = parseCdr(o.cdr, `${p}.cdr`, fail);
    if (stt && Object.keys(stt).length) tenant.stt = stt;
    if (tts && Object.keys(tts).length) tenant.tts = tts;
    if (Object.keys(voices).length) tenant.voices = voices;
    if (o.recording !== undefined) tenant.recording = parseRecording(o.recording, `${p}.recording`, fail);
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
  return new TenantDirectory(tenants, warnings.map((w) => `${source}: ${w}`));
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
    if (typeof a !== 'string' || !ACTION_RULE.test(a)) fail(typeof v === 'string' ? f : `${f}[${i}]`, `must be read_only, order_placement, a tool name, <server>__* or *, got ${show(a)}`);
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

function parseCdr(v: unknown, f: string, fail: Fail): NonNullable<Tenant['cdr']> {
  if (!isMap(v)) fail(f, `must be a mapping with retentionDays, got ${show(v)}`);
  const out: NonNullable<Tenant['cdr']> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k !== 'retentionDays') fail(`${f}.${k}`, 'unknown key (expected retentionDays)');
    if (typeof val !== 'number' || !Number.isInteger(val) || val < 0 || val > 36500) fail(`${f}.retentionDays`, `must be an integer 0-36500 (days; 0 = keep forever), got ${show(val)}`);
    out.retentionDays = val as number;
  }
  return out;
}

const RECORDING_KEYS = ['posture', 'overrides', 'dir', 'retentionDays', 'onDecline'] as const;
/** Jurisdiction keys of `recording.overrides`: US-XX (state/DC), XX (country), EU, unknown. */
const JURISDICTION_KEY = /^(?:[A-Z]{2}(?:-[A-Z0-9]{1,3})?|EU|unknown)$/;

function parsePosture(v: unknown, f: string, fail: Fail): RecordingPosture {
  if (typeof v !== 'string' || !(RECORDING_POSTURES as readonly string[]).includes(v)) fail(f, `must be one of ${RECORDING_POSTURES.join(', ')}, got ${show(v)}`);
  return v as RecordingPosture;
}

function parseRecording(v: unknown, f: string, fail: Fail): TenantRecording {
  const out: TenantRecording = { ...RECORDING_DEFAULTS, overrides: {} };
  if (typeof v === 'string') { out.posture = parsePosture(v, f, fail); return out; }
  if (!isMap(v)) fail(f, `must be off, notify, consent or a mapping with ${RECORDING_KEYS.join(', ')}, got ${show(v)}`);
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    const kf = `${f}.${k}`;
    if (k === 'posture') out.posture = parsePosture(val, kf, fail);
    else if (k === 'overrides') {
      if (!isMap(val)) fail(kf, `must be a mapping of jurisdiction (US-CA, US, GB, EU, unknown) → posture, got ${show(val)}`);
      for (const [j, pv] of Object.entries(val as Record<string, unknown>)) {
        if (!JURISDICTION_KEY.test(j)) fail(`${kf}.${j}`, 'must be keyed by a jurisdiction: US-CA (state), US or GB (ISO country), EU or unknown');
        out.overrides[j] = parsePosture(pv, `${kf}.${j}`, fail);
      }
    } else if (k === 'dir') {
      if (typeof val !== 'string' || val.trim() === '' || val.includes('\0')) fail(kf, `must be a directory path, got ${show(val)}`);
      out.dir = (val as string).trim();
    } else if (k === 'retentionDays') {
      if (typeof val !== 'number' || !Number.isInteger(val) || val < 0 || val > 36500) fail(kf, `must be an integer 0-36500 (days; 0 = keep forever), got ${show(val)}`);
      out.retentionDays = val as number;
    } else if (k === 'onDecline') {
      if (val !== 'continue' && val !== 'human') fail(kf, `must be continue or human, got ${show(val)}`);
      out.onDecline = val as 'continue' | 'human';
    } else fail(kf, `unknown key (expected one of ${RECORDING_KEYS.join(', ')})`);
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
      for (const k of Object.keys(o)) if (!['name', 'transport', 'command', 'args', 'env', 'cwd'].includes(k)) fail(`${sf}.${k}`, 'unknown key (expected one of name, transport, command, args, env, cwd)');
      if (typeof o.command !== 'string' || o.command.trim() === '') fail(`${sf}.command`, `must be a non-empty string, got ${show(o.command)}`);
      if (o.args !== undefined && (!Array.isArray(o.args) || !(o.args as unknown[]).every((a) => typeof a === 'string'))) fail(`${sf}.args`, 'must be a list of strings');
      if (o.cwd !== undefined && (typeof o.cwd !== 'string' || o.cwd.trim() === '')) fail(`${sf}.cwd`, `must be a directory path, got ${show(o.cwd)}`);
      const env = o.env === undefined ? undefined : stringMap(o.env, `${sf}.env`, /^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name', fail);
      return {
        name: o.name as string, transport: 'stdio' as const, command: o.command as string,
        ...(o.args ? { args: o.args as string[] } : {}), ...(env ? { env } : {}), ...(o.cwd ? { cwd: o.cwd as string } : {}),
      };
    }
    if (o.transport === 'http') {
      for (const k of Object.keys(o)) if (!['name', 'transport', 'url', 'headers'].includes(k)) fail(`${sf}.${k}`, 'unknown key (expected one of name, transport, url, headers)');
      if (typeof o.url !== 'string' || !/^https?:\/\/\S+$/.test(o.url)) fail(`${sf}.url`, `must be an http(s) URL, got ${show(o.url)}`);
      const headers = o.headers === undefined ? undefined : stringMap(o.headers, `${sf}.headers`, /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'an HTTP header name', fail);
      return { name: o.name as string, transport: 'http' as const, url: o.url as string, ...(headers ? { headers } : {}) };
    }
    return fail(`${sf}.transport`, `must be stdio or http, got ${show(o.transport)}`);
  });
}

/**
 * A mapping of names to strings (MCP server `env`, `headers`). A value may name environment
 * variables as `${NAME}` (e.g. `Authorization: Bearer ${CRM_MCP_TOKEN}`), resolved at load so
 * secrets stay out of the YAML; an unset variable is an error naming the field.
 */
function stringMap(v: unknown, f: string, keyRule: RegExp, keyWhat: string, fail: Fail, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (!isMap(v)) fail(f, `must be a mapping of names to strings, got ${show(v)}`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!keyRule.test(k)) fail(`${f}.${k}`, `must be ${keyWhat}`);
    if (typeof val !== 'string' && typeof val !== 'number') fail(`${f}.${k}`, `must be a string, got ${show(val)}`);
    out[k] = String(val).replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const x = env[name];
      if (x === undefined) fail(`${f}.${k}`, `names the environment variable ${name}, which is not set`);
      return x as string;
    });
  }
  return out;
}

/** Read and validate a tenants YAML file. @throws ConfigError naming the file and field */
export function loadTenants(file: string): TenantDirectory {
  const doc = readYamlFile(file, 'tenants file');
  const dir = parseTenants(doc, file);
  for (const w of dir.warnings) logger('tenants').warn('prompt fallback', { detail: w });
  return dir;
}
