/**
 * Queue `crm-cases`: a taken message becomes a BullMQ job whose worker calls `create_case`
 * through the tenant's tool gateway (idempotency key = the message id), retried with capped
 * exponential backoff until the CRM accepts it. When Redis cannot take the job, the message is
 * appended to a durable spool (`<dataDir>/spool/crm-cases.jsonl`) and replayed into the queue
 * by a periodic check once Redis is back. Never lost (spool fsync'd, Redis AOF), never
 * duplicated (job id derived from the message id + CRM idempotency key).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { Queue, Worker, UnrecoverableError, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { logger } from '../ops/log.ts';
import { Spool } from './spool.ts';
import type { CaseMessage } from './types.ts';

const log = logger('jobs.cases');

/** Queue name. */
export const CASES_QUEUE = 'crm-cases';
/** Data directory for the spool and the private Redis. Env `DATA_DIR`. @defaultValue './var' */
export const DEFAULT_DATA_DIR = './var';

/**
 * What the worker needs of a tool gateway (structurally the src/tools ToolGateway; declared
 * here so jobs do not import upward).
 */
export interface CaseToolCaller {
  call(name: string, args: Record<string, unknown>, ctx: { tenantId: string; callId: string }): Promise<
    { ok: true; data: Record<string, unknown> } | { ok: false; error: string; code: string }
  >;
}

export interface CaseQueueOptions {
  /** Redis URL (see resolveRedis) */
  redisUrl: string;
  /** the gateway that creates cases for a tenant (cache them; the queue does not close them) */
  gatewayFor: (tenantId: string) => CaseToolCaller | Promise<CaseToolCaller>;
  /** @defaultValue env DATA_DIR, else {@link DEFAULT_DATA_DIR} */
  dataDir?: string;
  /** run a worker in this process. @defaultValue true */
  worker?: boolean;
  /** give up on Redis for one add after this many ms and spool instead. @defaultValue 1500 */
  enqueueTimeoutMs?: number;
  /** how often the spool is replayed into Redis. @defaultValue 2000 */
  replayIntervalMs?: number;
  /** first retry delay; doubles per attempt. @defaultValue 1000 */
  backoffBaseMs?: number;
  /** retry delay ceiling. @defaultValue 60000 */
  backoffMaxMs?: number;
  /** attempts before a job is parked as failed (~2 weeks at the ceiling). @defaultValue 20000 */
  attempts?: number;
  /** parallel create_case calls. @defaultValue 2 */
  concurrency?: number;
  /** BullMQ key prefix (tests isolate runs). @defaultValue 'bull' */
  prefix?: string;
  /**
   * How long this worker's hold on a job lasts without renewal (BullMQ lockDuration): when a
   * node dies mid-delivery, another node's worker takes the job over after this. @defaultValue 30000
   */
  lockMs?: number;
  /** How often this worker looks for jobs whose holder died (BullMQ stalledInterval). @defaultValue 30000 */
  stalledCheckMs?: number;
}

/** Events: `created` (message, caseNumber), `spooled` (message), `replayed` (count). */
export class CaseQueue extends EventEmitter {
  readonly spool: Spool;
  private readonly opts: Required<Omit<CaseQueueOptions, 'gatewayFor' | 'redisUrl'>> & Pick<CaseQueueOptions, 'gatewayFor' | 'redisUrl'>;
  private readonly conn: Redis;
  private readonly queue: Queue;
  private workerConn?: Redis;
  private worker?: Worker;
  private timer?: NodeJS.Timeout;
  private replaying = false;
  private closed = false;

  constructor(opts: CaseQueueOptions) {
    super();
    this.opts = {
      redisUrl: opts.redisUrl,
      gatewayFor: opts.gatewayFor,
      dataDir: opts.dataDir ?? process.env.DATA_DIR ?? DEFAULT_DATA_DIR,
      worker: opts.worker ?? true,
      enqueueTimeoutMs: opts.enqueueTimeoutMs ?? 1500,
      replayIntervalMs: opts.replayIntervalMs ?? 2000,
      backoffBaseMs: opts.backoffBaseMs ?? 1000,
      backoffMaxMs: opts.backoffMaxMs ?? 60000,
      attempts: opts.attempts ?? 20000,
      concurrency: opts.concurrency ?? 2,
      prefix: opts.prefix ?? 'bull',
      lockMs: opts.lockMs ?? 30000,
      stalledCheckMs: opts.stalledCheckMs ?? 30000,
    };
    this.spool = new Spool(path.join(this.opts.dataDir, 'spool', `${CASES_QUEUE}.jsonl`));
    const retry = (n: number): number => Math.min(200 * n, 2000);
    // Fail fast while disconnected: enqueueCase checks the connection state and races each add
    // against enqueueTimeoutMs, spooling instead of waiting. (BullMQ needs the offline queue
    // for its start-up INFO; a command that sits in it and runs later only re-adds the same
    // job id, which is a no-op.)
    this.conn = new Redis(this.opts.redisUrl, { maxRetriesPerRequest: 1, retryStrategy: retry });
    this.conn.on('error', (err) => log.debug('redis (queue) error', { err }));
    this.queue = new Queue(CASES_QUEUE, { connection: this.conn, prefix: this.opts.prefix, skipWaitingForReady: true });
    this.queue.on('error', (err) => log.debug('queue error', { err }));
    if (this.opts.worker) this.startWorker(retry);
    this.timer = setInterval(() => void this.replay(), this.opts.replayIntervalMs);
    this.timer.unref();
    void this.replay();
  }

  private startWorker(retry: (n: number) => number): void {
    this.workerConn = new Redis(this.opts.redisUrl, { maxRetriesPerRequest: null, retryStrategy: retry });
    this.workerConn.on('error', (err) => log.debug('redis (worker) error', { err }));
    const { backoffBaseMs: base, backoffMaxMs: max } = this.opts;
    this.worker = new Worker(CASES_QUEUE, (job: Job) => this.process(job), {
      connection: this.workerConn,
      prefix: this.opts.prefix,
      concurrency: this.opts.concurrency,
      lockDuration: this.opts.lockMs,
      stalledInterval: this.opts.stalledCheckMs,
      settings: { backoffStrategy: (attemptsMade: number) => Math.min(max, base * 2 ** Math.max(0, attemptsMade - 1)) },
    });
    this.worker.on('error', (err) => log.debug('worker error', { err }));
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      (final ? log.error : log.warn)(final ? 'case job failed for good' : 'case job failed; will retry', {
        job: job.id, msgId: (job.data as CaseMessage).id, attempt: job.attemptsMade, err,
      });
    });
  }

  private async process(job: Job): Promise<{ case_number: string }> {
    const m = job.data as CaseMessage;
    const gw = await this.opts.gatewayFor(m.tenantId);
    const r = await gw.call('create_case', {
      ...(m.accountId ? { account_id: m.accountId } : {}),
      caller_name: m.callerName,
      callback_number: m.callbackNumber,
      reason: m.accountName && !m.accountId ? `${m.reason} (caller's company: ${m.accountName})` : m.reason,
      kind: m.kind,
      ...(m.transcript ? { transcript: m.transcript } : {}),
      idempotency_key: m.id,
    }, { tenantId: m.tenantId, callId: m.callId });
    if (!r.ok) {
      if (r.code === 'refused' || r.code === 'unknown_tool') throw new UnrecoverableError(`create_case ${r.code}: ${r.error}`);
      throw new Error(`create_case ${r.code}: ${r.error}`);
    }
    const caseNumber = String(r.data.case_number ?? '');
    log.info('case created', { msgId: m.id, tenant: m.tenantId, callId: m.callId, case: caseNumber, attempt: job.attemptsMade + 1 });
    this.emit('created', m, caseNumber);
    return { case_number: caseNumber };
  }

  /** BullMQ job id for a message (ids may not contain ':'). */
  static jobId(msg: CaseMessage): string {
    return `case-${createHash('sha256').update(msg.id).digest('hex').slice(0, 32)}`;
  }

  private async add(msg: CaseMessage): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.queue.add('create_case', msg, {
          jobId: CaseQueue.jobId(msg),
          attempts: this.opts.attempts,
          backoff: { type: 'custom' },
          removeOnComplete: { age: 14 * 86400, count: 100000 },
          removeOnFail: false,
        }),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('redis did not take the job in time')), this.opts.enqueueTimeoutMs); }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Queue a message for the CRM. Resolves 'queued' when Redis has the job, 'spooled' when it
   * was written durably to the spool instead (replayed later). Never rejects for Redis trouble.
   */
  async enqueueCase(msg: CaseMessage): Promise<'queued' | 'spooled'> {
    if (this.conn.status === 'ready') {
      try {
        await this.add(msg);
        log.info('case queued', { msgId: msg.id, tenant: msg.tenantId, callId: msg.callId });
        return 'queued';
      } catch (err) {
        log.warn('redis unavailable; spooling the message', { msgId: msg.id, err: err as Error });
      }
    } else {
      log.warn('redis not connected; spooling the message', { msgId: msg.id, status: this.conn.status });
    }
    this.spool.append(msg);
    this.emit('spooled', msg);
    return 'spooled';
  }

  /** Move spooled messages into Redis (runs periodically). Returns how many moved. */
  async replay(): Promise<number> {
    if (this.replaying || this.closed || this.conn.status !== 'ready') return 0;
    this.replaying = true;
    try {
      const pending = this.spool.list();
      if (pending.length === 0) return 0;
      const done: string[] = [];
      for (const m of pending) {
        try {
          await this.add(m);
          done.push(m.id);
        } catch (err) {
          log.debug('replay stopped; redis still unavailable', { err: err as Error });
          break;
        }
      }
      this.spool.remove(done);
      if (done.length) {
        log.info('spooled messages replayed into the queue', { count: done.length, left: pending.length - done.length });
        this.emit('replayed', done.length);
      }
      return done.length;
    } finally {
      this.replaying = false;
    }
  }

  /**
   * Readiness of the queue's Redis: null when it answers PING within `timeoutMs`, else why not
   * (messages are still safe: they go to the spool, which {@link spoolHealth} checks).
   */
  async redisHealth(timeoutMs = 1000): Promise<string | null> {
    if (this.conn.status !== 'ready') return `not connected (${this.conn.status}); messages spool to ${this.spool.file}`;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.conn.ping(),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no PONG within ${timeoutMs} ms`)), timeoutMs); }),
      ]);
      return null;
    } catch (err) {
      return (err as Error).message;
    } finally {
      clearTimeout(timer);
    }
  }

  /** null when the spool file's directory is writable, else why not. */
  spoolHealth(): string | null {
    return this.spool.writable();
  }

  /** Counts of the queue (waiting, active, delayed, completed, failed) — for health/metrics. */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await Promise.allSettled([this.worker?.close(true), this.queue.close()]);
    this.conn.disconnect();
    this.workerConn?.disconnect();
  }
}
