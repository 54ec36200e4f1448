/**
 * Cloud speech end to end: real SIP calls through the built-in edge to the server, whose
 * tenant "cloud" names `stt`/`tts` provider `openai` in tenants.yaml, pointed at an
 * OpenAI-compatible stub (test/helpers/speech-stub.ts), the key read from the variable
 * `apiKeyEnv` names; tenant "local" keeps the config's default (pocketsphinx + flite).
 *
 * 1. The caller's utterance reaches the STT stub as a WAV (the same audio the caller sent,
 *    through G.711), the stub's text drives the rules agent (an order-status lookup by the
 *    PO number only the stub's text carries), and what the caller hears is the TTS stub's
 *    PCM (a 1 kHz tone) — the agent's words are in the stub's speech requests.
 * 2. Mid-call, the STT stub answers 500 and the TTS stub hangs: the utterance is recognised
 *    locally from the same audio, the reply is spoken by flite within the first-audio
 *    deadline (no silence over 2 s at the caller), the rest of the call stays local (no more
 *    requests to the stub), and both fallbacks are counted on /metrics.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ROOT, startServer, type ServerHandle } from '../helpers/server.ts';
import { startTestRedis } from '../helpers/redis.ts';
import { startSpeechStub, type SpeechStub } from '../helpers/speech-stub.ts';
import { placeCall, type AgentSegment, type CallControl } from '../helpers/caller.ts';
import { blockToneShare } from '../helpers/audio.ts';
import { metric } from '../helpers/metrics.ts';
import { synthesize, ulawDecode, ulawEncode } from '../../src/media/index.ts';

t.setTimeout(240_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'speech-providers-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const DANA = '+14155550142';
/** First-audio deadline of the TTS in this suite, ms. */
const FIRST_AUDIO_MS = 800;

const stub: SpeechStub = await startSpeechStub();
t.teardown(() => stub.close());
const redis = await startTestRedis();
t.teardown(() => redis.stop());
// two tenants: "cloud" names its providers in tenants.yaml, "local" keeps the config's
// default (pocketsphinx + flite, set in the environment here)
const tenantsFile = path.join(tmp, 'tenants.yaml');
writeFileSync(tenantsFile, `
tenants:
  - id: cloud
    name: Northwind Industrial Supply
    dids: ["18005550100"]
    businessHoursTenant: northwind
    greeting: Thank you for calling Northwind Industrial Supply.
    actions: read_only
    stt: { provider: openai, baseUrl: "${stub.baseURL}", model: whisper-stub, apiKeyEnv: SPEECH_E2E_KEY, timeoutMs: 1500 }
    tts: { provider: openai, baseUrl: "${stub.baseURL}", model: tts-stub, voice: nova, apiKeyEnv: SPEECH_E2E_KEY, firstAudioMs: ${FIRST_AUDIO_MS} }
  - id: local
    name: Northwind Local
    default: true
    dids: ["18005550111"]
    businessHoursTenant: northwind
    greeting: Thank you for calling Northwind Industrial Supply.
`);
const s: ServerHandle = await startServer({
  TENANTS_FILE: tenantsFile,
  CRM_DB: path.join(tmp, 'crm.sqlite'), DATA_DIR: path.join(tmp, 'var'), REDIS_URL: redis.url,
  VOICE_AGENT_NOW: '2026-12-02T16:00:00Z', VOICE_MEDIA_RT_PRIORITY: '0',
  STT_PROVIDER: 'pocketsphinx', TTS_PROVIDER: 'flite',
  SPEECH_E2E_KEY: 'sk-e2e-speech',
}, { readyTimeoutMs: 60000 });
t.teardown(() => s.stop());

/** 8 kHz PCM of a sentence in a flite voice, and what the server receives of it (µ-law round trip). */
async function utterance(text: string): Promise<{ pcm: Int16Array; wire: Int16Array }> {
  const pcm = await synthesize(text, { voice: 'kal', sampleRate: 8000 });
  return { pcm, wire: ulawDecode(ulawEncode(pcm)) };
}

/** Best normalised cross-correlation of `needle` inside `hay` (1 = the same samples somewhere in it). */
function bestCorrelation(hay: Int16Array, needle: Int16Array): number {
  let nn = 0;
  for (const x of needle) nn += x * x;
  let best = 0;
  for (let lag = 0; lag + needle.length <= hay.length; lag += 1) {
    let dot = 0, hh = 0;
    for (let i = 0; i < needle.length; i += 2) {
      const h = hay[lag + i]!;
      dot += h * needle[i]!;
      hh += h * h;
    }
    const c = hh > 0 ? dot / Math.sqrt((hh * nn) / 2) : 0;
    if (c > best) best = c;
  }
  return best;
}

function wavPcm(wav: Buffer): { rate: number; pcm: Int16Array } {
  const data = wav.subarray(44);
  return { rate: wav.readUInt32LE(24), pcm: new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + (data.length & ~1))) };
}

/** Longest run of received packets quieter than the voiced level inside a segment, ms. */
function longestSilenceMs(seg: AgentSegment): number {
  let run = 0, worst = 0;
  for (let i = 0; i + 160 <= seg.pcm.length; i += 160) {
    let e = 0;
    for (let k = i; k < i + 160; k++) e += seg.pcm[k]! * seg.pcm[k]!;
    if (Math.sqrt(e / 160) < 200) worst = Math.max(worst, (run += 20));
    else run = 0;
  }
  return worst;
}

t.test('caller audio → STT stub, stub text → agent, TTS stub PCM → caller', async (t) => {
  stub.stt = { text: '' };
  stub.tts = { hz: 1000, pieces: 4, pieceDelayMs: 40, msPerChar: 25 };
  const askStatus = await utterance('Where is my order?');
  const givePo = await utterance('It is P O one two three four five.');
  const heard: AgentSegment[] = [];
  let sttBefore = 0;
  const r = await placeCall({
    port: s.sipPort, to: '18005550100', from: DANA, maxCallMs: 90_000,
    script: async (ctl: CallControl) => {
      const wait = () => ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 20000 });
      heard.push(await wait()); // greeting
      sttBefore = stub.transcriptions.length;
      stub.stt = { text: 'where is my order' };
      await ctl.say(askStatus.pcm);
      heard.push(await wait());
      stub.stt = { text: 'p o one two three four five' };
      await ctl.say(givePo.pcm);
      heard.push(await wait());
    },
  });
  t.equal(r.status, 200);
  t.notOk(r.scriptError, 'script ran');

  // the caller's audio reached the STT stub, as WAV, with the key from SPEECH_E2E_KEY
  const reqs = stub.transcriptions.slice(sttBefore);
  t.equal(reqs.length, 2, 'one transcription per caller utterance');
  t.equal(reqs[0]!.model, 'whisper-stub');
  t.equal(reqs[0]!.authorization, 'Bearer sk-e2e-speech');
  t.equal(reqs[0]!.wav.subarray(0, 4).toString(), 'RIFF');
  const w = wavPcm(reqs[0]!.wav);
  t.equal(w.rate, 8000);
  const dur = w.pcm.length / 8;
  t.ok(dur >= askStatus.pcm.length / 8 - 300 && dur <= askStatus.pcm.length / 8 + 2500, `utterance WAV ${Math.round(dur)} ms for ${Math.round(askStatus.pcm.length / 8)} ms of speech`);
  const corr = bestCorrelation(w.pcm, askStatus.wire.subarray(Math.round(askStatus.wire.length * 0.2), Math.round(askStatus.wire.length * 0.8)));
  t.ok(corr > 0.8, `the WAV carries the caller's own audio (correlation ${corr.toFixed(2)})`);

  // the stub's text drove the agent: the PO only the stub's transcript named was looked up and told
  const said = stub.speech.map((x) => x.body.input).join(' | ');
  t.match(said, /PO number/, `the agent asked for the PO number (${said})`);
  t.match(said, /shipped/i, 'and told the status of PO12345 from the CRM');
  t.match(s.log(), /caller said[^\n]*text="p o one two three four five"/, 'the transcript was the stub\'s text');
  t.ok(stub.speech.every((x) => x.body.model === 'tts-stub' && x.body.voice === 'nova' && x.body.response_format === 'pcm' && x.authorization === 'Bearer sk-e2e-speech'));

  // what the caller heard is the TTS stub's tone
  t.equal(heard.length, 3);
  for (const [i, seg] of heard.entries()) {
    t.notOk(seg.timedOut, `answer ${i} heard`);
    const share = blockToneShare(seg.pcm, 8000, 1000);
    t.ok(share > 0.7, `answer ${i}: ${Math.round(seg.pcm.length / 8)} ms, ${Math.round(share * 100)} % of it the stub's 1 kHz tone`);
  }
  t.match(s.log(), /conversation start[^\n]*stt=openai[^\n]*tts=openai/);
  t.notMatch(s.log(), /the rest of the call uses local speech/, 'no fallback');
});

t.test('a tenant on the default (local) speech never reaches the cloud stub', async (t) => {
  const n = { stt: stub.transcriptions.length, tts: stub.speech.length };
  const askStatus = await utterance('Where is my order?');
  const heard: AgentSegment[] = [];
  const r = await placeCall({
    port: s.sipPort, to: '18005550111', from: DANA, maxCallMs: 60_000,
    script: async (ctl: CallControl) => {
      heard.push(await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 20000 }));
      await ctl.say(askStatus.pcm);
      heard.push(await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 20000 }));
    },
  });
  t.equal(r.status, 200);
  t.ok(heard.every((h) => !h.timedOut && blockToneShare(h.pcm, 8000, 1000) < 0.2), 'greeting and reply in flite');
  t.same({ stt: stub.transcriptions.length, tts: stub.speech.length }, n, 'no request to the stub');
  t.match(s.log(), /tenant speech[^\n]*tenant=cloud[^\n]*stt=openai[^\n]*tts=openai/);
  t.notMatch(s.log(), /tenant speech[^\n]*tenant=local/);
});

t.test('mid-call failure: STT 500 and TTS hang → local speech for the rest of the call, no dead air, counted', async (t) => {
  stub.stt = { text: '' };
  stub.tts = { hz: 1000, pieces: 2, pieceDelayMs: 20 };
  const before = await (await fetch(`${s.opsUrl}/metrics`)).text();
  const sttFb0 = metric(before, 'voice_agent_speech_fallbacks_total', { kind: 'stt', provider: 'openai', reason: 'http_5xx' });
  const ttsFb0 = metric(before, 'voice_agent_speech_fallbacks_total', { kind: 'tts', provider: 'openai', reason: 'timeout' });
  const askStatus = await utterance('Where is my order?');
  const bye = await utterance('That is all, thank you, goodbye.');
  const heard: AgentSegment[] = [];
  let counts = { stt: 0, tts: 0 };
  const logFrom = s.log().length;
  const r = await placeCall({
    port: s.sipPort, to: '18005550100', from: DANA, maxCallMs: 90_000,
    script: async (ctl: CallControl) => {
      const wait = () => ctl.waitForAgent({ silenceMs: 1500, timeoutMs: 20000 });
      heard.push(await wait()); // greeting, from the stub
      stub.stt = { status: 500 };
      stub.tts = { hang: true };
      counts = { stt: stub.transcriptions.length, tts: stub.speech.length };
      await ctl.say(askStatus.pcm);
      heard.push(await wait());
      const after = { stt: stub.transcriptions.length, tts: stub.speech.length };
      counts = after;
      await ctl.say(bye.pcm);
      heard.push(await wait());
    },
  });
  t.equal(r.status, 200);
  t.notOk(r.scriptError);
  const log = s.log().slice(logFrom);
  t.ok(blockToneShare(heard[0]!.pcm, 8000, 1000) > 0.7, 'greeting from the TTS stub');

  // the failed utterance was recognised locally from the same audio, and answered
  t.match(log, /speech recognition provider failed; the rest of the call uses local speech[^\n]*reason=http_5xx[^\n]*tenant=cloud/, 'STT fallback logged with why');
  t.match(log, /speech synthesis provider failed; the rest of the call uses local speech[^\n]*reason=timeout/, 'TTS fallback logged with why');
  t.match(log, /caller said[^\n]*text="[^"]*order[^"]*"/, 'pocketsphinx recognised the utterance the stub refused');
  for (const l of log.split('\n').filter((x) => /msg="?(turn|caller said)/.test(x))) t.comment(l.replace(/^.*?msg=/, ''));
  const reply = heard[1]!;
  t.notOk(reply.timedOut, 'the caller heard a reply');
  t.ok(reply.gapMs !== undefined && reply.gapMs < 2000 + 700, `end of caller speech → reply audio ${Math.round(reply.gapMs ?? -1)} ms (700 ms endpointing + ${FIRST_AUDIO_MS} ms deadline + local speech)`);
  t.ok(blockToneShare(reply.pcm, 8000, 1000) < 0.2, 'the reply is flite, not the stub\'s tone');
  t.ok(longestSilenceMs(reply) < 2000, `no silence over 2 s inside the reply (${longestSilenceMs(reply)} ms)`);

  // the rest of the call: local, no more requests to the stub
  t.equal(stub.transcriptions.length, counts.stt, 'no STT request after the fallback');
  t.equal(stub.speech.length, counts.tts, 'no TTS request after the fallback');
  t.notOk(heard[2]!.timedOut, 'the goodbye turn was answered');
  t.ok(blockToneShare(heard[2]!.pcm, 8000, 1000) < 0.2, 'locally');

  const after = await (await fetch(`${s.opsUrl}/metrics`)).text();
  t.equal(metric(after, 'voice_agent_speech_fallbacks_total', { kind: 'stt', provider: 'openai', reason: 'http_5xx' }), sttFb0 + 1, 'STT fallback counted once');
  t.equal(metric(after, 'voice_agent_speech_fallbacks_total', { kind: 'tts', provider: 'openai', reason: 'timeout' }), ttsFb0 + 1, 'TTS fallback counted once');
});

t.test('a speech setting that cannot work stops start-up: exit 2, the file and the field named', async (t) => {
  const bad = path.join(tmp, 'bad-tenants.yaml');
  writeFileSync(bad, `
tenants:
  - id: cloud
    name: Cloud
    default: true
    greeting: Hello.
    tts: { provider: openai, apiKeyEnv: SPEECH_E2E_NOT_SET }
`);
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, SIP_PORT: '0', DRACHTIO_PORT: '0', OPS_PORT: '0', CONSOLE_PORT: '0', CDR_DB: 'off', TENANTS_FILE: bad, DATA_DIR: path.join(tmp, 'var-bad'), VOICE_MEDIA_RT_PRIORITY: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout!.on('data', (d) => { out += d; });
  p.stderr!.on('data', (d) => { out += d; });
  const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  t.equal(code, 2, 'exit code 2 (configuration error)');
  t.match(out, `config error: ${bad}: tenants[0].tts.apiKeyEnv: names the environment variable SPEECH_E2E_NOT_SET, which is not set (it must hold the text-to-speech API key)`);
});
