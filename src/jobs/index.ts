/**
 * Background jobs: the `crm-cases` queue (after-hours messages → CRM cases) with its durable
 * spool, and the Redis it runs on (REDIS_URL or a private redis-server child).
 *
 * ```ts
 * const { url, server } = await resolveRedis({ dataDir });
 * const cases = new CaseQueue({ redisUrl: url, dataDir, gatewayFor });
 * await cases.enqueueCase(message);   // 'queued' | 'spooled' — never throws for Redis trouble
 * await cases.close(); await server?.stop();
 * ```
 */
export type { CaseMessage } from './types.ts';
export { Spool } from './spool.ts';
export { CaseQueue, CASES_QUEUE, DEFAULT_DATA_DIR, type CaseQueueOptions, type CaseToolCaller } from './cases.ts';
export {
  startRedisServer, resolveRedis, pingRedis, DEFAULT_PRIVATE_REDIS_PORTS, DEFAULT_REDIS_START_TIMEOUT_MS,
  type RedisServerHandle, type RedisServerOptions,
} from './redis.ts';
