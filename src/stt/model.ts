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
import type { Vocabulary } from './types.ts';

const log = logger('stt');
const execFileP = promisify(execFile);

/** Bump when the corpus generator or LM builder changes, so caches rebuild. */
export const MODEL_VERSION = 'm1';

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
  lm: string;
  dict: string;
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
  if (existsSync(meta)) {
    try {
      const m = JSON.parse(readFileSync(meta, 'utf8')) as DomainModel;
      if (existsSync(m.lm) && existsSync(m.dict)) return m;
    } catch {
      /* rebuild */
    }
  }
  const t0 = performance.now();
  const wanted = new Set<string>();
  for (const s of sentences) for (const w of s.split(' ')) wanted.add(w);
  const dict = cutDictionary(paths.cmudict, wanted);
  const unknown = [...wanted].filter((w) => !dict.has(w)).sort();
  const corpus = sentences.map((s) => s.split(' ').filter((w) => dict.has(w))).filter((s) => s.length > 0);
  const arpa = buildArpa(corpus);
  const arpaFile = `${base}.arpa`;
  atomicWrite(arpaFile, arpa);
  const dictLines: string[] = [];
  for (const w of [...dict.keys()].sort()) {
    dict.get(w)!.forEach((ph, i) => dictLines.push(`${i === 0 ? w : `${w}(${i + 1})`} ${ph}`));
  }
  const dictFile = `${base}.dict`;
  atomicWrite(dictFile, dictLines.join('\n') + '\n');
  let lm = arpaFile;
  try {
    const bin = `${base}.lm.bin`;
    const tmp = `${bin}.${process.pid}.tmp`;
    await execFileP('sphinx_lm_convert', ['-i', arpaFile, '-o', tmp, '-ofmt', 'dmp'], { timeout: 30_000 });
    renameSync(tmp, bin);
    lm = bin;
  } catch (err) {
    log.warn('sphinx_lm_convert failed (Debian package sphinxbase-utils); using the ARPA model', { err: (err as Error).message });
  }
  const model: DomainModel = { hmm: paths.hmm, lm, dict: dictFile, key, words: dict.size, unknown };
  atomicWrite(meta, JSON.stringify(model));
  log.info('built domain language model', { key, sentences: corpus.length, words: dict.size, unknown: unknown.length, ms: Math.round(performance.now() - t0) });
  return model;
}
