/**
 * An OpenAI-compatible chat-completions stub, scripted per test. Each POST
 * /v1/chat/completions takes the next scripted reply: streamed (SSE content deltas and
 * tool_calls deltas, with delays) or not, an HTTP error, or a hang. Requests are recorded.
 *
 * ```ts
 * const stub = await startLlmStub();
 * stub.script({ content: ['Sure. ', 'One moment.'] }, { toolCalls: [{ name: 'find_sku', args: { query: 'HX-4410' } }] });
 * new LlmAgent(ctx, { baseURL: stub.baseURL, apiKey: 'test', model: 'stub' });
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type StubReply =
  | {
      /** content deltas, sent one chunk each */
      content?: string[];
      /** tool calls, each streamed as a header chunk + argument pieces */
      toolCalls?: Array<{ id?: string; name: string; args: Record<string, unknown> | string }>;
      /** ms before the first chunk (or before the JSON body). @defaultValue 0 */
      delayMs?: number;
      /** ms between chunks. @defaultValue 0 */
      chunkDelayMs?: number;
      /** force non-streaming / streaming regardless of the request */
      stream?: boolean;
    }
  | { status: number; body?: unknown; delayMs?: number }
  | { hang: true };

export interface RecordedRequest {
  at: number;
  body: Record<string, any>;
  headers: IncomingMessage['headers'];
}

export interface LlmStub {
  baseURL: string;
  port: number;
  requests: RecordedRequest[];
  /** when the last streamed response was finished ([DONE] written) */
  lastStreamEndAt: number;
  /** the token usage reported per streamed response that asked for it (`stream_options.include_usage`) */
  usage: Array<{ prompt_tokens: number; completion_tokens: number; total_tokens: number }>;
  script(...replies: StubReply[]): void;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start the stub on 127.0.0.1 (`port` 0 = any free port; agent-jobs range is 18600-18699). */
export async function startLlmStub(port = 0): Promise<LlmStub> {
  const queue: StubReply[] = [];
  const open = new Set<ServerResponse>();
  let n = 0;
  const stub: LlmStub = {
    baseURL: '',
    port: 0,
    requests: [],
    lastStreamEndAt: 0,
    usage: [],
    script: (...r) => void queue.push(...r),
    close: async () => {
      for (const r of open) r.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, any>;
    stub.requests.push({ at: Date.now(), body, headers: req.headers });
    const reply = queue.shift() ?? { status: 500, body: { error: { message: 'no scripted reply left', type: 'stub' } } };
    open.add(res);
    res.on('close', () => open.delete(res));
    if ('hang' in reply) return; // never answers
    if ('status' in reply) {
      if (reply.delayMs) await sleep(reply.delayMs);
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body ?? { error: { message: `scripted ${reply.status}` } }));
      return;
    }
    const id = `chatcmpl-stub-${++n}`;
    const created = Math.floor(Date.now() / 1000);
    const model = String(body.model ?? 'stub');
    const calls = (reply.toolCalls ?? []).map((c, i) => ({ id: c.id ?? `call_${n}_${i}`, name: c.name, args: typeof c.args === 'string' ? c.args : JSON.stringify(c.args) }));
    const finish = calls.length ? 'tool_calls' : 'stop';
    if (reply.delayMs) await sleep(reply.delayMs);
    const streaming = reply.stream ?? body.stream === true;
    if (!streaming) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        id, object: 'chat.completion', created, model,
        choices: [{
          index: 0, finish_reason: finish, logprobs: null,
          message: {
            role: 'assistant', content: reply.content?.join('') ?? null, refusal: null,
            ...(calls.length ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } })) } : {}),
          },
        }],
        usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
      }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (delta: Record<string, unknown>, finishReason: string | null = null): void => {
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }] })}\n\n`);
    };
    const gap = async (): Promise<void> => { if (reply.chunkDelayMs) await sleep(reply.chunkDelayMs); };
    send({ role: 'assistant', content: '' });
    for (const c of reply.content ?? []) {
      await gap();
      if (res.destroyed) return;
      send({ content: c });
    }
    for (let i = 0; i < calls.length; i++) {
      const c = calls[i]!;
      await gap();
      send({ tool_calls: [{ index: i, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] });
      const half = Math.ceil(c.args.length / 2);
      for (const piece of [c.args.slice(0, half), c.args.slice(half)]) {
        if (piece) send({ tool_calls: [{ index: i, function: { arguments: piece } }] });
      }
    }
    await gap();
    if (res.destroyed) return;
    send({}, finish);
    if (body.stream_options?.include_usage) {
      // like OpenAI: one last chunk with no choices and the usage (about 4 characters a token)
      const prompt = Math.ceil(JSON.stringify(body.messages ?? []).length / 4);
      const completion = Math.max(1, Math.ceil(((reply.content ?? []).join('').length + calls.reduce((n, c) => n + c.name.length + c.args.length, 0)) / 4));
      const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
      stub.usage.push(usage);
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`);
    }
    res.write('data: [DONE]\n\n');
    stub.lastStreamEndAt = Date.now();
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  stub.port = (server.address() as AddressInfo).port;
  stub.baseURL = `http://127.0.0.1:${stub.port}/v1`;
  return stub;
}
