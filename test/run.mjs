#!/usr/bin/env node
// Runs the tap suite and prints a final "N passed, N failed" line computed from
// the real TAP stream: one point per top-level test case in each test file; a
// file that crashes before reporting any case counts as one failure.
import { spawn } from 'node:child_process';
import { Parser } from 'tap-parser';

const args = process.argv.slice(2);
const tap = spawn(process.execPath, [
  'node_modules/tap/dist/esm/run.mjs', '--reporter=tap', ...args,
], { stdio: ['ignore', 'pipe', 'inherit'] });

let passed = 0, failed = 0, skipped = 0, todo = 0;
const failures = [];
const parser = new Parser();
parser.on('child', (file) => {
  let points = 0;
  file.on('assert', (res) => {
    points++;
    if (res.skip) skipped++;
    else if (res.todo) todo++;
    else if (res.ok) passed++;
    else { failed++; failures.push(`${file.name} > ${res.name}`); }
  });
  file.on('complete', (fr) => {
    if (points === 0 && !fr.ok) { failed++; failures.push(`${file.name} (crashed)`); }
  });
});
tap.stdout.on('data', (d) => process.stdout.write(d));
tap.stdout.pipe(parser);
tap.on('close', (code) => {
  if (failures.length) {
    console.log('\nFailed:');
    for (const f of failures) console.log(`  - ${f}`);
  }
  if (skipped || todo) console.log(`${skipped} skipped, ${todo} todo`);
  if (failed === 0 && passed === 0 && code !== 0) failed = 1;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 || code !== 0 ? 1 : 0);
});
