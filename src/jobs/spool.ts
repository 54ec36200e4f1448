/**
 * Durable spool for messages that could not be queued (Redis down): one JSON object per line,
 * appended and fsync'd before `append` returns, rewritten atomically (temp file + fsync +
 * rename + directory fsync) when replayed entries are removed. A torn last line (crash
 * mid-write) is skipped with a warning; every complete line is kept.
 */
import { accessSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { logger } from '../ops/log.ts';
import type { CaseMessage } from './types.ts';

const log = logger('jobs.spool');

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch { /* some filesystems refuse directory fsync */ }
}

export class Spool {
  readonly file: string;

  constructor(file: string) {
    this.file = path.resolve(file);
    mkdirSync(path.dirname(this.file), { recursive: true });
  }

  /** Append one message durably (returns after fsync). */
  append(msg: CaseMessage): void {
    const created = !existsSync(this.file);
    const fd = openSync(this.file, 'a', 0o600);
    try {
      writeSync(fd, JSON.stringify(msg) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (created) fsyncDir(path.dirname(this.file));
  }

  /** All spooled messages, oldest first (duplicates by id collapsed). */
  list(): CaseMessage[] {
    if (!existsSync(this.file)) return [];
    const out = new Map<string, CaseMessage>();
    const lines = readFileSync(this.file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const m = JSON.parse(line) as CaseMessage;
        if (m && typeof m.id === 'string') out.set(m.id, m);
      } catch {
        log.warn('skipping unreadable spool line', { file: this.file, line: i + 1 });
      }
    });
    return [...out.values()];
  }

  get size(): number {
    return this.list().length;
  }

  /** null when messages can be spooled (the directory, and the file if it exists, are writable), else why not. */
  writable(): string | null {
    try {
      accessSync(path.dirname(this.file), constants.W_OK);
      if (existsSync(this.file)) accessSync(this.file, constants.W_OK);
      return null;
    } catch (err) {
      return `spool ${this.file} not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }

  /** Drop the given ids (rewrites the file atomically). */
  remove(ids: Iterable<string>): void {
    const drop = new Set(ids);
    if (drop.size === 0) return;
    const keep = this.list().filter((m) => !drop.has(m.id));
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      if (keep.length) writeSync(fd, keep.map((m) => JSON.stringify(m)).join('\n') + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    fsyncDir(path.dirname(this.file));
  }
}
