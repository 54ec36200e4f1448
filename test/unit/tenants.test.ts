import t from 'tap';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTenants, parseTenants, normalizeNumber, promptsFor, ACTION_PRESETS, PRESETS } from '../../src/tenants/index.ts';
import { tenantToolPolicy } from '../../src/agent/index.ts';
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
  t.equal(d.size, 3);
  const def = d.defaultTenant!;
  t.equal(def.name, 'Northwind Industrial Supply');
  t.match(def.greeting, /^Thank you for calling Northwind Industrial Supply\. This is the automated ordering assistant\. How can I help you today\?$/);
  t.equal(def.language, 'en-US');
  t.equal(d.lookup('18005550100')?.tenant.id, 'northwind');
  t.equal(d.lookup('service')?.tenant.id, 'northwind', 'unknown number → default tenant');
  t.same(def.actions, ['order_placement']);
  t.match(def.prompts['en-US'], { greeting: def.greeting, system: /Northwind Industrial Supply/, greetingKnown: /\{first_name\}/, filler: 'Let me check that for you.' });
  t.same(def.afterHours, { enabled: true });
  t.equal(def.businessHoursTenant, 'northwind');
  const ro = d.lookup('18005550111')!.tenant;
  t.equal(ro.id, 'northwind-status');
  t.same(ro.actions, ['read_only'], 'second demo tenant is read-only');
  t.equal(ro.businessHoursTenant, 'northwind');
  t.same(ro.llm, { enabled: true });
  t.same(ro.mcpServers, []);
});

t.test('agent fields: actions, prompts, llm, mcpServers, hours', async (t) => {
  const d = parseTenants({ tenants: [{
    id: 'a', name: 'A', dids: ['1'], language: 'en-US',
    actions: ['find_sku', 'order_status'],
    prompts: { 'en-US': { greeting: 'Hi   there.', system: 'Be brief.' }, 'es-US': { greeting: 'Hola.' } },
    llm: { baseUrl: 'http://127.0.0.1:8000/v1', model: 'small', apiKeyEnv: 'A_KEY', enabled: true },
    mcpServers: [{ name: 'erp', transport: 'http', url: 'http://127.0.0.1:9000/mcp' }, { name: 'wms', transport: 'stdio', command: 'wms-mcp', args: ['--stdio'] }],
    businessHoursTenant: 'pacific', afterHours: { enabled: false }, toolTimeoutMs: 2500,
  }] }, 'f.yaml');
  const a = d.tenants[0]!;
  t.equal(a.greeting, 'Hi there.', 'greeting taken from prompts');
  t.same(a.actions, ['find_sku', 'order_status']);
  t.same(a.prompts['es-US'], { greeting: 'Hola.', system: 'Be brief.' }, 'a key es-US leaves out comes from en-US');
  t.same(d.warnings, ['f.yaml: tenants[0].prompts.es-US: no system — the en-US text is used']);
  t.same(a.llm, { enabled: true, baseUrl: 'http://127.0.0.1:8000/v1', model: 'small', apiKeyEnv: 'A_KEY' });
  t.equal(a.mcpServers.length, 2);
  t.equal(a.businessHoursTenant, 'pacific');
  t.same(a.afterHours, { enabled: false });
  t.equal(a.toolTimeoutMs, 2500);
  const defaults = parseTenants({ tenants: [{ id: 'b', name: 'B', dids: ['2'], greeting: 'hi' }] }, 'f.yaml').tenants[0]!;
  t.same(defaults.actions, ['read_only'], 'read-only unless configured');
  t.same(defaults.prompts, { 'en-US': { greeting: 'hi' } });
});

t.test('turnTaking: per-tenant VAD tunables', async (t) => {
  const base = { id: 'a', name: 'A', dids: ['123'], greeting: 'hi' };
  t.same(parseTenants({ tenants: [base] }, 'f.yaml').tenants[0]!.turnTaking, {});
  t.same(parseTenants({ tenants: [{ ...base, turnTaking: { endpointSilenceMs: 900, minInterruptionMs: 400 } }] }, 'f.yaml').tenants[0]!.turnTaking, { endpointSilenceMs: 900, minInterruptionMs: 400 });
});

t.test('noInput: dead-air reprompts, defaults and overrides', async (t) => {
  const base = { id: 'a', name: 'A', dids: ['123'], greeting: 'hi' };
  t.same(parseTenants({ tenants: [base] }, 'f.yaml').tenants[0]!.noInput, { timeoutMs: 8000, reprompts: 2 });
  t.same(parseTenants({ tenants: [{ ...base, noInput: { timeoutMs: 0 } }] }, 'f.yaml').tenants[0]!.noInput, { timeoutMs: 0, reprompts: 2 }, '0 = off');
  const tn = parseTenants({ tenants: [{ ...base, noInput: { timeoutMs: 5000, reprompts: 1 }, prompts: { 'en-US': { noInput: 'Pardon?', noInputGoodbye: 'Bye now.' } } }] }, 'f.yaml').tenants[0]!;
  t.same(tn.noInput, { timeoutMs: 5000, reprompts: 1 });
  t.match(tn.prompts['en-US'], { noInput: 'Pardon?', noInputGoodbye: 'Bye now.' });
});

t.test('escalation: defaults and overrides', async (t) => {
  const base = { id: 'a', name: 'A', dids: ['123'], greeting: 'hi' };
  const d = parseTenants({ tenants: [base] }, 'f.yaml').tenants[0]!;
  t.same(d.escalation, { mode: 'warm', triggers: { explicit: true, routing: true, dtmfZero: true, repetition: 3, frustration: true, complexPart: true, alwaysHuman: ['price_negotiation', 'complaint', 'financial_dispute'], llmTool: true } });
  const o = parseTenants({ tenants: [{ ...base, escalation: { mode: 'blind', repUri: 'sip:{extension}@pbx.example.com;transport=tcp', ringSeconds: 15, triggers: { frustration: false, repetition: 0, alwaysHuman: ['complaint'] } } }] }, 'f.yaml').tenants[0]!;
  t.same(o.escalation, { mode: 'blind', repUri: 'sip:{extension}@pbx.example.com;transport=tcp', ringSeconds: 15, triggers: { explicit: true, routing: true, dtmfZero: true, repetition: 0, frustration: false, complexPart: true, alwaysHuman: ['complaint'], llmTool: true } });
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

t.test('one tool policy: wildcard action rules, MCP env/cwd/headers, promptsFor', async (t) => {
  process.env.TENANT_TEST_MCP_TOKEN = 's3cret';
  const a = parseTenants({ tenants: [{
    id: 'a', name: 'A', dids: ['1'], greeting: 'Hi.', language: 'en-US',
    actions: ['read_only', 'erp__*', 'crm__order_status', '*'],
    prompts: { 'es-US': { greeting: 'Hola.', filler: 'Un momento.' } },
    mcpServers: [
      { name: 'erp', transport: 'http', url: 'http://127.0.0.1:9000/mcp', headers: { Authorization: 'Bearer ${TENANT_TEST_MCP_TOKEN}', 'X-Tenant': 'a' } },
      { name: 'wms', transport: 'stdio', command: 'wms-mcp', args: ['--stdio'], env: { WMS_SITE: 'OAK', PORT: 7 }, cwd: '/srv/wms' },
    ],
  }] }, 'f.yaml').tenants[0]!;
  delete process.env.TENANT_TEST_MCP_TOKEN;
  t.same(a.actions, ['read_only', 'erp__*', 'crm__order_status', '*'], 'wildcards the gateway supports are accepted');
  t.same(a.mcpServers[0], { name: 'erp', transport: 'http', url: 'http://127.0.0.1:9000/mcp', headers: { Authorization: 'Bearer s3cret', 'X-Tenant': 'a' } }, 'header values resolve ${VAR}');
  t.same(a.mcpServers[1], { name: 'wms', transport: 'stdio', command: 'wms-mcp', args: ['--stdio'], env: { WMS_SITE: 'OAK', PORT: '7' }, cwd: '/srv/wms' });
  const pol = tenantToolPolicy(a);
  t.same(pol.mcpServers, a.mcpServers, 'the gateway gets the same server configs the YAML gave');
  t.equal(promptsFor(a, 'es-US').greeting, 'Hola.');
  t.equal(promptsFor(a, 'fr-CA').greeting, 'Hi.', 'unknown language falls back to the tenant language');
  t.equal(promptsFor(a).greeting, 'Hi.');
  t.equal(promptsFor({ prompts: {}, language: 'en-US', greeting: 'Only this.' }, 'en-US').greeting, 'Only this.', 'no prompt set: the greeting');
  t.same([...ACTION_PRESETS], Object.keys(PRESETS), 'one preset table');
});

t.test('validation errors name the file and the field path', async (t) => {
  const base = { id: 'a', name: 'A', dids: ['123'], greeting: 'hi' };
  const cases: [unknown, string | RegExp][] = [
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
    [{ tenants: [{ ...base, tts: { voice: 'alice' } }] }, 'f.yaml: tenants[0].tts.voice: must be one of kal, kal16, slt, rms, awb (flite voices; name tts.provider for another provider\'s voice), got "alice"'],
    [{ tenants: [{ ...base, tts: { speed: 2 } }] }, 'f.yaml: tenants[0].tts.speed: unknown key (expected one of provider, baseUrl, model, voice, apiKeyEnv, firstAudioMs, timeoutMs)'],
    [{ tenants: [{ ...base, maxCallSeconds: -1 }] }, 'f.yaml: tenants[0].maxCallSeconds: must be an integer 0-604800 (seconds; 0 = no limit), got -1'],
    [{ tenants: [{ ...base, greetng: 'typo' }] }, 'f.yaml: tenants[0].greetng: unknown key (expected one of id, name, default, dids, language, greeting, tts, stt, maxCallSeconds, actions, prompts, llm, mcpServers, businessHoursTenant, afterHours, toolTimeoutMs, escalation, turnTaking, noInput, cdr, recording, voices)'],
    [{ tenants: [{ ...base, actions: 42 }] }, 'f.yaml: tenants[0].actions: must be read_only, order_placement or a list of tool names, got 42'],
    [{ tenants: [{ ...base, actions: ['find_sku', 'drop table'] }] }, 'f.yaml: tenants[0].actions[1]: must be read_only, order_placement, a tool name, <server>__* or *, got "drop table"'],
    [{ tenants: [{ ...base, actions: ['crm__*x'] }] }, 'f.yaml: tenants[0].actions[0]: must be read_only, order_placement, a tool name, <server>__* or *, got "crm__*x"'],
    [{ tenants: [{ ...base, mcpServers: [{ name: 'x', transport: 'stdio', command: 'c', env: { 'BAD NAME': 'v' } }] }] }, 'f.yaml: tenants[0].mcpServers[0].env.BAD NAME: must be an environment variable name'],
    [{ tenants: [{ ...base, mcpServers: [{ name: 'x', transport: 'http', url: 'http://h/mcp', headers: { Authorization: 'Bearer ${NO_SUCH_VAR_FOR_TEST}' } }] }] }, 'f.yaml: tenants[0].mcpServers[0].headers.Authorization: names the environment variable NO_SUCH_VAR_FOR_TEST, which is not set'],
    [{ tenants: [{ ...base, mcpServers: [{ name: 'x', transport: 'http', url: 'http://h/mcp', headers: ['a'] }] }] }, 'f.yaml: tenants[0].mcpServers[0].headers: must be a mapping of names to strings, got a list'],
    [{ tenants: [{ ...base, prompts: { 'en-US': { sytem: 'x' } } }] }, 'f.yaml: tenants[0].prompts.en-US.sytem: unknown key (expected one of system, greeting, greetingKnown, afterHours, filler, handshake, transferFailed, noInput, noInputGoodbye, drainGoodbye, disclosureAi, disclosureRecorded, consentAsk, consentThanks, consentDeclined, languageOffer, keypadNotice, keypadMenu, keypadPo, keypadPoNotFound, keypadStatus, keypadShipped, keypadEta, keypadRecord, keypadRecorded, keypadNoMessage, keypadInvalid, keypadMore)'],
    [{ tenants: [{ ...base, prompts: { english: { greeting: 'x' } } }] }, 'f.yaml: tenants[0].prompts.english: must be keyed by a language tag like en-US'],
    [{ tenants: [{ ...base, prompts: { 'en-US': { filler: '' } } }] }, 'f.yaml: tenants[0].prompts.en-US.filler: must be a non-empty string, got ""'],
    [{ tenants: [{ ...base, llm: { baseUrl: 'ftp://x' } }] }, 'f.yaml: tenants[0].llm.baseUrl: must be an http(s) URL, got "ftp://x"'],
    [{ tenants: [{ ...base, llm: { apiKey: 'sk-123' } }] }, 'f.yaml: tenants[0].llm.apiKey: unknown key (expected one of enabled, baseUrl, model, apiKeyEnv)'],
    [{ tenants: [{ ...base, mcpServers: [{ name: 'x', transport: 'ws', url: 'ws://x' }] }] }, 'f.yaml: tenants[0].mcpServers[0].transport: must be stdio or http, got "ws"'],
    [{ tenants: [{ ...base, mcpServers: [{ name: 'x', transport: 'stdio' }] }] }, 'f.yaml: tenants[0].mcpServers[0].command: must be a non-empty string, got undefined'],
    [{ tenants: [{ ...base, afterHours: { enabled: 'no' } }] }, 'f.yaml: tenants[0].afterHours.enabled: must be true or false, got "no"'],
    [{ tenants: [{ ...base, toolTimeoutMs: 5 }] }, 'f.yaml: tenants[0].toolTimeoutMs: must be an integer 50-120000 (milliseconds), got 5'],
    [{ tenants: [{ ...base, turnTaking: { endpointSilence: 900 } }] }, /^f\.yaml: tenants\[0\]\.turnTaking\.endpointSilence: unknown key \(expected one of activationThreshold, /],
    [{ tenants: [{ ...base, turnTaking: { endpointSilenceMs: 'long' } }] }, 'f.yaml: tenants[0].turnTaking.endpointSilenceMs: must be a number, got "long"'],
    [{ tenants: [{ ...base, turnTaking: { endpointSilenceMs: 5 } }] }, 'f.yaml: tenants[0].turnTaking.endpointSilenceMs: endpointSilenceMs must be in [32, 10000]'],
    [{ tenants: [{ ...base, noInput: { timeoutMs: 500 } }] }, 'f.yaml: tenants[0].noInput.timeoutMs: must be 0 (off) or an integer 2000-120000 (milliseconds), got 500'],
    [{ tenants: [{ ...base, noInput: { reprompts: -1 } }] }, 'f.yaml: tenants[0].noInput.reprompts: must be an integer 0-10, got -1'],
    [{ tenants: [{ ...base, noInput: { timeout: 8000 } }] }, 'f.yaml: tenants[0].noInput.timeout: unknown key (expected timeoutMs, reprompts)'],
    [{ tenants: [{ ...base, escalation: { mode: 'cold' } }] }, 'f.yaml: tenants[0].escalation.mode: must be warm or blind, got "cold"'],
    [{ tenants: [{ ...base, escalation: { repUri: 'sip:rep@pbx' } }] }, 'f.yaml: tenants[0].escalation.repUri: must be a SIP URI template containing {extension}, got "sip:rep@pbx"'],
    [{ tenants: [{ ...base, escalation: { ringSeconds: 0 } }] }, 'f.yaml: tenants[0].escalation.ringSeconds: must be an integer 1-300 (seconds), got 0'],
    [{ tenants: [{ ...base, escalation: { triggers: { swearing: true } } }] }, 'f.yaml: tenants[0].escalation.triggers.swearing: unknown trigger (expected one of explicit, routing, dtmfZero, repetition, frustration, complexPart, alwaysHuman, llmTool)'],
    [{ tenants: [{ ...base, escalation: { triggers: { alwaysHuman: ['complaint', 'weather'] } } }] }, 'f.yaml: tenants[0].escalation.triggers.alwaysHuman[1]: must be one of price_negotiation, complaint, financial_dispute, got "weather"'],
    [{ tenants: [{ ...base, escalation: { triggers: { repetition: 'often' } } }] }, 'f.yaml: tenants[0].escalation.triggers.repetition: must be an integer 0-10 (0 = off), got "often"'],
  ];
  for (const [doc, msg] of cases) {
    t.throws(() => parseTenants(doc, 'f.yaml'), { name: 'ConfigError', message: msg }, String(msg));
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
  t.throws(() => loadTenants(f), { message: `${f}: tenants[0].tts.voice: must be one of kal, kal16, slt, rms, awb (flite voices; name tts.provider for another provider's voice), got "bob"` });
});
