// Short answers in noise form a turn: "Yes." / "No." / "Yep." said by flite and espeak-ng
// voices with pink noise at 15 dB SNR (sox, seeded: the same audio on every run) through a
// µ-law phone line → batched Silero (VadBatcher) → the native TurnState with the default
// tunables, the agent silent (the caller answers a read-back). The same noise without the
// word forms no turn. With the former minSpeechMs (250 ms) about one answer in six was
// dropped: Silero keeps a short word in noise above the activation threshold for only 5-7
// frames (160-224 ms).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogLevel } from '../../src/ops/log.ts';
import { VadBatcher } from '../../src/vad/batch.ts';
import { TurnEvent } from '../../src/vad/policy.ts';
import { probabilities, turnEvents } from '../audio/pipeline.ts';
import { buildShortAnswers } from '../audio/short-answers.ts';
import { commandRuns, requireTool } from '../helpers/require.ts';

setLogLevel('silent');
t.setTimeout(240_000);

const has = commandRuns;

t.test('short answers after a read-back form a turn in 15 dB noise; the noise alone does not', async (t) => {
  const skip = requireTool(t, 'short answers', has('flite', ['-lv']), 'flite', 'flite')
    || requireTool(t, 'short answers', has('espeak-ng', ['--version']), 'espeak-ng', 'espeak-ng')
    || requireTool(t, 'short answers', has('sox', ['--version']), 'sox', 'sox');
  if (skip) return;
  const dir = mkdtempSync(join(tmpdir(), 'short-answers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { answers, alone } = buildShortAnswers(dir);
  const b = await VadBatcher.create();
  t.teardown(() => b.close());
  const probs = await probabilities(b, [...answers, ...alone]);
  const turns = (i: number, tun = {}): number => turnEvents(probs[i]!, {}, tun).filter((e) => e.events & TurnEvent.SpeechEnd).length;
  const formed = answers.filter((_, i) => turns(i) === 1);
  const before = answers.filter((_, i) => turns(i, { minSpeechMs: 250 }) === 1);
  t.comment(`formed a turn: ${formed.length}/${answers.length} (with minSpeechMs 250: ${before.length}/${answers.length}); ` +
    `missed: ${answers.filter((a) => !formed.includes(a)).map((a) => a.name).join(', ') || 'none'}`);
  for (const [i, a] of answers.entries()) {
    const n = turns(i);
    t.ok(n <= 1, `${a.name}: at most one turn (${n})`);
  }
  t.ok(formed.length >= answers.length - 1, `at most one of ${answers.length} answers forms no turn (${answers.length - formed.length})`);
  for (const [j, a] of alone.entries()) t.equal(turns(answers.length + j), 0, `${a.name}: no turn`);
  // the file reader of readItem is not needed here, but the items must exist for the cutter
  t.ok(readFileSync(answers[0]!.file).length > 0);
});
