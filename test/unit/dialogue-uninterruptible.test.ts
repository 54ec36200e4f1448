/**
 * Uninterruptible lines (the recording disclosure, the hand-off handshake, the drain goodbye)
 * in the dialogue controller: a caller turn or a key that ends while one plays does not flush
 * it; the turn is taken once its audio has played out. An ordinary line is still cut at once.
 */
import t from 'tap';
import { DialogueController } from '../../src/dialogue/index.ts';
import type { Agent, AgentAction, AgentTurn, CallContext, ConversationState } from '../../src/agent/types.ts';
import { FakeMedia, FakeStt, FakeTts, ScriptedEndpointer, speechOf } from './dialogue-harness.ts';
import { setLogLevel } from '../../src/ops/log.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class LineAgent implements Agent {
  readonly state = { callId: 'c', language: 'en-US', transcript: [] } as unknown as ConversationState;
  readonly turns: Array<{ input: string; at: number }> = [];
  constructor(private readonly line: string, private readonly uninterruptible: boolean) {}
  async *start(): AsyncGenerator<AgentAction> { yield { type: 'say', text: this.line, final: true, uninterruptible: this.uninterruptible }; }
  async *turn(input: AgentTurn): AsyncGenerator<AgentAction> {
    this.turns.push({ input: input.text || input.dtmf || '', at: Date.now() });
    yield { type: 'say', text: 'Okay.', final: true };
  }
}

function setup(uninterruptible: boolean) {
  // 60 characters of fake TTS audio = 600 ms
  const agent = new LineAgent('You are speaking with an automated assistant, please hold on.', uninterruptible);
  const tts = new FakeTts();
  const media = new FakeMedia(tts);
  const ep = new ScriptedEndpointer(true);
  const dialogue = new DialogueController({ media, agent, ctx: {} as CallContext, stt: new FakeStt(), tts, endpointer: ep, dtmfTimeoutMs: 50 });
  return { agent, media, ep, dialogue };
}

t.test('a caller turn over an uninterruptible line waits for its end; nothing is flushed before', async (t) => {
  const { agent, media, ep, dialogue } = setup(true);
  await dialogue.start();
  const t0 = Date.now();
  ep.emit('speechStart');
  ep.emit('speechEnd', { audio: speechOf('yes'), voicedMs: 300 });
  ep.emit('bargeIn');
  await sleep(200);
  t.equal(media.flushes, 0, 'the line is not flushed while it plays');
  t.same(agent.turns, [], 'the turn waits');
  await sleep(700);
  t.equal(agent.turns.length, 1, 'the turn was taken after the line');
  t.equal(agent.turns[0]!.input, 'yes');
  t.ok(agent.turns[0]!.at - t0 >= 500, `taken ${agent.turns[0]!.at - t0} ms later (line 600 ms)`);
  await dialogue.stop();
});

t.test('a key over an uninterruptible line neither interrupts it nor is lost', async (t) => {
  const { agent, media, dialogue } = setup(true);
  await dialogue.start();
  media.emit('dtmfStart', { digit: '1' });
  media.emit('dtmf', { digit: '1', durationMs: 100 });
  await sleep(250);
  t.equal(media.flushes, 0, 'not interrupted by the key');
  t.same(agent.turns, []);
  await sleep(700);
  t.same(agent.turns.map((x) => x.input), ['1'], 'the key is the next turn');
  await dialogue.stop();
});

t.test('an ordinary line is still cut at once by a key', async (t) => {
  const { media, dialogue } = setup(false);
  await dialogue.start();
  media.emit('dtmfStart', { digit: '1' });
  t.equal(media.flushes, 1, 'flushed at the key');
  await dialogue.stop();
});
