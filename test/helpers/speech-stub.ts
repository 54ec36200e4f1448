/**
 * An OpenAI-compatible speech stub: `POST /v1/audio/transcriptions` (multipart, the WAV is
 * kept) and `POST /v1/audio/speech` (`response_format: pcm`, 24 kHz s16le, streamed in
 * pieces). Every request is recorded. What it answers is set per kind:
 *
 * ```ts
 * const stub = await startSpeechStub();
 * stub.stt = { text: 'where is my order' };          // every transcription until changed
 * stub.tts = { hz: 1000, pieces: 4, pieceDelayMs: 100 }; // a 1 kHz tone per sentence, in 4 pieces
 * stub.tts = { status: 500 };                         // from now on: HTTP 500
 * stub.tts = { hang: true };                          // never answers
 * stub.tts = { hz: 1000, stallAfter: 1 };             // one piece, then nothing (headers sent)
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type SttReply = { text: string; delayMs?: number } | { status: number; delayMs?: number } | { hang: true };
export type TtsReply =
  | {
      /** tone frequency of the answer (24 kHz PCM) @defaultValue 1000 */
      hz?: number;
      /** ms of audio per character of input. @defaultValue 60 */
      msPerChar?: number;
      /** pieces the body is written in. @defaultValue 4 */
      pieces?: number;
      /** ms before the headers, and between pieces. @defaultValue 0 / 60 */
      delayMs?: number;
      pieceDelayMs?: number;
      /** write this many pieces, then stall (connection kept open) */
      stallAfter?: number;
    }
  | { status: number; delayMs?: number }
  | { hang: true };

export interface TranscriptionRequest {
  at: number;
  model: string;
  language?: string;
  prompt?: string;
  /** the uploaded file */
  wav: Buffer;
  filename?: string;
  authorization?: string;
}

export interface SpeechRequest {
  at: number;
  body: { model: string; voice: string; input: string; response_format: string };
  authorization?: string;
  /** when the first / last piece of the answer was written (ms, Date.now) */
  firstPieceAt?: number;
  lastPieceAt?: number;
}

export interface SpeechStub {
  baseURL: string;
  port: number;
  stt: SttReply;
  tts: TtsReply;
  transcriptions: TranscriptionRequest[];
  speech: SpeechRequest[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `n` samples of a tone at 24 kHz, amplitude 8000. */
export function tone24k(n: number, hz: number): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 24000)));
}

/** The parts of a multipart/form-data body. */
function multipart(body: Buffer, contentType: string): Map<string, { data: Buffer; filename?: string }> {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const out = new Map<string, { data: Buffer; filename?: string }>();
  if (!m) return out;
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`);
  let pos = body.indexOf(boundary);
  while (pos >= 0) {
    const start = pos + boundary.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const headEnd = body.indexOf('\r\n\r\n', start);
    if (headEnd < 0) break;
    const head = body.subarray(start, headEnd).toString();
    const next = body.indexOf(boundary, headEnd + 4);
    if (next < 0) break;
    const data = body.subarray(headEnd + 4, next - 2); // strip the CRLF before the boundary
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    const filename = /filename="([^"]*)"/i.exec(head)?.[1];
    if (name) out.set(name, { data, ...(filename ? { filename } : {}) });
    pos = next;
  }
  return out;
}

export async function startSpeechStub(): Promise<SpeechStub> {
  const open = new Set<ServerResponse>();
  const stub: SpeechStub = {
    baseURL: '', port: 0,
    stt: { text: '' },
    tts: {},
    transcriptions: [], speech: [],
    close: async () => {
      for (const r of open) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    open.add(res);
    res.on('close', () => open.delete(res));
    const auth = req.headers.authorization;
    if (req.method === 'POST' && req.url?.endsWith('/audio/transcriptions')) {
      const parts = multipart(body, req.headers['content-type'] ?? '');
      const file = parts.get('file');
      stub.transcriptions.push({
        at: Date.now(), model: parts.get('model')?.data.toString() ?? '', wav: file?.data ?? Buffer.alloc(0),
        ...(file?.filename ? { filename: file.filename } : {}),
        ...(parts.get('language') ? { language: parts.get('language')!.data.toString() } : {}),
        ...(parts.get('prompt') ? { prompt: parts.get('prompt')!.data.toString() } : {}),
        ...(auth ? { authorization: auth } : {}),
      });
      const r = stub.stt;
      if ('hang' in r) return;
      if (r.delayMs) await sleep(r.delayMs);
      if ('status' in r) {
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `scripted ${r.status}` } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text: r.text }));
      return;
    }
    if (req.method === 'POST' && req.url?.endsWith('/audio/speech')) {
      const b = JSON.parse(body.toString() || '{}') as SpeechRequest['body'];
      const rec: SpeechRequest = { at: Date.now(), body: b, ...(auth ? { authorization: auth } : {}) };
      stub.speech.push(rec);
      const r = stub.tts;
      if ('hang' in r) return;
      if (r.delayMs) await sleep(r.delayMs);
      if ('status' in r) {
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `scripted ${r.status}` } }));
        return;
      }
      const n = Math.round(Math.max(1, b.input.length) * (r.msPerChar ?? 60) * 24);
      const pcm = tone24k(n, r.hz ?? 1000);
      const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
      const pieces = Math.max(1, r.pieces ?? 4);
      const size = Math.ceil(bytes.length / pieces / 2) * 2 + 1; // odd sizes: samples split across pieces
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let off = 0, k = 0; off < bytes.length; off += size, k++) {
        if (r.stallAfter !== undefined && k >= r.stallAfter) return; // headers and some audio, then nothing
        if (k > 0) await sleep(r.pieceDelayMs ?? 60);
        if (res.destroyed) return;
        res.write(bytes.subarray(off, Math.min(bytes.length, off + size)));
        rec.firstPieceAt ??= Date.now();
        rec.lastPieceAt = Date.now();
      }
      res.end();
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  stub.port = (server.address() as AddressInfo).port;
  stub.baseURL = `http://127.0.0.1:${stub.port}/v1`;
  return stub;
}
