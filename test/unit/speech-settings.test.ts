/**
 * Speech provider settings: the config's `stt`/`tts` blocks and STT_… and TTS_… variables, the
 * tenants' blocks over them, and the start-up check (a provider this build lacks, a key
 * variable that is not set) — every error names the file and the field.
 */
import t from 'tap';
import { ConfigError } from '../../src/config.ts';
import { parseTenants } from '../../src/tenants/index.ts';
import { checkSpeech, SpeechProviders, tenantSpeech } from '../../src/speech/providers.ts';
import { defaultSpeechSettings, SPEECH_DEFAULTS } from '../../src/speech/settings.ts';
import { registerTts, ttsProblem } from '../../src/tts/factory.ts';
import type { TtsProvider } from '../../src/tts/types.ts';
import type { SttProvider } from '../../src/stt/types.ts';
import { configScratch } from './config-helpers.ts';

const { file, load } = configScratch('speech-settings-');

// what src/tts/index.ts registers, without loading the native addon
const fake = (name: string): TtsProvider => ({ name, synthesize: async function* () {} });
registerTts('flite', { create: () => fake('flite'), voiceProblem: (v) => (['kal', 'slt'].includes(v) ? null : `must be a flite voice, got "${v}"`) });
registerTts('openai', { create: (s) => Object.assign(fake('openai'), { settings: s }) });

const errorOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'no error';
};

t.test('defaults: pocketsphinx and flite', async (t) => {
  const c = load();
  t.same(c.stt, { provider: 'pocketsphinx', timeoutMs: 3000 });
  t.same(c.tts, { provider: 'flite', firstAudioMs: 1500, timeoutMs: 15000 });
  t.same(defaultSpeechSettings(), { stt: { ...SPEECH_DEFAULTS.stt }, tts: { ...SPEECH_DEFAULTS.tts } });
});

t.test('config file blocks, then the environment', async (t) => {
  const f = file(`
stt: { provider: openai, baseUrl: "http://127.0.0.1:8000/v1/", model: whisper-large, apiKeyEnv: STT_KEY, timeoutMs: 2500 }
tts: { provider: openai, baseUrl: "https://speech.example.com/v1", model: tts-1, voice: nova, apiKeyEnv: TTS_KEY, firstAudioMs: 800, timeoutMs: 9000 }
`);
  const c = load({}, ['--config', f]);
  t.same(c.stt, { provider: 'openai', baseUrl: 'http://127.0.0.1:8000/v1', model: 'whisper-large', apiKeyEnv: 'STT_KEY', timeoutMs: 2500 });
  t.same(c.tts, { provider: 'openai', baseUrl: 'https://speech.example.com/v1', model: 'tts-1', voice: 'nova', apiKeyEnv: 'TTS_KEY', firstAudioMs: 800, timeoutMs: 9000 });
  const e = load({ STT_PROVIDER: 'pocketsphinx', TTS_VOICE: 'alloy', TTS_FIRST_AUDIO_MS: '1200', STT_TIMEOUT_MS: '4000' }, ['--config', f]);
  t.equal(e.stt.provider, 'pocketsphinx');
  t.equal(e.stt.timeoutMs, 4000);
  t.equal(e.tts.voice, 'alloy');
  t.equal(e.tts.firstAudioMs, 1200);
});

t.test('config errors name the file (or variable) and the field', async (t) => {
  const cases: Array<[string, string]> = [
    ['stt: { provider: whisper }', 'stt.provider: must be one of pocketsphinx, openai, got "whisper"'],
    ['tts: { provider: polly }', 'tts.provider: must be one of flite, espeak-ng, openai, got "polly"'],
    ['tts: { baseUrl: "ftp://x" }', 'tts.baseUrl: must be an http(s) URL, got "ftp://x"'],
    ['stt: { timeoutMs: 5 }', 'stt.timeoutMs: must be an integer 100-120000 (milliseconds), got 5'],
    ['tts: { firstAudioMs: fast }', 'tts.firstAudioMs: must be an integer 100-60000 (milliseconds), got "fast"'],
    ['tts: { speed: 2 }', 'tts.speed: unknown key (expected one of provider, baseUrl, model, voice, apiKeyEnv, firstAudioMs, timeoutMs)'],
    ['stt: { apiKey: sk-123 }', 'stt.apiKey: unknown key (expected one of provider, baseUrl, model, apiKeyEnv, timeoutMs)'],
    ['stt: { apiKeyEnv: "sk-proj-abcdefghijklmnop" }', 'stt.apiKeyEnv: must be the name of an environment variable that holds the key (the key itself never goes in a file), got a value that is not a variable name'],
    ['tts: openai', 'tts: must be a mapping, got "openai"'],
  ];
  for (const [yaml, msg] of cases) {
    const f = file(yaml);
    t.equal(errorOf(() => load({}, ['--config', f])), `${f}: ${msg}`, yaml);
  }
  t.equal(errorOf(() => load({ TTS_PROVIDER: 'azure' })), 'environment: TTS_PROVIDER: must be one of flite, espeak-ng, openai, got "azure"');
  t.equal(errorOf(() => load({ STT_TIMEOUT_MS: 'soon' })), 'environment: STT_TIMEOUT_MS: must be an integer 100-120000 (milliseconds), got "soon"');
});

const TENANTS = (extra: string): unknown => ({
  tenants: [
    { id: 'a', name: 'A', default: true, greeting: 'Hi.', tts: { voice: 'kal' } },
    { id: 'b', name: 'B', dids: ['18005550111'], greeting: 'Hola.', ...(JSON.parse(extra) as object) },
  ],
});

t.test('tenant blocks: fields over the defaults; a voice without a provider is flite', async (t) => {
  const d = parseTenants(TENANTS(JSON.stringify({
    stt: { provider: 'openai', model: 'whisper-es', apiKeyEnv: 'B_STT_KEY' },
    tts: { provider: 'openai', voice: 'nova', baseUrl: 'http://127.0.0.1:9/v1' },
  })), 't.yaml');
  const [a, b] = d.tenants;
  t.equal(a!.voice, 'kal');
  t.equal(a!.tts, undefined, 'a flite voice is the tenant voice, not a provider override');
  t.same(b!.stt, { provider: 'openai', model: 'whisper-es', apiKeyEnv: 'B_STT_KEY' });
  t.same(b!.tts, { provider: 'openai', voice: 'nova', baseUrl: 'http://127.0.0.1:9/v1' });
  t.equal(b!.voice, 'slt', 'the flite voice of the fallback stays the default');
  const defaults = { stt: { provider: 'openai' as const, baseUrl: 'http://stt.example/v1', model: 'whisper-1', timeoutMs: 2000 }, tts: { provider: 'flite' as const, firstAudioMs: 1500, timeoutMs: 15000 } };
  t.same(tenantSpeech(defaults, b!).stt, { provider: 'openai', baseUrl: 'http://stt.example/v1', model: 'whisper-es', apiKeyEnv: 'B_STT_KEY', timeoutMs: 2000 });
  t.same(tenantSpeech(defaults, a!).tts, defaults.tts);
});

t.test('tenant errors name the file and the field path', async (t) => {
  const cases: Array<[string, string]> = [
    ['{"tts":{"provider":"polly"}}', 't.yaml: tenants[1].tts.provider: must be one of flite, espeak-ng, openai, got "polly"'],
    ['{"tts":{"voice":"nova"}}', 't.yaml: tenants[1].tts.voice: must be one of kal, kal16, slt, rms, awb (flite voices; name tts.provider for another provider\'s voice), got "nova"'],
    ['{"stt":{"provider":"openai","timeoutMs":0}}', 't.yaml: tenants[1].stt.timeoutMs: must be an integer 100-120000 (milliseconds), got 0'],
    ['{"stt":{"voice":"x"}}', 't.yaml: tenants[1].stt.voice: unknown key (expected one of provider, baseUrl, model, apiKeyEnv, timeoutMs)'],
    ['{"stt":"openai"}', 't.yaml: tenants[1].stt: must be a mapping, got "openai"'],
  ];
  for (const [extra, msg] of cases) t.equal(errorOf(() => parseTenants(TENANTS(extra), 't.yaml')), msg, extra);
});

t.test('start-up check: provider in this build, voice, key variable set', async (t) => {
  const src = { config: '/etc/va.yaml', tenantsFile: '/etc/tenants.yaml' };
  const defaults = defaultSpeechSettings();
  const tenants = (extra: string) => parseTenants(TENANTS(extra), src.tenantsFile).tenants;
  t.equal(errorOf(() => checkSpeech(defaults, tenants('{}'), src, {})), 'no error', 'embedded defaults are fine');
  t.equal(
    errorOf(() => checkSpeech(defaults, tenants('{"tts":{"provider":"espeak-ng","voice":"es-419"}}'), src, {})),
    '/etc/tenants.yaml: tenants[1].tts.provider: text-to-speech provider "espeak-ng" is not available in this build (available: flite, openai)',
  );
  t.equal(
    errorOf(() => checkSpeech(defaults, tenants('{"stt":{"provider":"openai","apiKeyEnv":"B_STT_KEY"}}'), src, {})),
    '/etc/tenants.yaml: tenants[1].stt.apiKeyEnv: names the environment variable B_STT_KEY, which is not set (it must hold the speech-to-text API key)',
  );
  t.equal(errorOf(() => checkSpeech(defaults, tenants('{"stt":{"provider":"openai","apiKeyEnv":"B_STT_KEY"}}'), src, { B_STT_KEY: 'k' })), 'no error');
  const cloud = { ...defaults, tts: { ...defaults.tts, provider: 'openai' as const, apiKeyEnv: 'TTS_KEY' } };
  t.equal(errorOf(() => checkSpeech(cloud, tenants('{}'), src, {})),
    '/etc/va.yaml: tts.apiKeyEnv: names the environment variable TTS_KEY, which is not set (it must hold the text-to-speech API key)', 'a default names the config file');
  t.equal(errorOf(() => checkSpeech({ ...defaults, tts: { ...defaults.tts, voice: 'nova' } }, [], src, {})),
    '/etc/va.yaml: tts.voice: flite voices are chosen per tenant (tenants.yaml tts.voice); a default voice here is only for the espeak-ng and openai providers');
  // a provider registered later (the espeak-ng module) is accepted, and its voice check runs
  registerTts('espeak-ng', { create: () => fake('espeak-ng'), voiceProblem: (v) => (v === 'es-419' ? null : `unknown espeak-ng voice "${v}"`) });
  t.equal(ttsProblem({ provider: 'espeak-ng', voice: 'es-419' }), null);
  t.equal(errorOf(() => checkSpeech(defaults, tenants('{"tts":{"provider":"espeak-ng","voice":"xx"}}'), src, {})),
    '/etc/tenants.yaml: tenants[1].tts.voice: unknown espeak-ng voice "xx"');
});

t.test('providers per tenant: built once, cloud ones wrapped with the local fallback, keys from the named variable', async (t) => {
  const localStt: SttProvider = { name: 'pocketsphinx', createStream: () => { throw new Error('unused'); } };
  const localTts = fake('flite');
  const made: Array<Record<string, unknown>> = [];
  const sp = new SpeechProviders({
    defaults: defaultSpeechSettings(),
    local: { stt: localStt, tts: localTts },
    env: { B_KEY: 'sk-b', OPENAI_BASE_URL: 'http://env.example/v1' },
    createOpenAiStt: (s) => { made.push({ kind: 'stt', ...s }); return { name: 'openai', createStream: () => { throw new Error('unused'); } }; },
    createTts: (s) => { made.push({ kind: 'tts', ...s }); return fake(s.provider); },
  });
  const [a, b] = parseTenants(TENANTS(JSON.stringify({
    stt: { provider: 'openai', apiKeyEnv: 'B_KEY', model: 'whisper-es' },
    tts: { provider: 'openai', voice: 'nova', baseUrl: 'http://tts.example/v1', firstAudioMs: 900 },
  })), 't.yaml').tenants;
  const ca = sp.forCall(a!);
  t.equal(ca.stt, localStt);
  t.equal(ca.tts, localTts);
  t.equal(ca.voice, 'kal');
  t.equal(ca.fallback, null, 'local speech needs no fallback');
  const cb = sp.forCall(b!);
  const cb2 = sp.forCall(b!);
  t.equal(made.length, 2, 'cloud providers built once per tenant');
  t.same(made[0], { kind: 'stt', baseURL: 'http://env.example/v1', apiKey: 'sk-b', model: 'whisper-es', timeoutMs: 3000 });
  t.same(made[1], { kind: 'tts', provider: 'openai', voice: 'nova', baseURL: 'http://tts.example/v1', apiKey: 'none', firstAudioMs: 900, timeoutMs: 15000 });
  t.equal(cb.voice, 'nova');
  t.ok(cb.fallback, 'cloud speech is wrapped');
  t.not(cb.fallback, cb2.fallback, 'a fallback state per call');
  t.equal(cb.stt.name, 'openai');
  t.equal(cb.tts.name, 'openai');
});
