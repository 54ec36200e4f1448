// In-band DTMF: the native Goertzel detector (native/dtmf_inband.cc) on generated key
// presses through G.711 (Q.24-style acceptance: levels, twist, frequency error, durations,
// pauses, dropouts, noise), on the real-audio corpora (speech in four voices, clean and
// noisy; noise, tones, hold music; backchannels; a PO number read aloud) — no false digits —
// and inside media sessions that negotiated no telephone-event (PCMU, PCMA, Opus): the
// same 'dtmfStart'/'dtmf' events as RFC 4733 digits. Port range for this file: 21900-21999.
import t from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, type DtmfEvent, type MediaSession } from '../../src/media/index.ts';
import { native } from '../../src/media/native.ts';
import { buildCorpus } from '../audio/corpus.ts';
import { dtmfTones, mixInto, dbm0Amplitude, type DtmfToneOptions } from '../helpers/dtmf-tones.ts';
import { fliteSay } from '../helpers/audio.ts';

setLogLevel('silent');
t.setTimeout(240_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** through a µ-law phone line */
const line = (pcm: Int16Array): Int16Array => native.ulawDecode(native.ulawEncode(pcm));
const keys = (pcm: Int16Array): string => native.detectDtmfInband(pcm).filter((e) => e.kind === 'end').map((e) => e.digit).join('');
const tones = (k: string, o: DtmfToneOptions = {}): Int16Array => line(dtmfTones(k, o));
/** deterministic white noise */
function noise(n: number, rms: number, seed = 1): Int16Array {
  let x = seed;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = Math.round(((x / 2 ** 32) * 2 - 1) * rms * Math.sqrt(3));
  }
  return out;
}

t.test('detector: every key, once per press, with its duration', async (t) => {
  const all = '123A456B789C*0#D';
  t.equal(keys(tones(all)), all, 'all 16 keys (100 ms tone, 100 ms pause)');
  const ev = native.detectDtmfInband(tones('5', { toneMs: 250, leadMs: 100 }));
  t.same(ev.map((e) => e.kind), ['start', 'end'], 'one start, one end');
  t.ok(Math.abs(ev[1]!.durationMs! - 250) <= 15, `duration ${ev[1]!.durationMs} ms for a 250 ms tone`);
  t.ok(ev[0]!.atMs - 100 <= 45, `start reported ${ev[0]!.atMs - 100} ms into the tone`);
  const held = native.detectDtmfInband(tones('#', { toneMs: 3000 }));
  t.equal(held.filter((e) => e.kind === 'end').length, 1, 'a key held 3 s is one digit');
  t.ok(Math.abs(held.at(-1)!.durationMs! - 3000) <= 15, `held duration ${held.at(-1)!.durationMs} ms`);
});

t.test('detector: Q.24-style acceptance', async (t) => {
  const k = '1593#0';
  t.equal(keys(tones(k, { toneMs: 40, gapMs: 40 })), k, '40 ms tones with 40 ms pauses: accepted');
  t.equal(keys(tones(k, { toneMs: 24, gapMs: 60 })), '', '24 ms tones: rejected');
  t.equal(keys(tones(k, { toneMs: 20, gapMs: 60 })), '', '20 ms tones: rejected');
  t.equal(keys(tones(k, { lowDbm0: -28, twistDb: 0 })), k, '-28 dBm0 per tone: accepted');
  t.equal(keys(tones(k, { lowDbm0: -38, twistDb: 0 })), '', '-38 dBm0 per tone: rejected');
  t.equal(keys(tones(k, { lowDbm0: -4, twistDb: 1 })), k, 'loud (-4 / -3 dBm0): accepted');
  t.equal(keys(tones(k, { twistDb: 7.5 })), k, 'high tone 7.5 dB above the low: accepted');
  t.equal(keys(tones(k, { twistDb: -5.5 })), k, 'low tone 5.5 dB above the high: accepted');
  t.equal(keys(tones(k, { twistDb: 11 })), '', 'high tone 11 dB above the low: rejected');
  t.equal(keys(tones(k, { twistDb: -9 })), '', 'low tone 9 dB above the high: rejected');
  t.equal(keys(tones(k, { freqError: 0.015 })), k, '+1.5 % frequency error: accepted');
  t.equal(keys(tones(k, { freqError: -0.015 })), k, '-1.5 % frequency error: accepted');
  t.equal(keys(tones(k, { freqError: 0.035 })), '', '+3.5 %: rejected');
  t.equal(keys(tones(k, { freqError: -0.035 })), '', '-3.5 %: rejected');
});

t.test('detector: pauses, dropouts, noise, speech around the keys', async (t) => {
  t.equal(keys(tones('5555', { toneMs: 60, gapMs: 40 })), '5555', 'the same key after a 40 ms pause: two presses');
  const drop = tones('7', { toneMs: 300 });
  drop.fill(0, 1200, 1280); // 10 ms gone in the middle (a lost packet's concealment fading out)
  t.equal(keys(drop), '7', 'a 10 ms dropout does not split a key');
  const noisy = mixInto(tones('2580', { leadMs: 200, lowDbm0: -12 }), noise(8000 * 2, dbm0Amplitude(-32)));
  t.equal(keys(noisy), '2580', 'white noise 20 dB under the tones');
  const speech = line(fliteSay('My account number is', 'slt'));
  const both = new Int16Array(speech.length + 8000 * 2);
  both.set(speech);
  mixInto(both, tones('369'), speech.length + 2000);
  t.equal(keys(both), '369', 'keys right after speech');
  t.equal(keys(speech), '', 'the speech alone: nothing');
});

t.test('detector: no false digits on the speech, noise and music corpora', async (t) => {
  const items = buildCorpus();
  t.ok(items.length >= 100, `${items.length} corpus items`);
  let seconds = 0;
  const falses: string[] = [];
  for (const it of items) {
    const b = await import('node:fs').then((fs) => fs.readFileSync(it.file));
    const pcm16 = new Int16Array(b.buffer, b.byteOffset, b.length >> 1);
    const pcm = native.resample(pcm16, 16000, 8000);
    seconds += pcm.length / 8000;
    const k = keys(pcm);
    if (k) falses.push(`${it.name} (${it.condition}): ${k}`);
  }
  t.same(falses, [], `no digits in ${Math.round(seconds)} s of corpus audio (${items.map((i) => i.kind).filter((v, i, a) => a.indexOf(v) === i).join(', ')})`);
});

// ---- in media sessions

const engine = MediaEngine.create({ portMin: 21900, portMax: 21999 });
t.teardown(() => engine.close());

interface Heard { starts: string[]; ends: DtmfEvent[] }
function listen(s: MediaSession): Heard {
  const h: Heard = { starts: [], ends: [] };
  s.on('dtmfStart', (e) => h.starts.push(e.digit));
  s.on('dtmf', (e) => h.ends.push(e));
  return h;
}
/** A second session plays `pcm` into `rx` with `codec` (paced by the media thread, encoded natively). */
async function send(rx: MediaSession, codec: 'PCMU' | 'PCMA' | 'opus', pcm: Int16Array): Promise<void> {
  const pt = codec === 'PCMU' ? 0 : codec === 'PCMA' ? 8 : 111;
  const tx = engine.createSession({ codec, payloadType: pt, remote: { address: '127.0.0.1', port: rx.localPort } });
  const done = new Promise<void>((r) => tx.once('playoutDone', () => r()));
  tx.play(pcm);
  await done;
  await sleep(300); // jitter buffer + the last key's end
  tx.close();
}

for (const codec of ['PCMU', 'PCMA', 'opus'] as const) {
  t.test(`session without telephone-event (${codec}): tones become dtmf events`, async (t) => {
    const pt = codec === 'PCMU' ? 0 : codec === 'PCMA' ? 8 : 111;
    const rx = engine.createSession({ codec, payloadType: pt, ...(codec === 'opus' ? { deliverRate: 16000 as const } : {}) });
    const h = listen(rx);
    await send(rx, codec, dtmfTones('4096*#', { leadMs: 200, toneMs: 100, gapMs: 80 }));
    t.same(h.starts, ['4', '0', '9', '6', '*', '#'], 'dtmfStart per key');
    t.same(h.ends.map((e) => e.digit), ['4', '0', '9', '6', '*', '#'], 'dtmf per key');
    for (const e of h.ends) t.ok(e.durationMs >= 80 && e.durationMs <= 125, `${e.digit}: ${e.durationMs} ms (100 ms tone)`);
    const st = rx.stats();
    t.equal(st.inbandDtmf, true, 'stats say the in-band detector runs');
    t.equal(st.dtmfIn, 6, 'counted as received digits');
    rx.close();
  });
}

t.test('with telephone-event negotiated, or inbandDtmf off, tones stay audio', async (t) => {
  const te = engine.createSession({ codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: 101 });
  const off = engine.createSession({ codec: 'PCMU', payloadType: 0, inbandDtmf: false });
  const h1 = listen(te);
  const h2 = listen(off);
  await Promise.all([send(te, 'PCMU', dtmfTones('123', { leadMs: 100 })), send(off, 'PCMU', dtmfTones('123', { leadMs: 100 }))]);
  t.same(h1.ends, [], 'telephone-event session: no in-band digits');
  t.same(h2.ends, [], 'inbandDtmf: false: no digits');
  t.equal(te.stats().inbandDtmf, false);
  t.equal(off.stats().inbandDtmf, false);
  te.close();
  off.close();
});

t.test('a re-INVITE that adds telephone-event stops the detector', async (t) => {
  const rx = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  const h = listen(rx);
  await send(rx, 'PCMU', dtmfTones('8', { leadMs: 100 }));
  t.same(h.ends.map((e) => e.digit), ['8'], 'detected before');
  rx.setTelephoneEventPayloadType(101);
  await send(rx, 'PCMU', dtmfTones('9', { leadMs: 100 }));
  t.same(h.ends.map((e) => e.digit), ['8'], 'not after');
  t.equal(rx.stats().inbandDtmf, false);
  rx.close();
});
