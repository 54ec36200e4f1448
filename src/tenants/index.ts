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
}

/** Default flite voice for tenants that do not name one. @defaultValue 'slt' */
export const DEFAULT_VOICE: TtsVoice = 'slt';
/** Default prompt language. @defaultValue 'en-US' */
export const DEFAULT_LANGUAGE = 'en-US';

const TENANT_KEYS = ['id', 'name', 'default', 'dids', 'language', 'greeting', 'tts', 'maxCallSeconds'] as const;

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
    if (typeof o.greeting !== 'string' || o.greeting.trim() === '') fail(`${p}.greeting`, `must be a non-empty string, got ${show(o.greeting)}`);
    if ((o.greeting as string).length > 2000) fail(`${p}.greeting`, 'must be at most 2000 characters');

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
      id, name: (o.name as string).trim(), isDefault, dids, language,
      greeting: (o.greeting as string).trim().replace(/\s+/g, ' '), voice,
    };
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
