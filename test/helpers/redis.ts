/**
 * A private redis-server for tests on the agent-jobs port range (18700-18799), with its
 * append-only file in a temp dir; `restart()` brings it back on the same port and data.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRedisServer, type RedisServerHandle } from '../../src/jobs/redis.ts';

/** Redis ports of the agent/jobs suites. */
export const REDIS_TEST_PORTS = { min: 18700, max: 18799 } as const;

export interface TestRedis {
  url: string;
  port: number;
  dataDir: string;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
  /** start again on the same port with the same data dir */
  restart(): Promise<void>;
  /** stop and delete the data dir */
  stop(): Promise<void>;
}

export async function startTestRedis(dataDir = mkdtempSync(path.join(tmpdir(), 'redis-test-'))): Promise<TestRedis> {
  let h: RedisServerHandle = await startRedisServer({ dataDir, ports: REDIS_TEST_PORTS });
  const port = h.port;
  return {
    url: h.url,
    port,
    dataDir,
    kill: () => h.kill(),
    restart: async () => {
      h = await startRedisServer({ dataDir, port });
    },
    stop: async () => {
      await h.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
