/**
 * Benchmark: per-state recognition. The same caller audio decoded with the open-domain
 * model and with the state grammar of the state the agent is in.
 *
 *   npm run bench -- stt-grammars [--modes open,state,jsgf,lm,jsgf-only] [--voices all|espeak|flite] [--noise clean,15]
 *                                 [--states sku,quantity,po,yesno,department,digits] [--verbose]
 *
 * Caller answers of each state (corpus.ts: SKUs the ways people say them, quantities, PO
 * numbers lettered and not, yes/no, departments, digits; plus "I want to talk to a person",
 * "agent", "operator" in every state) are synthesised with espeak-ng voices the recogniser
 * was never tuned on (en-us, +f3, +m7, en-gb-x-rp; 140–180 wpm) and flite voices (kal, slt),
 * at 8 kHz through G.711 µ-law, clean and with pink noise at 15 dB SNR (sox).
 * Modes (default open,state): open = the tenant's open-domain LM (before); state = what the
 * provider does by default (after: per state JSGF or state LM, STATE_MODEL_DEFAULTS, checked
 * against the open model's lattice); jsgf = JSGF grammars for every state; lm = state LMs
 * (sampled from the same grammars) for every state; jsgf-only = JSGF without the open check.
 * Prints per state and mode, and per state, mode and voice: sentence accuracy, slot accuracy
 * (the SKU / quantity / PO / yes-no / department / digits extracted right, or the escape
 * caught), WER, decode ms after end of speech (p50, p95); slot accuracy of the answers with
 * confidence ≥ 0.5 and below; the JSON summary is the last line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setLogLevel } from '../../../src/ops/log.ts';
import { CrmErpStore } from '../../../src/crm-erp/store.ts';
import { PocketsphinxStt } from '../../../src/stt/pocketsphinx.ts';
import type { Expectation, Vocabulary } from '../../../src/stt/types.ts';
import { ESPEAK_VOICES, FLITE_VOICES, haveEspeak, phone, speak, type CallerVoice } from './audio.ts';
import { STATES, editDistance, items, slotOf, words } from './corpus.ts';

setLogLevel('warn');
const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'open,state' },
    voices: { type: 'string', default: 'all' },
    noise: { type: 'string', default: 'clean,15' },
    states: { type: 'string', default: STATES.join(',') },
    verbose: { type: 'boolean', default: false },
  },
});
if (!haveEspeak()) {
  console.error('stt-grammars needs espeak-ng and sox (Debian packages espeak-ng, sox)');
  process.exit(2);
}
const MODES = values.modes.split(',');
const VOICES: CallerVoice[] = values.voices === 'espeak' ? [...ESPEAK_VOICES] : values.voices === 'flite' ? [...FLITE_VOICES] : [...ESPEAK_VOICES, ...FLITE_VOICES];
const NOISE = values.noise.split(',').map((n) => (n === 'clean' ? undefined : Number(n)));
const STATE_LIST = values.states.split(',') as Expectation[];

const cacheDir = mkdtempSync(join(tmpdir(), 'stt-grammars-'));
process.on('exit', () => rmSync(cacheDir, { recursive: true, force: true }));
const store = new CrmErpStore();
const vocab: Vocabulary = { ...store.vocabulary(), poNumbers: ['PO12345', 'PO12388', 'PO77410', 'EBS-2291', 'TVF-1009', 'PO55021', 'PO88120'] };
store.close();
const history = [{ sku: 'HX-4410' }, { sku: 'CF-1050' }, { sku: 'ST-1100' }];

const providers: Record<string, { stt: PocketsphinxStt; expect: boolean }> = {
  open: { stt: new PocketsphinxStt({ cacheDir }), expect: false },
  state: { stt: new PocketsphinxStt({ cacheDir }), expect: true },
  jsgf: { stt: new PocketsphinxStt({ cacheDir, stateModels: 'jsgf' }), expect: true },
  'jsgf-only': { stt: new PocketsphinxStt({ cacheDir, stateModels: 'jsgf', verifyWithOpen: false }), expect: true },
  lm: { stt: new PocketsphinxStt({ cacheDir, stateModels: 'lm' }), expect: true },
};
for (const m of MODES) if (!providers[m]) throw new Error(`unknown mode ${m}`);

interface Row {
  state: string; voice: string; noise: string; mode: string; ref: string; hyp: string; grammar: string;
  exact: boolean; errors: number; refWords: number; slotOk: boolean; escape: boolean; ms: number; confidence: number;
}
const rows: Row[] = [];
const list = items(STATE_LIST);
const t0 = performance.now();
for (const p of Object.values(providers)) await p.stt.prepare(vocab);
for (const voice of VOICES) {
  for (const it of list) {
    const clean = await speak(it.say, voice);
    for (const snr of NOISE) {
      const pcm = phone(clean, snr);
      for (const mode of MODES) {
        const p = providers[mode]!;
        const s = p.stt.createStream({ sampleRate: 8000, vocabulary: vocab, expect: p.expect ? it.state : 'open', history });
        for (let i = 0; i < pcm.length; i += 160) s.push(pcm.subarray(i, i + 160));
        const r = await s.end();
        const e = editDistance(words(it.ref), words(r.text));
        const slotOk = slotOf(it.state, r.text, it.slot) === it.slot;
        rows.push({
          state: it.state, voice: voice.name, noise: snr === undefined ? 'clean' : `${snr}dB`, mode, ref: it.ref, hyp: r.text,
          grammar: r.grammar ?? 'open', exact: e === 0, errors: e, refWords: words(it.ref).length, slotOk,
          escape: it.slot === 'escape', ms: r.ms, confidence: r.confidence,
        });
        if (values.verbose && !slotOk) console.log(`  ${mode} ${it.state} ${voice.name} ${snr ?? 'clean'}: "${it.ref}" → "${r.text}" (${r.grammar}, conf ${r.confidence.toFixed(2)})`);
      }
    }
  }
}

const pct = (a: number, b: number): string => (b ? `${((a / b) * 100).toFixed(0)}%` : '-');
const q = (xs: number[], p: number): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
interface Agg { n: number; exact: number; slot: number; errors: number; refWords: number; ms: number[]; hiN: number; hiOk: number; loN: number; loOk: number }
function agg(rs: Row[]): Agg {
  const a: Agg = { n: 0, exact: 0, slot: 0, errors: 0, refWords: 0, ms: [], hiN: 0, hiOk: 0, loN: 0, loOk: 0 };
  for (const r of rs) {
    a.n++; a.exact += +r.exact; a.slot += +r.slotOk; a.errors += r.errors; a.refWords += r.refWords; a.ms.push(r.ms);
    if (r.confidence >= 0.5) { a.hiN++; a.hiOk += +r.slotOk; } else { a.loN++; a.loOk += +r.slotOk; }
  }
  return a;
}
const noises = [...new Set(rows.map((r) => r.noise))];
const summary: Record<string, unknown> = {};

console.log(`\nstt-grammars: ${list.length} answers × ${VOICES.length} voices × ${noises.length} noise levels, modes ${MODES.join(', ')} ` +
  `(${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
console.log('per state (all voices): sentence acc / slot acc / WER / decode ms p50 p95 / slot acc when conf ≥ 0.5 (n) / when < 0.5 (n)');
for (const noise of noises) {
  console.log(`\n[${noise}]`);
  console.log(`${'state'.padEnd(12)}${'mode'.padEnd(11)}${'sent'.padStart(6)}${'slot'.padStart(6)}${'WER'.padStart(6)}${'p50'.padStart(6)}${'p95'.padStart(6)}  ${'conf≥.5'.padEnd(12)}conf<.5`);
  for (const state of [...STATE_LIST, 'escape' as const]) {
    for (const mode of MODES) {
      const rs = rows.filter((r) => r.noise === noise && r.mode === mode && (state === 'escape' ? r.escape : r.state === state && !r.escape));
      const a = agg(rs);
      console.log(`${state.padEnd(12)}${mode.padEnd(11)}${pct(a.exact, a.n).padStart(6)}${pct(a.slot, a.n).padStart(6)}${pct(a.errors, a.refWords).padStart(6)}` +
        `${q(a.ms, 50).toFixed(0).padStart(6)}${q(a.ms, 95).toFixed(0).padStart(6)}  ${`${pct(a.hiOk, a.hiN)} (${a.hiN})`.padEnd(12)}${pct(a.loOk, a.loN)} (${a.loN})`);
      summary[`${noise}/${state}/${mode}`] = { n: a.n, sentence: a.exact / a.n, slot: a.slot / a.n, wer: a.errors / a.refWords, p50_ms: q(a.ms, 50), p95_ms: q(a.ms, 95),
        slot_conf_hi: a.hiN ? a.hiOk / a.hiN : null, n_conf_hi: a.hiN, slot_conf_lo: a.loN ? a.loOk / a.loN : null, n_conf_lo: a.loN };
    }
  }
}

console.log('\nslot accuracy per state and voice (escape requests included in each state)');
for (const noise of noises) {
  console.log(`\n[${noise}]`);
  console.log(`${'state'.padEnd(12)}${'mode'.padEnd(11)}${VOICES.map((v) => v.name.padStart(15)).join('')}`);
  for (const state of STATE_LIST) {
    for (const mode of MODES) {
      const cells = VOICES.map((v) => {
        const a = agg(rows.filter((r) => r.noise === noise && r.mode === mode && r.state === state && r.voice === v.name));
        return `${pct(a.exact, a.n)}/${pct(a.slot, a.n)}`.padStart(15);
      });
      console.log(`${state.padEnd(12)}${mode.padEnd(11)}${cells.join('')}`);
    }
  }
}
console.log('(cells: sentence accuracy / slot accuracy)');

const overall: Record<string, unknown> = {};
for (const noise of noises) {
  for (const mode of MODES) {
    for (const group of ['espeak', 'flite']) {
      const a = agg(rows.filter((r) => r.noise === noise && r.mode === mode && VOICES.find((v) => v.name === r.voice)!.engine === group));
      if (a.n) overall[`${noise}/${mode}/${group}`] = { sentence: a.exact / a.n, slot: a.slot / a.n, wer: a.errors / a.refWords, p50_ms: q(a.ms, 50) };
    }
  }
}
console.log('\noverall (voice group): sentence / slot / WER / p50 ms');
for (const [k, v] of Object.entries(overall)) {
  const x = v as { sentence: number; slot: number; wer: number; p50_ms: number };
  console.log(`  ${k.padEnd(26)} ${(x.sentence * 100).toFixed(0).padStart(4)}% ${(x.slot * 100).toFixed(0).padStart(4)}% ${(x.wer * 100).toFixed(0).padStart(4)}% ${x.p50_ms.toFixed(0).padStart(5)}`);
}
console.log(JSON.stringify({ bench: 'stt-grammars', voices: VOICES.map((v) => v.name), modes: MODES, answers: list.length, overall, states: summary }));
