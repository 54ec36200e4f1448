import t from 'tap';
import { parseTenants } from '../../src/tenants/index.ts';
import { ALL_PARTY_STATES, areaCodeTable, jurisdictionOf, stateOfAreaCode } from '../../src/consent/jurisdiction.ts';
import { resolvePosture } from '../../src/consent/posture.ts';
import type { TenantRecording } from '../../src/tenants/tenant.ts';

t.test('area codes → states: the table covers all 50 states + DC', async (t) => {
  const states = new Set(areaCodeTable().values());
  t.equal(states.size, 51, 'every state and DC has an area code');
  const cases: [string, string][] = [
    ['415', 'CA'], ['213', 'CA'], ['214', 'TX'], ['512', 'TX'], ['212', 'NY'], ['202', 'DC'], ['305', 'FL'], ['312', 'IL'],
    ['617', 'MA'], ['410', 'MD'], ['406', 'MT'], ['702', 'NV'], ['603', 'NH'], ['215', 'PA'], ['206', 'WA'], ['302', 'DE'],
    ['203', 'CT'], ['313', 'MI'], ['503', 'OR'], ['907', 'AK'], ['808', 'HI'], ['404', 'GA'], ['307', 'WY'],
  ];
  for (const [npa, st] of cases) t.equal(stateOfAreaCode(npa), st, `${npa} → ${st}`);
  for (const npa of ['800', '888', '900', '500', '604', '787']) t.equal(stateOfAreaCode(npa), undefined, `${npa} is no US state`);
  t.equal(ALL_PARTY_STATES.size, 14);
});

t.test('E.164 → country, state and consent rule', async (t) => {
  const cases: [string | undefined, string, string, string | undefined][] = [
    ['+14155550100', 'US-CA', 'all-party', 'US'],
    ['14155550100', 'unknown', 'unknown', undefined],
    ['+1 (415) 555-0100', 'US-CA', 'all-party', 'US'],
    ['+12145550100', 'US-TX', 'one-party', 'US'],
    ['+12125550100', 'US-NY', 'one-party', 'US'],
    ['+18605550100', 'US-CT', 'all-party', 'US'],
    ['+18005550100', 'US', 'unknown', 'US'],
    ['+16045550100', 'CA', 'one-party', 'CA'],
    ['+442079460100', 'GB', 'all-party', 'GB'],
    ['+4930123456', 'DE', 'all-party', 'DE'],
    ['+4722123456', 'NO', 'all-party', 'NO'],
    ['+81312345678', 'JP', 'unknown', 'JP'],
    ['', 'unknown', 'unknown', undefined],
    [undefined, 'unknown', 'unknown', undefined],
    ['anonymous', 'unknown', 'unknown', undefined],
    ['5550100', 'unknown', 'unknown', undefined],
  ];
  for (const [ani, key, rule, country] of cases) {
    const j = jurisdictionOf(ani);
    t.same([j.key, j.rule, j.country], [key, rule, country], `${String(ani)} → ${key} ${rule}`);
  }
  t.equal(jurisdictionOf('+4930123456').eu, true);
  t.equal(jurisdictionOf('+442079460100').eu, false, 'the UK is not in the EU/EEA set, but needs consent');
});

const rec = (o: Partial<TenantRecording>): TenantRecording => ({ posture: 'notify', overrides: {}, dir: 'd', retentionDays: 30, onDecline: 'continue', ...o });

t.test('posture resolution: overrides by specificity, then the legal floor', async (t) => {
  const ca = jurisdictionOf('+14155550100');
  const tx = jurisdictionOf('+12145550100');
  const de = jurisdictionOf('+4930123456');
  const unknown = jurisdictionOf('');
  t.same(resolvePosture(undefined, ca), { posture: 'off', configured: 'off', source: 'none', raised: false }, 'no recording block: off');
  t.same(resolvePosture(rec({ posture: 'notify' }), tx), { posture: 'notify', configured: 'notify', source: 'posture', raised: false }, 'TX under notify');
  t.same(resolvePosture(rec({ posture: 'notify' }), ca), { posture: 'consent', configured: 'notify', source: 'posture', raised: true }, 'CA: notify raised to consent');
  t.same(resolvePosture(rec({ posture: 'notify' }), unknown), { posture: 'consent', configured: 'notify', source: 'posture', raised: true }, 'unknown → strictest');
  t.equal(resolvePosture(rec({ posture: 'notify' }), de).posture, 'consent', 'EU caller needs consent');
  t.equal(resolvePosture(rec({ posture: 'off' }), ca).posture, 'off', 'off is never raised (nothing recorded)');
  t.same(resolvePosture(rec({ posture: 'notify', overrides: { 'US-TX': 'off', US: 'consent' } }), tx), { posture: 'off', configured: 'off', source: 'overrides.US-TX', raised: false }, 'state beats country');
  t.equal(resolvePosture(rec({ posture: 'notify', overrides: { US: 'consent' } }), tx).source, 'overrides.US', 'country beats posture');
  t.same(resolvePosture(rec({ posture: 'off', overrides: { EU: 'notify' } }), de), { posture: 'consent', configured: 'notify', source: 'overrides.EU', raised: true }, 'EU override, still floored');
  t.equal(resolvePosture(rec({ posture: 'consent', overrides: { unknown: 'off' } }), unknown).posture, 'off', 'unknown override');
  t.equal(resolvePosture(rec({ posture: 'consent' }), tx).posture, 'consent', 'a stricter posture than the floor is kept');
});

t.test('tenant recording config: defaults and errors naming file and field', async (t) => {
  const base = { id: 'a', name: 'A', dids: ['123'], greeting: 'hi' };
  const dir = parseTenants({ tenants: [{ ...base, recording: { posture: 'consent', overrides: { 'US-TX': 'notify', EU: 'consent' }, dir: '/tmp/r', retentionDays: 7, onDecline: 'human' } }] }, 'f.yaml');
  t.same(dir.tenants[0]!.recording, { posture: 'consent', overrides: { 'US-TX': 'notify', EU: 'consent' }, dir: '/tmp/r', retentionDays: 7, onDecline: 'human' });
  t.same(parseTenants({ tenants: [{ ...base, recording: 'notify' }] }, 'f.yaml').tenants[0]!.recording, { posture: 'notify', overrides: {}, dir: 'recordings', retentionDays: 30, onDecline: 'continue' });
  t.equal(parseTenants({ tenants: [base] }, 'f.yaml').tenants[0]!.recording, undefined);
  const p = parseTenants({ tenants: [{ ...base, prompts: { 'en-US': { disclosureAi: 'AI here.', consentAsk: 'OK?' } } }] }, 'f.yaml').tenants[0]!.prompts['en-US']!;
  t.equal(p.disclosureAi, 'AI here.');
  const cases: [unknown, string][] = [
    [{ posture: 'always' }, 'f.yaml: tenants[0].recording.posture: must be one of off, notify, consent, got "always"'],
    ['yes', 'f.yaml: tenants[0].recording: must be one of off, notify, consent, got "yes"'],
    [{ overrides: { California: 'consent' } }, 'f.yaml: tenants[0].recording.overrides.California: must be keyed by a jurisdiction: US-CA (state), US or GB (ISO country), EU or unknown'],
    [{ overrides: { 'US-CA': 'maybe' } }, 'f.yaml: tenants[0].recording.overrides.US-CA: must be one of off, notify, consent, got "maybe"'],
    [{ retentionDays: -1 }, 'f.yaml: tenants[0].recording.retentionDays: must be an integer 0-36500 (days; 0 = keep forever), got -1'],
    [{ onDecline: 'hangup' }, 'f.yaml: tenants[0].recording.onDecline: must be continue or human, got "hangup"'],
    [{ dir: '' }, 'f.yaml: tenants[0].recording.dir: must be a directory path, got ""'],
    [{ path: 'x' }, 'f.yaml: tenants[0].recording.path: unknown key (expected one of posture, overrides, dir, retentionDays, onDecline)'],
  ];
  for (const [recording, msg] of cases) {
    t.throws(() => parseTenants({ tenants: [{ ...base, recording }] }, 'f.yaml'), { name: 'ConfigError', message: msg }, msg);
  }
});
