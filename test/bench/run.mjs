#!/usr/bin/env node
// Benchmark runner: `npm run bench -- <name> [args...]` runs test/bench/<name>.ts (or
// test/bench/<name>/index.ts) with `node --import tsx`. Without a name it lists the
// benchmarks. Each benchmark prints a machine-readable JSON object as its last stdout line.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

function list() {
  const names = [];
  for (const entry of readdirSync(here)) {
    const p = join(here, entry);
    if (statSync(p).isDirectory() && existsSync(join(p, 'index.ts'))) names.push(entry);
    else if (entry.endsWith('.ts') && !entry.endsWith('.test.ts') && !entry.startsWith('_')) names.push(entry.slice(0, -3));
  }
  return names.sort();
}

const [name, ...rest] = process.argv.slice(2);
if (!name) {
  console.log('usage: npm run bench -- <name> [args...]\nbenchmarks:');
  for (const n of list()) console.log(`  ${n}`);
  process.exit(0);
}
const file = [join(here, `${name}.ts`), join(here, name, 'index.ts')].find((f) => existsSync(f));
if (!file) {
  console.error(`unknown benchmark "${name}"; available: ${list().join(', ')}`);
  process.exit(2);
}
const child = spawn(process.execPath, ['--import', 'tsx', file, ...rest], { cwd: root, stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
