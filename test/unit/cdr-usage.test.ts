/**
 * What the CDR counts comes from where the work is done: the LLM agent adds up the token
 * usage the model reports (stream_options.include_usage), the dialogue controller counts the
 * seconds of audio it hands to STT, the characters it hands to TTS and the barge-ins, and
 * logs each line the agent says at info with the call id.
 */
import t from 'tap';
import { setLogLevel, type Logger } from '../../src/ops/log.ts';
import { LlmAgent } from '../../src/agent/index.ts';
import { startLlmStub, type LlmStub } from '../helpers/llm-stub.ts';
import { OPEN_AT, collect, context, demoTenant, gatewayFor, openStore } from './agent-helpers.ts';
import { harness } from './dialogue-harness.ts';

setLogLevel('silent');

let stub: LlmStub;
t.before(async () => { stub = await startLlmStub(); });
t.teardown(() => stub.close());

t.test('LLM agent: prompt and completion tokens summed over the rounds of the call', async (t) => {
  const store = openStore(OPEN_AT);
  t.teardown(() => store.close());
  const tenant = demoTenant('northwind');
  const gw = await gatewayFor(tenant, store);
  t.teardown(() => gw.close());
  const agent = new LlmAgent(context(tenant, gw), { baseURL: stub.baseURL, apiKey: 'k', model: 'stub-model' });
  await collect(agent.start());
  t.equal(agent.state.usage, undefined, 'no model call yet, no usage');
  stub.usage.length = 0;
  stub.script(
    { toolCalls: [{ name: 'find_sku', args: { query: 'HX-4410' } }] },
    { content: ['HX-4410 is a three quarter inch valve. ', 'How many would you like?'] },
    { content: ['Sure.'] },
  );
  await collect(agent.turn({ text: 'Do you have H X four four one zero?' }));
  await collect(agent.turn({ text: 'Never mind.' }));
  t.equal(stub.usage.length, 3, 'three model rounds, each reported usage');
  t.ok(stub.requests.slice(-3).every((r) => r.body.stream_options?.include_usage === true), 'the agent asks for usage');
  t.same(agent.state.usage, {
    promptTokens: stub.usage.reduce((n, u) => n + u.prompt_tokens, 0),
    completionTokens: stub.usage.reduce((n, u) => n + u.completion_tokens, 0),
    model: 'stub-model',
  });
});

t.test("controller: STT seconds, TTS characters, barge-ins; the agent's words logged at info", async (t) => {
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  const log: Logger = {
    debug: (msg, fields = {}) => void lines.push({ level: 'debug', msg, fields }),
    info: (msg, fields = {}) => void lines.push({ level: 'info', msg, fields }),
    warn: (msg, fields = {}) => void lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields = {}) => void lines.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  const h = await harness({ controller: { log } });
  t.teardown(() => h.close());
  await h.start();
  h.playOut();
  const said = 'i need twenty of h x four four one zero';
  await h.say(said);
  t.equal(h.dialogue.usage.sttSeconds, Math.max(160, said.length) / 8000, 'the utterance audio handed to STT');
  const agentLines = h.dialogue.transcript.filter((e) => e.role === 'agent');
  t.equal(h.dialogue.usage.ttsChars, agentLines.reduce((n, e) => n + e.text.length, 0), 'every character synthesised');
  const logged = lines.filter((l) => l.msg === 'agent said');
  t.same(logged.map((l) => l.fields.text), agentLines.map((e) => e.text), 'each agent line logged');
  t.ok(logged.every((l) => l.level === 'info'));
  t.equal(h.dialogue.usage.bargeIns, 0);
  // the caller talks over the read-back
  h.ep.emit('speechStart');
  h.ep.emit('bargeIn');
  t.equal(h.dialogue.usage.bargeIns, 1, 'a barge-in over the reply');
});
