// Barge-in end to end at the MediaEngine level over real UDP sockets: a
// session plays a long flite prompt to a UDP peer; the peer's real speech
// makes the media thread duck the agent's RTP audio at the onset and stop it
// once the interruption is confirmed (only keep-alive silence follows), while
// noise and backchannels ("yeah", "mm-hm") never cut it off (at most a short
// duck in level), and an uninterruptible prompt is never stopped. (The full SIP server enables VAD
// through the Call; this test drives the media layer directly.)
// Port range for this file: 22200-22399.
import t from 'tap';
import { MediaEngine, synthesize, type MediaSession } from '../../src/media/index.ts';
import { native } from '../../src/media/native.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { buildCorpus, readItem } from '../audio/corpus.ts';
import { RtpPeer, agentLevels, agentPrompt, onsetSample, sleep, waitFor } from '../bench/barge-in/peer.ts';

setLogLevel('silent');

const corpus = buildCorpus();
const pcm8 = (name: string): Int16Array => {
  const it = corpus.find((c) => c.name === name);
  if (!it) throw new Error(`corpus item ${name} missing`);
  return native.resample(readItem(it), 16000, 8000);
};

const engine = MediaEngine.create({ portMin: 22200, portMax: 22399 });
t.teardown(() => engine.close());
let prompt: Int16Array;
const peers: RtpPeer[] = [];
t.teardown(() => peers.forEach((p) => p.close()));

t.before(async () => {
  await engine.vadReady();
  const text = 'Thank you for calling Midwest Supply. Our offices are open from eight to six. ' +
    'You can place an order, check the status of an order, or speak with your sales representative.';
  prompt = agentPrompt(await synthesize(text, { voice: 'kal' }), 12);
});

interface Run {
  s: MediaSession;
  peer: RtpPeer;
  events: string[];
  onsetAt: number;
}

/** Session plays the prompt; after 1 s the peer sends `caller` (onset marked at `onset`). */
async function run(caller: Int16Array, onset: number, opts: { uninterruptible?: boolean } = {}): Promise<Run> {
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, vad: true });
  const peer = await RtpPeer.open();
  peers.push(peer);
  s.setRemote('127.0.0.1', peer.port);
  const events: string[] = [];
  for (const e of ['speechStart', 'speechEnd', 'bargeIn', 'falseInterruption', 'backchannel'] as const) s.on(e, () => events.push(e));
  peer.start(s.localPort);
  s.play(prompt, opts);
  await sleep(1000);
  const r: Run = { s, peer, events, onsetAt: 0 };
  peer.say(caller, (at) => (r.onsetAt = at), onset);
  await waitFor(() => peer.queuedMs === 0, caller.length / 8 + 2000);
  await sleep(1200); // endpointing + one more second of stream
  return r;
}

function done(r: Run): void {
  r.peer.close();
  r.s.close();
}

t.test('caller speech over the prompt stops the agent RTP audio', async (t) => {
  const names = ['speech-kal-2-clean', 'speech-slt-4-clean', 'speech-awb-0-pinknoise20', 'speech-rms-5-pinknoise10'];
  const runs = await Promise.all(names.map((n) => run(pcm8(n), onsetSample(pcm8(n.replace(/-[a-z]+\d+$/, '-clean'))))));
  for (const [i, r] of runs.entries()) {
    const name = names[i]!;
    t.ok(r.events.includes('bargeIn'), `${name}: bargeIn (${r.events.join(',')})`);
    t.ok(r.events.includes('speechEnd'), `${name}: the turn ended with speechEnd`);
    t.notOk(r.events.includes('falseInterruption'), `${name}: not a false interruption`);
    const last = r.peer.lastAudioAt();
    // What the caller hears: the agent ducks at the onset (pauseDuckDb) and stops once the
    // interruption is confirmed (falseInterruptionMinSpeechMs of speech).
    const lv = agentLevels(r.peer.received, prompt);
    const lastFull = r.peer.received.filter((_, k) => lv[k] === 'full').map((p) => p.at).reduce((a, b) => Math.max(a, b), -1);
    const ducked = r.peer.received.filter((p, k) => lv[k] === 'ducked' && p.at > r.onsetAt).length;
    t.ok(lastFull - r.onsetAt < 700, `${name}: the agent yields (last full-level audio ${(lastFull - r.onsetAt).toFixed(0)} ms after the caller's onset)`);
    t.ok(ducked > 0, `${name}: it ducks before it stops (${ducked} ducked packets)`);
    const reaction = last - r.onsetAt;
    t.ok(reaction > 0 && reaction < 1500, `${name}: last agent audio ${reaction.toFixed(0)} ms after the caller's onset`);
    const after = r.peer.received.filter((p) => p.at > last);
    t.ok(after.length >= 50, `${name}: the stream continues (${after.length} packets of keep-alive silence)`);
    t.ok(after.every((p) => p.silent), `${name}: only silence after the stop`);
    t.equal(r.s.queuedMs, 0, `${name}: the rest of the prompt was dropped at speechEnd`);
    const seqs = r.peer.received.map((p) => p.seq);
    t.ok(seqs.every((q, j) => j === 0 || q === ((seqs[j - 1]! + 1) & 0xffff)), `${name}: no gap in RTP sequence numbers`);
    done(r);
  }
});

// With the default tunables (minInterruptionMs 300) a spoken "mm-hm" may pass
// the interruption guard: the agent then pauses for a moment and resumes
// (falseInterruption), nothing is dropped. What must not happen is a taken
// turn (speechEnd → the prompt dropped).
t.test('noise and backchannels over the prompt do not stop it', async (t) => {
  const names = [
    'bc-yeah-kal-clean', 'bc-mm-hm-slt-clean', 'bc-okay-rms-pink20', 'bc-uh-huh-awb-clean',
    'ns-whitenoise20', 'ns-tone1k', 'ns-hold-organ',
  ];
  const runs = await Promise.all(names.map((n) => run(pcm8(n), 0)));
  for (const [i, r] of runs.entries()) {
    const name = names[i]!;
    t.notOk(r.events.includes('speechEnd'), `${name}: no caller turn taken (${r.events.join(',') || 'no events'})`);
    if (r.events.includes('bargeIn')) t.ok(r.events.includes('falseInterruption'), `${name}: paused, then resumed`);
    if (name.startsWith('ns-')) t.same(r.events, [], `${name}: no events at all`);
    t.ok(r.s.queuedMs > 0, `${name}: nothing dropped`);
    const tail = r.peer.received.slice(-25);
    t.ok(tail.length === 25 && tail.every((p) => !p.silent), `${name}: the prompt is still playing`);
    // Never cut off: at most a duck in level (pause-first duck), not a gap.
    const during = r.peer.received.filter((p) => p.at >= r.onsetAt);
    t.ok(r.onsetAt > 0 && during.length > 50 && during.every((p) => !p.silent),
      `${name}: the agent's audio never stopped (${during.filter((p) => p.silent).length} silent packets of ${during.length})`);
    done(r);
  }
});

t.test('an uninterruptible prompt is not stopped; the caller turn is still reported', async (t) => {
  const n = 'speech-kal-2-clean';
  const r = await run(pcm8(n), onsetSample(pcm8(n)), { uninterruptible: true });
  t.notOk(r.events.includes('bargeIn'), `no bargeIn (${r.events.join(',')})`);
  t.ok(r.events.includes('speechStart') && r.events.includes('speechEnd'), 'the caller turn is tracked');
  const tail = r.peer.received.slice(-25);
  t.ok(tail.every((p) => !p.silent), 'the prompt is still playing');
  t.ok(r.s.queuedMs > 0, 'nothing was dropped');
  done(r);
});

t.test('after a barge-in, a fresh prompt plays (explicit flush ends the pause)', async (t) => {
  const n = 'speech-slt-2-clean';
  const r = await run(pcm8(n), onsetSample(pcm8(n)));
  t.ok(r.events.includes('bargeIn'));
  const before = r.peer.received.length;
  r.s.flush();
  r.s.play(prompt.subarray(0, 8000));
  await sleep(600);
  const fresh = r.peer.received.slice(before);
  t.ok(fresh.filter((p) => !p.silent).length >= 20, 'the new answer is sent');
  done(r);
});
