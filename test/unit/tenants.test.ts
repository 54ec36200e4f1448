import t from 'tap';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTenants, parseTenants, normalizeNumber } from '../../src/tenants/index.ts';
import { ConfigError, DEFAULT_TENANTS_FILE } from '../../src/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'tenants-test-'));
let n = 0;
function file(text: string): string {
  const f = join(dir, `t${++n}.yaml`);
  writeFileSync(f, text);
  return f;
}

const GOOD = `
tenants:
  - id: acme
    name: Acme Fasteners
    dids: ["+18005550199", "18005550100"]
    greeting: Hello from Acme.
    tts: { voice: kal }
    maxCallSeconds: 60
  - id: northwind
    name: Northwind Industrial Supply
    default: true
    greeting: Thank you for calling Northwind.
`;

t.test('embedded demo tenant file loads', async (t) => {
  const d = loadTenants(DEFAULT_TENANTS_FILE);
  t.equal(d.size, 1);
  const def = d.defaultTenant!;
  t.equal(def.name, 'Northwind Industrial Supply');
  t.match(def.greeting, /^Thank you for calling Northwind Industrial Supply\. This is the automated ordering assistant\. How can I help you today\?$/);
  t.equal(def.language, 'en-US');
  t.equal(d.lookup('18005550100')?.tenant.id, 'northwind');
  t.equal(d.lookup('service')?.tenant.id, 'northwind', 'unknown number → default tenant');
});

t.test('lookup: Request-URI user first, To user second, default last', async (t) => {
  const d = loadTenants(file(GOOD));
  t.equal(d.lookup('18005550199')?.tenant.id, 'acme');
  t.equal(d.lookup('+1-800-555-0199')?.tenant.id, 'acme', 'visual separators and + ignored');
  t.same(d.lookup('999', '18005550100'), { tenant: d.tenants[0], matched: '18005550100' }, 'falls back to To user');
  t.same(d.lookup(undefined, '777'), { tenant: d.tenants[1], matched: null });
  const acme = d.tenants[0]!;
  t.equal(acme.voice, 'kal');
  t.equal(acme.maxCallSeconds, 60);
  t.equal(d.tenants[1]!.voice, 'slt', 'default voice');
  t.equal(normalizeNumber('+1 (800) 555-0100'), '18005550100');
});

t.test('no default tenant: unknown numbers find nothing', async (t) => {
  const d = parseTenants({ tenants: [{ id: 'a', name: 'A', dids: ['1'], greeting: 'hi' }] }, 'x.yaml');
  t.equal(d.lookup('2'), undefined);
  t.equal(d.lookup('1')?.tenant.id, 'a');
});

t.test('validation errors name the file and the field path', async (t) => {
  const base = { id: 'a', name: 'A', dids: ['123'], greeting: 'hi' };
  const cases: [unknown, string][] = [
    [null, 'f.yaml: must be a mapping with a "tenants" list'],
    [{ tenant: [] }, 'f.yaml: tenant: unknown key (expected "tenants")'],
    [{ tenants: {} }, 'f.yaml: tenants: must be a list of tenants, got a mapping'],
    [{ tenants: [] }, 'f.yaml: tenants: must list at least one tenant'],
    [{ tenants: ['x'] }, 'f.yaml: tenants[0]: must be a mapping, got "x"'],
    [{ tenants: [{ ...base, id: 'Bad Id' }] }, 'f.yaml: tenants[0].id: must be a short identifier (a-z, 0-9, -, _), got "Bad Id"'],
    [{ tenants: [base, { ...base, dids: ['9'] }] }, 'f.yaml: tenants[1].id: duplicate id "a" (also tenants[0])'],
    [{ tenants: [{ ...base, name: '' }] }, 'f.yaml: tenants[0].name: must be a non-empty string, got ""'],
    [{ tenants: [{ ...base, dids: ['123', '12-ab'] }] }, 'f.yaml: tenants[0].dids[1]: must be a string of digits, got "12-ab"'],
    [{ tenants: [{ ...base, dids: [18005550100] }] }, 'f.yaml: tenants[0].dids[0]: must be a string of digits, got the number 18005550100 (quote it: "18005550100")'],
    [{ tenants: [{ ...base, dids: '123' }] }, 'f.yaml: tenants[0].dids: must be a list of dialed numbers, got "123"'],
    [{ tenants: [{ ...base, dids: [] }] }, 'f.yaml: tenants[0].dids: must list at least one dialed number (or mark the tenant default: true)'],
    [{ tenants: [base, { ...base, id: 'b', dids: ['+123'] }] }, 'f.yaml: tenants[1].dids[0]: number 123 is already listed by tenants[0] (a)'],
    [{ tenants: [{ ...base, default: 'yes' }] }, 'f.yaml: tenants[0].default: must be true or false, got "yes"'],
    [{ tenants: [{ ...base, default: true }, { ...base, id: 'b', dids: ['4'], default: true }] }, 'f.yaml: tenants[1].default: only one tenant may be the default (tenants[0] already is)'],
    [{ tenants: [{ ...base, language: 'english' }] }, 'f.yaml: tenants[0].language: must be a language tag like en-US, got "english"'],
    [{ tenants: [{ ...base, greeting: undefined }] }, 'f.yaml: tenants[0].greeting: must be a non-empty string, got undefined'],
    [{ tenants: [{ ...base, tts: { voice: 'alice' } }] }, 'f.yaml: tenants[0].tts.voice: must be one of kal, kal16, slt, rms, awb, got "alice"'],
    [{ tenants: [{ ...base, tts: { speed: 2 } }] }, 'f.yaml: tenants[0].tts.speed: unknown key (expected voice)'],
    [{ tenants: [{ ...base, maxCallSeconds: -1 }] }, 'f.yaml: tenants[0].maxCallSeconds: must be an integer 0-604800 (seconds; 0 = no limit), got -1'],
    [{ tenants: [{ ...base, greetng: 'typo' }] }, 'f.yaml: tenants[0].greetng: unknown key (expected one of id, name, default, dids, language, greeting, tts, maxCallSeconds)'],
  ];
  for (const [doc, msg] of cases) {
    t.throws(() => parseTenants(doc, 'f.yaml'), { name: 'ConfigError', message: msg }, msg);
  }
});

t.test('file errors: missing file, bad YAML', async (t) => {
  const missing = join(dir, 'nope.yaml');
  t.throws(() => loadTenants(missing), { message: `${missing}: cannot read tenants file (ENOENT)` });
  const bad = file('tenants:\n  - id: a\n   name: b\n');
  try {
    loadTenants(bad);
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    t.match((e as Error).message, new RegExp(`^${bad.replace(/[.]/g, '\\.')}: invalid YAML: `));
  }
  const f = file(GOOD.replace('voice: kal', 'voice: bob'));
  t.throws(() => loadTenants(f), { message: `${f}: tenants[0].tts.voice: must be one of kal, kal16, slt, rms, awb, got "bob"` });
});
