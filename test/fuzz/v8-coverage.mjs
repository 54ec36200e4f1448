#!/usr/bin/env node
// Summarise V8 precise coverage (NODE_V8_COVERAGE=<dir>) of a TypeScript fuzz target:
//   node test/fuzz/v8-coverage.mjs <dir> <target-name>
// For every module under src/ the target loaded: functions entered / functions V8 reports, and
// blocks (branch ranges inside those functions) executed / blocks. Prints one line per module
// and a JSON summary line {"target":…,"functions":[hit,total],"blocks":[hit,total],"modules":{…}}.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, target] = process.argv.slice(2);
const modules = {};
for (const f of readdirSync(dir)) {
  if (!f.endsWith('.json')) continue;
  const { result } = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  for (const script of result) {
    const m = /\/src\/(.+\.ts)$/.exec(script.url.split('?')[0]);
    if (!m) continue;
    const top = script.functions.find((fn) => fn.functionName === '' && fn.ranges[0]?.startOffset === 0);
    let fnTotal = 0, fnHit = 0, blTotal = 0, blHit = 0;
    for (const fn of script.functions) {
      if (fn === top) continue;
      fnTotal++;
      if (fn.ranges[0].count > 0) fnHit++;
      for (const r of fn.ranges.slice(1)) { blTotal++; if (r.count > 0) blHit++; }
    }
    const prev = modules[m[1]];
    if (!prev || fnHit + blHit > prev.fnHit + prev.blHit) modules[m[1]] = { fnHit, fnTotal, blHit, blTotal };
  }
}
let fh = 0, ft = 0, bh = 0, bt = 0;
const out = {};
for (const [name, s] of Object.entries(modules).sort()) {
  console.log(`fuzz: ${target} coverage ${name}: functions ${s.fnHit}/${s.fnTotal}, blocks ${s.blHit}/${s.blTotal}`);
  out[name] = { functions: [s.fnHit, s.fnTotal], blocks: [s.blHit, s.blTotal] };
  fh += s.fnHit; ft += s.fnTotal; bh += s.blHit; bt += s.blTotal;
}
console.log(JSON.stringify({ target, functions: [fh, ft], blocks: [bh, bt], modules: out }));
