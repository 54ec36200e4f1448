/**
 * Where a caller is, as far as recording law goes: the country from the E.164 calling number
 * (libphonenumber-js) and, for US numbers, the state from the NANP area code
 * (./nanp-area-codes.json, written from NANPA's public assignments). The consent rule of that
 * place: all-party consent (every party must agree to a recording), one-party, or unknown
 * (treated as all-party by ./posture.ts). An area code says where a number was assigned, not
 * where the caller stands; this is an engineering default, not legal advice.
 */
import { readFileSync } from 'node:fs';
import { parsePhoneNumberFromString } from 'libphonenumber-js';

export type ConsentRule = 'all-party' | 'one-party' | 'unknown';

export interface Jurisdiction {
  /** `US-CA` (US state / DC, ISO 3166-2), `GB` (ISO 3166-1 country), or `unknown` */
  key: string;
  /** ISO 3166-1 alpha-2 country of the number, when known */
  country?: string;
  /** US state (or DC) of the area code, when the number is a geographic US number */
  state?: string;
  /** the number's country is an EU or EEA member */
  eu: boolean;
  /** what the law of this place asks before a call is recorded */
  rule: ConsentRule;
  /** one line for logs and the CDR: why this rule */
  why: string;
}

/** US states (and DC) where every party must consent to a recording; CT, MI and OR are treated as all-party too. */
export const ALL_PARTY_STATES: ReadonlySet<string> = new Set(['CA', 'DE', 'FL', 'IL', 'MD', 'MA', 'MT', 'NV', 'NH', 'PA', 'WA', 'CT', 'MI', 'OR']);

/** EU members plus the other EEA countries (IS, LI, NO). */
export const EU_EEA: ReadonlySet<string> = new Set([
  'AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE', 'IT', 'LV', 'LT', 'LU', 'MT', 'NL',
  'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE', 'IS', 'LI', 'NO',
]);

/** Countries outside the US whose rule this table knows as one-party; every other country is unknown (→ strictest). */
export const ONE_PARTY_COUNTRIES: ReadonlySet<string> = new Set(['CA']);

interface AreaCodeFile { _source: string; states: Record<string, number[]> }

let areaCodes: Map<string, string> | undefined;

/** NANP area code (3 digits) → US state / DC, from ./nanp-area-codes.json. */
export function areaCodeTable(): ReadonlyMap<string, string> {
  if (!areaCodes) {
    const doc = JSON.parse(readFileSync(new URL('./nanp-area-codes.json', import.meta.url), 'utf8')) as AreaCodeFile;
    areaCodes = new Map();
    for (const [state, codes] of Object.entries(doc.states)) for (const c of codes) areaCodes.set(String(c), state);
  }
  return areaCodes;
}

/** The US state of a NANP area code, or undefined (non-geographic, territory, Canada, unassigned). */
export function stateOfAreaCode(npa: string): string | undefined {
  return areaCodeTable().get(npa);
}

/**
 * The jurisdiction of a calling number (E.164, with its `+`).
 * Anything that does not parse to a country — anonymous, national-only, garbage — is `unknown`.
 */
export function jurisdictionOf(ani: string | undefined): Jurisdiction {
  const unknown = (why: string): Jurisdiction => ({ key: 'unknown', eu: false, rule: 'unknown', why });
  if (!ani) return unknown('no calling number');
  // Only an E.164 number names its country; digits without `+` may be a national form.
  const e164 = ani.trim().replace(/[\s().-]/g, '');
  const parsed = /^\+\d{6,15}$/.test(e164) ? parsePhoneNumberFromString(e164) : undefined;
  const country = parsed?.country;
  if (!parsed || !country) return unknown('the calling number is not E.164 with a known country');
  const eu = EU_EEA.has(country);
  if (country === 'US') {
    const npa = parsed.nationalNumber.slice(0, 3);
    const state = stateOfAreaCode(npa);
    if (!state) return { key: 'US', country, eu, rule: 'unknown', why: `US area code ${npa} is not a geographic state code` };
    const all = ALL_PARTY_STATES.has(state);
    return { key: `US-${state}`, country, state, eu, rule: all ? 'all-party' : 'one-party', why: `area code ${npa} → ${state}, ${all ? 'all-party' : 'one-party'} consent state` };
  }
  if (eu || country === 'GB') return { key: country, country, eu, rule: 'all-party', why: `${country}: ${eu ? 'EU/EEA' : 'UK'} caller, consent required` };
  if (ONE_PARTY_COUNTRIES.has(country)) return { key: country, country, eu, rule: 'one-party', why: `${country}: one-party consent` };
  return { key: country, country, eu, rule: 'unknown', why: `${country}: no rule in the table, strictest applies` };
}
