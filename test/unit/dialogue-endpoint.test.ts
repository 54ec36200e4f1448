/**
 * Energy fallback endpointing: 20 ms frames in (tone = speech, low noise = silence),
 * speechStart / speechEnd (with the utterance) / bargeIn out.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import { EnergyEndpointer, createEndpointer, VadEndpointer } from '../../src/dialogue/index.ts';

function tone(ms: number, amp = 6000): Int16Array {
  const n = ms * 8;
  const a = new Int16Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.round(amp * Math.sin((2 * Math.PI * 300 * i) / 8000));
  return a;
}
function noise(ms: number, amp = 60): Int16Array {
  const n = ms * 8;
  const a = new Int16Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    a[i] = Math.round(((x / 0x7fffffff) * 2 - 1) * amp);
  }
  return a;
}

function events(ep: EnergyEndpointer): string[] {
  const out: string[] = [];
  ep.on('speechStart', () => out.push('start'));
  ep.on('speechEnd', (e) => out.push(`end:${Math.round(e.audio.length / 8)}ms:${e.voicedMs}`));
  ep.on('bargeIn', () => out.push('bargeIn'));
  return out;
}

t.test('a turn: start after minSpeechMs, end after the endpointing silence, utterance trimmed', async (t) => {
  const ep = new EnergyEndpointer(null);
  const ev = events(ep);
  ep.push(noise(500));
  ep.push(tone(100));
  t.same(ev, [], 'too short for a turn yet');
  ep.push(tone(500));
  t.same(ev, ['start']);
  ep.push(noise(680));
  t.same(ev, ['start'], 'still inside the endpointing silence');
  ep.push(noise(40));
  t.equal(ev.length, 2);
  const [, end] = ev;
  const [, ms, voiced] = end!.split(':');
  t.equal(Number(voiced!), 600);
  t.ok(Number(ms!.replace('ms', '')) >= 600 && Number(ms!.replace('ms', '')) <= 900, `utterance ${ms} keeps pre-roll, drops the silence`);
});

t.test('a click does not make a turn; digits pending waits longer', async (t) => {
  const ep = new EnergyEndpointer(null);
  const ev = events(ep);
  ep.push(noise(200));
  ep.push(tone(60));
  ep.push(noise(300));
  t.same(ev, []);
  ep.setDigitsPending(true);
  t.equal(ep.endpointSilenceMs, 1500);
  ep.push(tone(400));
  ep.push(noise(1000));
  t.same(ev, ['start'], 'a pause between digits does not end the turn');
  ep.push(noise(600));
  t.equal(ev.length, 2);
  t.equal(ep.endpointSilenceMs, 700, 'back to normal after the turn');
});

t.test('barge-in only while the agent speaks, after minInterruptionMs', async (t) => {
  const ep = new EnergyEndpointer(null);
  const ev = events(ep);
  ep.push(noise(200));
  ep.setAgentSpeaking(true);
  ep.push(tone(200));
  t.same(ev, ['start']);
  ep.push(tone(120));
  t.same(ev, ['start', 'bargeIn']);
  ep.push(tone(400));
  t.same(ev, ['start', 'bargeIn'], 'once per turn');
});

t.test('odd-sized pushes are framed; the session\'s audio events feed it', async (t) => {
  const media = new EventEmitter();
  const ep = createEndpointer(media);
  t.ok(ep instanceof EnergyEndpointer, 'no VAD on the session → energy fallback');
  const ev = events(ep as EnergyEndpointer);
  const all = new Int16Array([...noise(300), ...tone(400), ...noise(800)]);
  for (let i = 0; i < all.length; i += 333) media.emit('audio', all.subarray(i, i + 333));
  t.same(ev.map((e) => e.split(':')[0]), ['start', 'end']);
  ep.close();
  t.equal(media.listenerCount('audio'), 0);
});

t.test('a session with VAD gets the VAD endpointer', async (t) => {
  const media = Object.assign(new EventEmitter(), { vad: true, turnTunables: { endpointSilenceMs: 640, digitsEndpointSilenceMs: 1500 }, setDigitsPending: (on: boolean) => calls.push(on) });
  const calls: boolean[] = [];
  const ep = createEndpointer(media);
  t.ok(ep instanceof VadEndpointer);
  t.equal(ep.nativeBargeIn, true);
  t.equal(ep.endpointSilenceMs, 640);
  ep.setDigitsPending(true);
  t.same(calls, [true]);
  t.equal(ep.endpointSilenceMs, 1500);
  const got: string[] = [];
  ep.on('speechEnd', (e) => got.push(`end ${e.audio.length}`));
  ep.on('bargeIn', () => got.push('bargeIn'));
  media.emit('bargeIn', { voicedMs: 300 });
  media.emit('speechEnd', { audio: new Int16Array(800), voicedMs: 500 });
  t.same(got, ['bargeIn', 'end 800']);
  t.equal(ep.endpointSilenceMs, 640);
  ep.close();
  t.equal(media.listenerCount('speechEnd'), 0);
});

t.test('VAD endpointer adds pre-roll from the audio stream before the utterance', async (t) => {
  const media = Object.assign(new EventEmitter(), { vad: true, turnTunables: null });
  const ep = new VadEndpointer(media, { extraPreRollMs: 100 });
  const stream = new Int16Array([...noise(500, 300), ...tone(400), ...noise(300, 300)]);
  for (let i = 0; i < stream.length; i += 320) media.emit('audio', stream.subarray(i, i + 320));
  const utt = stream.slice(500 * 8 - 64 * 8, 900 * 8 + 32 * 8); // what the VAD cut: 64 ms pre-roll
  let got: Int16Array | undefined;
  ep.on('speechEnd', (e) => (got = e.audio));
  media.emit('speechEnd', { audio: utt, voicedMs: 400 });
  t.equal(got!.length, utt.length + 800, '100 ms added');
  t.same(Array.from(got!.subarray(0, 800 + utt.length)), Array.from(stream.subarray(500 * 8 - 64 * 8 - 800, 900 * 8 + 32 * 8)), 'exactly the audio before it');
  const foreign = tone(300, 1234);
  media.emit('speechEnd', { audio: foreign, voicedMs: 300 });
  t.equal(got, foreign, 'no match in the stream: unchanged');
  ep.close();
});
