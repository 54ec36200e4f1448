/**
 * The VAD worker thread (one per native media engine; started by {@link VadWorker}).
 *
 * It owns its own onnxruntime-node session (a {@link VadBatcher}) and consumes the engine's
 * 32 ms hand-overs directly: `native.VadConsumer` makes a thread-safe function in this
 * thread's environment the engine's VAD sink, and the probabilities go straight back to the
 * media thread with `native.vadResultsTo`. The main JS thread is not on the VAD path; it
 * only tells this thread which sessions exist (control port) and receives stats.
 *
 * Control messages (main → worker, on `workerData.control`): `{op: 'add'|'remove', id}`,
 * `{op: 'run', seq, ids, windows}` (one batch through the model, answered `{op: 'ran', seq,
 * probs}`; tests), `{op: 'close'}`. The port is drained synchronously before each hand-over,
 * so a session added before its first window was cut is known when that window arrives.
 * Worker → main: `{op: 'ready'}`, `{op: 'stats', handover, batcher}` (every 250 ms),
 * `{op: 'error', message}`, `{op: 'closed'}`.
 */
import { writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { native } from '../media/native.ts';
import { VadBatcher, runGrouped, type VadBatcherOptions } from './batch.ts';
import { HandoverQueue, type HandoverOptions } from './handover.ts';

interface Data {
  entry: string;
  /** Engine to consume; 0 = none (model runs on request only). */
  engineKey: number;
  control: MessagePort;
  handover?: Partial<HandoverOptions>;
  batcher?: Partial<VadBatcherOptions>;
  /** nice value to ask for this thread (0 = leave it) */
  nice?: number;
}

type Msg =
  | { op: 'add' | 'remove'; id: number }
  | { op: 'run'; seq: number; ids: Uint32Array; windows: Float32Array }
  | { op: 'close' };

const data = workerData as Data;

// Name this OS thread `voice-vad` (as the media threads are `voice-media`), so its CPU and
// run-queue wait can be told apart in /proc/<pid>/task, `top -H`, `pidstat -t` and perf.
try {
  writeFileSync('/proc/thread-self/comm', 'voice-vad');
} catch { /* not Linux, or not permitted: the thread keeps its name */ }

// The model's answers are on the barge-in path: ask for a better nice value for this thread
// (Linux: setpriority(PRIO_PROCESS, 0) applies to the calling thread only), so the VAD keeps
// up while the main JS thread (STT, dialogue) or other processes keep the cores busy. Without
// CAP_SYS_NICE the thread keeps normal scheduling.
let niceGot: number | null = null;
if (data.nice !== undefined && data.nice !== 0) {
  try {
    setPriority(data.nice);
    niceGot = data.nice;
  } catch { /* not permitted: normal scheduling */ }
}
const port = data.control;
const key = data.engineKey;
const streams = new Set<number>();
let batcher: VadBatcher | null = null;
let closed = false;

const queue = new HandoverQueue(null, (ids, probs) => {
  native.vadResultsTo(key, ids, probs);
}, data.handover ?? {}, (err) => port.postMessage({ op: 'error', message: `vad run failed: ${err.message}` }));

const consumer = key > 0 ? new native.VadConsumer(key, (ids, windows) => {
  drain();
  queue.push(ids, windows);
}) : null;

function handle(m: Msg): void {
  if (m.op === 'add') {
    streams.add(m.id);
    if (batcher && !batcher.hasStream(m.id)) batcher.addStream(m.id);
  } else if (m.op === 'remove') {
    streams.delete(m.id);
    if (batcher?.hasStream(m.id)) batcher.removeStream(m.id);
  } else if (m.op === 'run') {
    const b = batcher;
    if (!b) {
      port.postMessage({ op: 'ran', seq: m.seq, error: 'model not loaded' });
      return;
    }
    runGrouped(b, m.ids, m.windows).then(
      (probs) => port.postMessage({ op: 'ran', seq: m.seq, probs }),
      (err: Error) => port.postMessage({ op: 'ran', seq: m.seq, error: err.message }),
    );
  } else if (m.op === 'close') {
    void shutdown();
  }
}

function drain(): void {
  for (let r = receiveMessageOnPort(port); r; r = receiveMessageOnPort(port)) handle(r.message as Msg);
}

function postStats(): void {
  if (!closed) port.postMessage({ op: 'stats', handover: queue.stats(), batcher: batcher?.stats() ?? null, streams: streams.size });
}

async function shutdown(): Promise<void> {
  if (closed) return;
  postStats();
  closed = true;
  clearInterval(timer);
  consumer?.close();
  queue.setRun(null);
  const b = batcher;
  batcher = null;
  if (b) await b.close();
  port.postMessage({ op: 'closed' });
  port.close();
}

port.on('message', (m: Msg) => handle(m));
const timer = setInterval(postStats, 250);

try {
  const b = await VadBatcher.create(data.batcher ?? {});
  if (closed) {
    await b.close();
  } else {
    batcher = b;
    drain();
    for (const id of streams) if (!b.hasStream(id)) b.addStream(id);
    queue.setRun((ids, windows) => runGrouped(b, ids, windows));
    port.postMessage({ op: 'ready', nice: niceGot });
    postStats();
  }
} catch (err) {
  port.postMessage({ op: 'error', message: `vad model failed to load: ${(err as Error).message}`, fatal: true });
}
