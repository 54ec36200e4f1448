// Entry of the VAD worker thread (src/vad/worker.ts): worker_threads do not inherit the
// TypeScript loader of the main thread, so register it here, then load the worker itself.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
