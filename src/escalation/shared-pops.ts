/**
 * Screen pops shared by every node on one Redis: a pop raised (or updated) on node B shows live
 * on a rep console served by node A.
 *
 * Each node keeps its own {@link ScreenPopStore} (what its console serves). This bridge
 * - writes every local pop and update to Redis as `<prefix>:pop:<id>` (the whole pop, JSON,
 *   expiring after `ttlSeconds`) and publishes it on the channel `<prefix>:events`;
 * - applies what other nodes publish to the local store (add, or update in place), so the
 *   console's SSE stream pushes it to the reps' browsers like a local pop;
 * - at start, loads the pops still in Redis (a console opened on a node that just started sees
 *   the hand-offs of the last `ttlSeconds` raised elsewhere).
 * Redis trouble never reaches a call: publishing failures are logged (once until it recovers)
 * and the local store keeps working.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { logger, type Logger } from '../ops/log.ts';
import type { ScreenPop, ScreenPopStore } from './screen-pop.ts';

export interface SharedPopsOptions {
  /** `redis://host:port` — the same Redis for every node (REDIS_URL). */
  redisUrl: string;
  store: ScreenPopStore;
  /** How long a pop stays in Redis after its last change, s. @defaultValue 43200 (12 h) */
  ttlSeconds?: number;
  /** Key and channel prefix. @defaultValue 'va:pops' */
  prefix?: string;
  /** This node's name in published events (its own are ignored). @defaultValue a random id */
  nodeId?: string;
  log?: Logger;
}

interface PopEvent {
  origin: string;
  kind: 'pop' | 'update';
  pop: ScreenPop;
}

export class SharedPops {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly ttl: number;
  private readonly nodeId: string;
  private readonly log: Logger;
  private applying = false;
  private failing = false;
  private closed = false;
  private readonly onPop = (p: ScreenPop): void => this.publish('pop', p);
  private readonly onUpdate = (p: ScreenPop): void => this.publish('update', p);

  private constructor(private readonly o: SharedPopsOptions) {
    this.prefix = o.prefix ?? 'va:pops';
    this.ttl = o.ttlSeconds ?? 43_200;
    this.nodeId = o.nodeId ?? randomUUID();
    this.log = o.log ?? logger('escalation.shared-pops');
    const opts = { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true } as const;
    this.pub = new Redis(o.redisUrl, opts);
    this.sub = new Redis(o.redisUrl, opts);
    for (const r of [this.pub, this.sub]) r.on('error', () => { /* reported by the failing command */ });
  }

  /** Connect, subscribe, load the pops other nodes left in Redis, then mirror the local store. */
  static async start(o: SharedPopsOptions): Promise<SharedPops> {
    const s = new SharedPops(o);
    try {
      await Promise.all([s.pub.connect(), s.sub.connect()]);
      s.sub.on('message', (_ch: string, msg: string) => s.receive(msg));
      await s.sub.subscribe(s.channel);
      await s.loadExisting();
    } catch (err) {
      s.pub.disconnect();
      s.sub.disconnect();
      throw err;
    }
    o.store.on('pop', s.onPop);
    o.store.on('update', s.onUpdate);
    s.log.info('screen pops shared through Redis', { channel: s.channel, ttlSeconds: s.ttl, loaded: o.store.list().length });
    return s;
  }

  private get channel(): string {
    return `${this.prefix}:events`;
  }

  private key(id: string): string {
    return `${this.prefix}:pop:${id}`;
  }

  private async loadExisting(): Promise<void> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.pub.scan(cursor, 'MATCH', `${this.prefix}:pop:*`, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length === 0) return;
    const pops = (await this.pub.mget(...keys))
      .flatMap((v) => {
        try {
          return v ? [JSON.parse(v) as ScreenPop] : [];
        } catch {
          return [];
        }
      })
      .sort((a, b) => a.createdAt - b.createdAt);
    for (const p of pops) this.apply('pop', p);
  }

  private publish(kind: PopEvent['kind'], pop: ScreenPop): void {
    if (this.applying || this.closed) return;
    const json = JSON.stringify(pop);
    const ev = JSON.stringify({ origin: this.nodeId, kind, pop } satisfies PopEvent);
    this.pub.multi().set(this.key(pop.id), json, 'EX', this.ttl).publish(this.channel, ev).exec()
      .then(() => {
        if (this.failing) this.log.info('screen pops reach Redis again');
        this.failing = false;
      })
      .catch((err: unknown) => {
        if (!this.failing) this.log.warn('screen pop not shared (Redis): other nodes\' consoles miss it', { popId: pop.id, err: err as Error });
        this.failing = true;
      });
  }

  private receive(msg: string): void {
    let ev: PopEvent;
    try {
      ev = JSON.parse(msg) as PopEvent;
    } catch {
      return;
    }
    if (ev.origin === this.nodeId || !ev.pop?.id) return;
    this.apply(ev.kind, ev.pop);
  }

  /** Put a pop from another node into the local store without publishing it back. */
  private apply(kind: PopEvent['kind'], pop: ScreenPop): void {
    this.applying = true;
    try {
      if (this.o.store.get(pop.id)) this.o.store.update(pop.id, pop);
      else if (kind === 'pop' || kind === 'update') this.o.store.add(pop);
    } finally {
      this.applying = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.store.off('pop', this.onPop);
    this.o.store.off('update', this.onUpdate);
    await Promise.all([this.pub.quit().catch(() => this.pub.disconnect()), this.sub.quit().catch(() => this.sub.disconnect())]);
  }
}
