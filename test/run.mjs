#!/usr/bin/env node
// Runs the tap suite and prints a final "N passed, N failed" line computed from
// the real TAP stream: one point per top-level test case in each test file; a
// file that crashes before reporting any case counts as one failure.
//
// Without arguments the suite runs in steps: first each PAIR side by side (two
// files at a time), then every other file one at a time (package.json "tap":
// jobs 1). The paired files are e2e calls bound by real-time audio, not CPU
// (each a fifth to a third of one core, /usr/bin/time over a run), and
// independent of each other: their own port ranges, temp dirs and redis-server
// processes. With arguments (files, tap options) one tap run gets them as they are.
import { spawn } from 'node:child_process';
import { Parser } from 'tap-parser';

const PAIRS = [
  ['test/e2e/lanes.test.ts', 'test/e2e/repair.test.ts'],
  ['test/e2e/handoff.test.ts', 'test/e2e/cdr.test.ts'],
];

const args = process.argv.slice(2);
const runs = args.length
  ? [args]
  : [...PAIRS.map((p) => ['--jobs=2', ...p]), PAIRS.flat().map((f) => `--exclude=${f}`)];

let passed = 0, failed = 0, skipped = 0, todo = 0;
const failures = [];

function tapRun(runArgs) {
  return new Promise((resolve) => {
    const tap = spawn(process.execPath, [
      'node_modules/tap/dist/esm/run.mjs', '--reporter=tap', ...runArgs,
    ], { stdio: ['ignore', 'pipe', 'inherit'] });
    let before = passed + failed;
    const parser = new Parser();
    const failedFiles = new Set();
    parser.on('child', (file) => {
      let points = 0;
      file.on('assert', (res) => {
        points++;
        if (res.skip) skipped++;
        else if (res.todo) todo++;
        else if (res.ok) passed++;
        else { failed++; failures.push(`${file.name} > ${res.name}`); failedFiles.add(file.name); }
      });
      file.on('complete', (fr) => {
        if (points === 0 && !fr.ok) { failed++; failures.push(`${file.name} (crashed)`); failedFiles.add(file.name); }
      });
    });
    // A file reported 'not ok' with none of its cases failing (it exited non-zero without a
    // case, or after its cases passed) is one failure, so that the last line agrees with the exit code.
    parser.on('assert', (res) => {
      if (res.ok || res.skip || res.todo || failedFiles.has(res.name)) return;
      failed++;
      failures.push(`${res.name} (the file failed: exit code, signal or timeout)`);
      failedFiles.add(res.name);
    });
    tap.stdout.on('data', (d) => process.stdout.write(d));
    tap.stdout.pipe(parser);
    tap.on('close', (code) => {
      // a tap run that failed without reporting a single case still fails the suite
      if (code !== 0 && passed + failed === before) { failed++; failures.push(`tap ${runArgs.join(' ')} (exit ${code})`); }
      before = passed + failed;
      resolve(code);
    });
  });
}

let exit = 0;
for (const r of runs) {
  const code = await tapRun(r);
  if (code !== 0) exit = 1;
}
if (failures.length) {
  console.log('\nFailed:');
  for (const f of failures) console.log(`  - ${f}`);
}
if (skipped || todo) console.log(`${skipped} skipped, ${todo} todo`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || exit !== 0 ? 1 : 0);
