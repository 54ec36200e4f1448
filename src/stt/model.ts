/**
 * Per-tenant model files of the local recogniser: the domain trigram LM (built from
 * {@link domainSentences} with {@link buildArpa}, converted to binary by Debian's
 * `sphinx_lm_convert` when available) and a small pronunciation dictionary cut out of the
 * en-US cmudict that ships with pocketsphinx-en-us. Files are cached on disk keyed by a hash
 * of the corpus, so a tenant's model is built once per host and version.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { logger } from '../ops/log.ts';
import { buildArpa } from './lm.ts';
import { domainSentences } from './domain.ts';
import { grammarWords, pruneGrammar, sampleSentences, stateGrammar, toJsgf } from './grammar.ts';
import type { Expectation, Vocabulary } from './types.ts';

const log = logger('stt');
const execFileP = promisify(execFile);

/** Bump when the corpus generator or LM builder changes, so caches rebuild. */
export const MODEL_VERSION = 'm2';

export interface ModelPaths {
  /**
   * Acoustic model directory (16 kHz), from `VOICE_STT_HMM`.
   * @defaultValue '/usr/share/pocketsphinx/model/en-us/en-us'
   */
  hmm: string;
  /**
   * Full pronunciation dictionary the small one is cut from, from `VOICE_STT_CMUDICT`.
   * @defaultValue '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict'
   */
  cmudict: string;
  /**
   * Where built models are cached, from `VOICE_STT_CACHE`.
   * @defaultValue `<tmpdir>/voice-agent-stt`
   */
  cacheDir: string;
}

export function defaultModelPaths(env: NodeJS.ProcessEnv = process.env): ModelPaths {
  return {
    hmm: env.VOICE_STT_HMM ?? '/usr/share/pocketsphinx/model/en-us/en-us',
    cmudict: env.VOICE_STT_CMUDICT ?? '/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict',
    cacheDir: env.VOICE_STT_CACHE ?? join(tmpdir(), 'voice-agent-stt'),
  };
}

/** What a decoder is built from. */
export interface DomainModel {
  hmm: string;
  /** trigram LM (binary or ARPA); '' for a grammar model */
  lm: string;
  dict: string;
  /** JSGF grammar file of a state model decoded with pocketsphinx's FSG search */
  jsgf?: string;
  /** 'open' (the tenant's domain LM) or the {@link Expectation} of a state model */
  state?: string;
  /** Cache key (hash of version, acoustic model path and corpus). */
  key: string;
  /** Words in the dictionary. */
  words: number;
  /** Corpus words the cmudict did not know (dropped from the corpus). */
  unknown: string[];
}

function atomicWrite(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Pronunciations of the wanted words (all variants, `word(2)` included). */
function cutDictionary(cmudict: string, wanted: ReadonlySet<string>): Map<string, string[]> {
  if (!existsSync(cmudict)) {
    throw new Error(`pronunciation dictionary ${cmudict} is missing: install the Debian package pocketsphinx-en-us`);
  }
  const out = new Map<string, string[]>();
  for (const line of readFileSync(cmudict, 'utf8').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const head = line.slice(0, sp);
    const base = head.replace(/\(\d+\)$/, '');
    if (!wanted.has(base)) continue;
    const phones = line.slice(sp + 1).replace(/#.*$/, '').trim();
    if (!phones) continue;
    const l = out.get(base);
    if (l) l.push(phones);
    else out.set(base, [phones]);
  }
  return out;
}

function dictText(dict: Map<string, string[]>): string {
  const dictLines: string[] = [];
  for (const w of [...dict.keys()].sort()) {
    dict.get(w)!.forEach((ph, i) => dictLines.push(`${i === 0 ? w : `${w}(${i + 1})`} ${ph}`));
  }
  return dictLines.join('\n') + '\n';
}

function cached(meta: string): DomainModel | undefined {
  if (!existsSync(meta)) return undefined;
  try {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as DomainModel;
    if (existsSync(m.dict) && (m.jsgf ? existsSync(m.jsgf) : existsSync(m.lm))) return m;
  } catch {
    /* rebuild */
  }
  return undefined;
}

/** ARPA → pocketsphinx binary LM (Debian's sphinx_lm_convert); the ARPA file when that fails. */
async function convertLm(arpaFile: string, base: string): Promise<string> {
  try {
    const bin = `${base}.lm.bin`;
    const tmp = `${bin}.${process.pid}.tmp`;
    await execFileP('sphinx_lm_convert', ['-i', arpaFile, '-o', tmp, '-ofmt', 'dmp'], { timeout: 30_000 });
    renameSync(tmp, bin);
    return bin;
  } catch (err) {
    log.warn('sphinx_lm_convert failed (Debian package sphinxbase-utils); using the ARPA model', { err: (err as Error).message });
    return arpaFile;
  }
}

/** How a state is decoded: a JSGF grammar (FSG search) or a trigram LM sampled from the same grammar. */
export type StateModelKind = 'jsgf' | 'lm';

/**
 * Build (or find in the cache) the model of one dialogue state: the state grammar of
 * {@link stateGrammar} (tenant SKUs, history SKUs weighted first, known POs) as a JSGF file,
 * or as a trigram LM over sentences sampled from it, with its own small dictionary.
 * Undefined for states without a grammar ('open', 'message', 'name').
 */
export async function buildStateModel(
  expect: Expectation, vocab: Vocabulary = {}, history: ReadonlyArray<{ sku: string }> = [],
  kind: StateModelKind = 'jsgf', paths: ModelPaths = defaultModelPaths(),
): Promise<DomainModel | undefined> {
  const raw = stateGrammar(expect, vocab, history);
  if (!raw) return undefined;
  if (!existsSync(join(paths.hmm, 'mdef'))) {
    throw new Error(`acoustic model ${paths.hmm} is missing: install the Debian package pocketsphinx-en-us`);
  }
  const rawJsgf = toJsgf(raw);
  const key = createHash('sha256').update(`${MODEL_VERSION}\n${kind}\n${paths.hmm}\n${paths.cmudict}\n${rawJsgf}`).digest('hex').slice(0, 16);
  mkdirSync(paths.cacheDir, { recursive: true });
  const base = join(paths.cacheDir, `${expect}-${key}`);
  const meta = `${base}.json`;
  const hit = cached(meta);
  if (hit) return hit;
  const t0 = performance.now();
  const wanted = grammarWords(raw);
  const dict = cutDictionary(paths.cmudict, wanted);
  const unknown = [...wanted].filter((w) => !dict.has(w)).sort();
  const g = unknown.length ? pruneGrammar(raw, (w) => dict.has(w)) : raw;
  const dictFile = `${base}.dict`;
  atomicWrite(dictFile, dictText(dict));
  let model: DomainModel;
  if (kind === 'jsgf') {
    const jsgf = `${base}.gram`;
    atomicWrite(jsgf, toJsgf(g));
    model = { hmm: paths.hmm, lm: '', dict: dictFile, jsgf, key, words: dict.size, unknown, state: expect };
  } else {
    const corpus = sampleSentences(g).map((x) => x.split(' '));
    const arpaFile = `${base}.arpa`;
    atomicWrite(arpaFile, buildArpa(corpus));
    model = { hmm: paths.hmm, lm: await convertLm(arpaFile, base), dict: dictFile, key, words: dict.size, unknown, state: expect };
  }
  atomicWrite(meta, JSON.stringify(model));
  log.info('built state model', { state: expect, kind, key, words: dict.size, unknown: unknown.length, ms: Math.round(performance.now() - t0) });
  return model;
}

/**
 * Build (or find in the cache) the domain LM and dictionary for a vocabulary.
 * Heavy work runs only on a cache miss (~100 ms for the demo catalogue).
 */
export async function buildDomainModel(vocab: Vocabulary = {}, paths: ModelPaths = defaultModelPaths()): Promise<DomainModel> {
  if (!existsSync(join(paths.hmm, 'mdef'))) {
    throw new Error(`acoustic model ${paths.hmm} is missing: install the Debian package pocketsphinx-en-us`);
  }
  const sentences = domainSentences(vocab);
  const key = createHash('sha256').update(`${MODEL_VERSION}\n${paths.hmm}\n${paths.cmudict}\n${sentences.join('\n')}`).digest('hex').slice(0, 16);
  mkdirSync(paths.cacheDir, { recursive: true });
  const base = join(paths.cacheDir, key);
  const meta = `${base}.json`;
  const hit = cached(meta);
  if (hit) return hit;
  const t0 = performance.now();
  const wanted = new Set<string>();
  for (const s of sentences) for (const w of s.split(' ')) wanted.add(w);
  const dict = cutDictionary(paths.cmudict, wanted);
  const unknown = [...wanted].filter((w) => !dict.has(w)).sort();
  const corpus = sentences.map((s) => s.split(' ').filter((w) => dict.has(w))).filter((s) => s.length > 0);
  const arpa = buildArpa(corpus);
  const arpaFile = `${base}.arpa`;
  atomicWrite(arpaFile, arpa);
  const dictFile = `${base}.dict`;
  atomicWrite(dictFile, dictText(dict));
  const lm = await convertLm(arpaFile, base);
  const model: DomainModel = { hmm: paths.hmm, lm, dict: dictFile, key, words: dict.size, unknown, state: 'open' };
  atomicWrite(meta, JSON.stringify(model));
  log.info('built domain language model', { key, sentences: corpus.length, words: dict.size, unknown: unknown.length, ms: Math.round(performance.now() - t0) });
  return model;
}
