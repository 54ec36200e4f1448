// Real audio through the whole VAD stack: flite voices and sox noise through a µ-law phone
// line → native FrameCutter → batched Silero (VadBatcher, all items as concurrent streams)
// → native TurnState with the default tunables.
import t from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';
import { VadBatcher } from '../../src/vad/batch.ts';
import { TURN_DEFAULTS, TurnEvent } from '../../src/vad/policy.ts';
import { buildCorpus, type CorpusItem } from '../audio/corpus.ts';
import { probabilities, turnEvents, type TurnEventRec } from '../audio/pipeline.ts';

setLogLevel('silent');
// A cold corpus cache (flite + sox for 120 items) takes ~20-50 s on a loaded 2-core box.
t.setTimeout(240_000);

const has = (recs: TurnEventRec[], ev: number): number => recs.filter((r) => r.events & ev).length;

t.test('VAD and turn-taking on the real-audio corpus', async (t) => {
  const items = buildCorpus();
  const b = await VadBatcher.create();
  t.teardown(() => b.close());
  const probs = await probabilities(b, items);
  const byKind = (k: CorpusItem['kind']): [CorpusItem, number[]][] =>
    items.map((it, i) => [it, probs[i]!] as [CorpusItem, number[]]).filter(([it]) => it.kind === k);

  t.test('speech (4 voices × 6 phrases; clean, 20 dB and 10 dB SNR) starts and ends one turn', async (t) => {
    const speech = byKind('speech');
    t.equal(speech.length, 72);
    for (const [it, p] of speech) {
      const ev = turnEvents(p);
      const ok = has(ev, TurnEvent.SpeechStart) === 1 && has(ev, TurnEvent.SpeechEnd) === 1 && ev.length === 2;
      t.ok(ok, `${it.name}: one turn`, ok ? {} : { events: ev });
    }
  });

  t.test('speech over an interruptible prompt barges in and is a real turn', async (t) => {
    for (const [it, p] of byKind('speech')) {
      const ev = turnEvents(p, { agent: true });
      const barge = ev.find((e) => e.events & TurnEvent.BargeIn);
      t.ok(barge && has(ev, TurnEvent.SpeechEnd) >= 1 && has(ev, TurnEvent.FalseInterruption) === 0,
        `${it.name}: barge-in at ${barge?.ms} ms, ends as a turn`);
    }
  });

  t.test('speech over an uninterruptible prompt never barges in but is still heard', async (t) => {
    for (const [it, p] of byKind('speech').slice(0, 12)) {
      const ev = turnEvents(p, { agent: true, uninterruptible: true });
      t.ok(has(ev, TurnEvent.BargeIn) === 0 && has(ev, TurnEvent.SpeechEnd) === 1, it.name);
    }
  });

  t.test('silence, noise, 1 kHz tone and hold music: no speech, no barge-in', async (t) => {
    const ns = byKind('nonspeech');
    t.ok(ns.length >= 10);
    for (const [it, p] of ns) {
      t.same(turnEvents(p), [], `${it.name} (${it.condition}): no events, agent silent`);
      t.same(turnEvents(p, { agent: true }), [], `${it.name}: no events over the agent`);
    }
  });

  t.test('backchannels while the agent speaks', async (t) => {
    const bc = byKind('backchannel');
    t.equal(bc.length, 32);
    let short = 0;
    for (const [it, p] of bc) {
      const ev = turnEvents(p, { agent: true });
      // Voiced length the state machine measured (Backchannel/FalseInterruption/SpeechEnd carry it).
      const end = ev.find((e) => e.events & (TurnEvent.Backchannel | TurnEvent.FalseInterruption | TurnEvent.SpeechEnd));
      t.ok(end, `${it.name}: utterance closed`);
      if (end && end.voicedMs < TURN_DEFAULTS.minInterruptionMs) {
        short++;
        t.ok(has(ev, TurnEvent.BargeIn) === 0 && (end.events & TurnEvent.Backchannel) !== 0,
          `${it.name}: ${end.voicedMs} ms < minInterruptionMs → no barge-in`);
      }
      // Longer ones may pause the agent but must be recovered: never a turn that kills the prompt.
      t.equal(has(ev, TurnEvent.SpeechEnd), 0, `${it.name}: not taken as a turn (${end?.voicedMs} ms voiced)`);
    }
    t.ok(short >= 4, `${short} backchannels shorter than minInterruptionMs`);
  });

  t.test('PO number read with ~1.1 s pauses: one turn with the digits extension, cut up without it', async (t) => {
    for (const [it, p] of byKind('digits')) {
      const plain = turnEvents(p);
      t.ok(has(plain, TurnEvent.SpeechEnd) >= 3, `${it.name}: without the extension the caller is cut off ${has(plain, TurnEvent.SpeechEnd)} times`);
      // STT partials: "my P O number is" then digits; awaitingDigits() is true from the first partial on.
      const first = plain.find((e) => e.events & TurnEvent.SpeechStart)!.frame;
      const ext = turnEvents(p, { digitsFrom: first });
      t.equal(has(ext, TurnEvent.SpeechStart), 1, `${it.name}: one speech start`);
      t.equal(has(ext, TurnEvent.SpeechEnd), 1, `${it.name}: one speech end`);
      const lastPlainEnd = plain.filter((e) => e.events & TurnEvent.SpeechEnd).pop()!;
      const end = ext.find((e) => e.events & TurnEvent.SpeechEnd)!;
      t.equal(end.endFrame, lastPlainEnd.endFrame, `${it.name}: the turn ends after the last digit group`);
    }
  });
});
