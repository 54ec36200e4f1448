/**
 * Test/benchmark pipeline for real audio through the VAD stack:
 *   16 kHz PCM → native FrameCutter (build/vad-test/vad_test cut), or at 8 kHz (the
 *               default model rate) the item taken down to 8 kHz and cut like the media thread
 *             → VadBatcher (all items as concurrent streams, one run per tick)
 *             → native TurnState (build/vad-test/vad_test turn) with the tunables the product
 *               resolves at that rate (resolveTurnTunables) → events.
 * The C++ driver (test/native/vad_test_main.cc, over native/vad/) is compiled
 * here (g++ -std=c++17 -Wall -Wextra -Werror) when missing or older than its
 * sources.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../../src/media/native.ts';
import { VAD_CONTEXT_8K, VAD_FRAME_8K, VAD_FRAME_MS, VAD_WINDOW, VAD_WINDOW_8K, type VadBatcher } from '../../src/vad/batch.ts';
import { resolveTurnTunables, type TurnTunables } from '../../src/vad/policy.ts';
import { vadSampleRate, type VadSampleRate } from '../../src/vad/rate.ts';
import { readItem, type CorpusItem } from './corpus.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outDir = join(root, 'build', 'vad-test');
export const VAD_TOOL = join(outDir, 'vad_test');
const SOURCES = [
  join(root, 'test', 'native', 'vad_test_main.cc'),
  ...['frame_cutter.cc', 'read_ahead.cc', 'turn_state.cc', 'frame_cutter.h', 'read_ahead.h', 'turn_state.h'].map((f) =>
    join(root, 'native', 'vad', f),
  ),
  join(root, 'native', 'duck.h'),
];

/** Compile the native VAD test driver if needed; returns its path. */
export function ensureVadTool(): string {
  const newest = Math.max(...SOURCES.map((f) => statSync(f).mtimeMs));
  if (existsSync(VAD_TOOL) && statSync(VAD_TOOL).mtimeMs >= newest) return VAD_TOOL;
  mkdirSync(outDir, { recursive: true });
  execFileSync('g++', [
    '-std=c++17', '-Wall', '-Wextra', '-Werror', '-O2', `-I${join(root, 'native', 'vad')}`,
    ...SOURCES.filter((f) => f.endsWith('.cc')), '-o', VAD_TOOL,
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
  return VAD_TOOL;
}

/** Cut an item's 16 kHz PCM into 576-float windows with the native FrameCutter. */
export function cutWindows(item: CorpusItem): Float32Array[] {
  const out = join(outDir, `win-${process.pid}.f32`);
  execFileSync(ensureVadTool(), ['cut', item.file, out]);
  const b = readFileSync(out);
  rmSync(out, { force: true });
  const all = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  const wins: Float32Array[] = [];
  for (let i = 0; i + VAD_WINDOW <= all.length; i += VAD_WINDOW) wins.push(all.subarray(i, i + VAD_WINDOW));
  return wins;
}

/**
 * An item's 8 kHz model windows (32 context + 256 new), as the media thread cuts them at
 * VOICE_VAD_RATE=8000: the item's 16 kHz PCM taken down to 8 kHz (the addon's resampler).
 */
export function cutWindows8k(item: CorpusItem): Float32Array[] {
  const pcm = native.resample(readItem(item), 16000, 8000);
  const out: Float32Array[] = [];
  for (let f = 0; (f + 1) * VAD_FRAME_8K <= pcm.length; f++) {
    const w = new Float32Array(VAD_WINDOW_8K);
    for (let k = 0; k < VAD_WINDOW_8K; k++) {
      const n = f * VAD_FRAME_8K - VAD_CONTEXT_8K + k;
      w[k] = n < 0 ? 0 : pcm[n]! / 32768;
    }
    out.push(w);
  }
  return out;
}

/**
 * Speech probabilities of every item, all items live at once as streams of one
 * VadBatcher (one run per tick over every stream that still has audio). Windows at the
 * batcher's rate (VOICE_VAD_RATE picks 8 kHz for the offline tests and benches too).
 */
export async function probabilities(batcher: VadBatcher, items: CorpusItem[], firstId = 1): Promise<number[][]> {
  const wins = items.map(batcher.options.sampleRate === 8000 ? cutWindows8k : cutWindows);
  const probs: number[][] = items.map(() => []);
  items.forEach((_, i) => batcher.addStream(firstId + i));
  const maxLen = Math.max(...wins.map((w) => w.length));
  for (let t = 0; t < maxLen; t++) {
    items.forEach((_, i) => {
      if (t < wins[i]!.length) batcher.submit(firstId + i, wins[i]![t]!);
    });
    const r = await batcher.runTick();
    items.forEach((_, i) => {
      const p = r.get(firstId + i);
      if (p !== undefined) probs[i]!.push(p);
    });
  }
  items.forEach((_, i) => batcher.removeStream(firstId + i));
  return probs;
}

export interface FrameFlags {
  agent?: boolean | ((frame: number) => boolean);
  uninterruptible?: boolean;
  /** Frame from which the STT layer reports "partial ends in digits" (until the turn ends). */
  digitsFrom?: number | ((frame: number) => boolean);
}

export interface TurnEventRec {
  frame: number;
  ms: number;
  events: number;
  startFrame: number;
  endFrame: number;
  voicedMs: number;
}

/**
 * Drive the native TurnState with per-frame probabilities; returns frames that produced events.
 * `tunables` overlay the product's defaults at `rate` (the rate the probabilities were made at;
 * default `VOICE_VAD_RATE`, as for a VadBatcher created without options).
 */
export function turnEvents(
  probs: number[], flags: FrameFlags = {}, tunables: Partial<TurnTunables> = {}, rate: VadSampleRate = vadSampleRate(),
): TurnEventRec[] {
  const agentAt = (f: number): boolean => (typeof flags.agent === 'function' ? flags.agent(f) : !!flags.agent);
  const digitsAt = (f: number): boolean =>
    typeof flags.digitsFrom === 'function' ? flags.digitsFrom(f) : flags.digitsFrom !== undefined && f >= flags.digitsFrom;
  const lines = probs.map((p, f) => `${p} ${agentAt(f) ? 1 : 0} ${flags.uninterruptible ? 1 : 0} ${digitsAt(f) ? 1 : 0}`);
  const args = ['turn', ...Object.entries(resolveTurnTunables(tunables, rate)).map(([k, v]) => `${k}=${v}`)];
  const out = execFileSync(ensureVadTool(), args, { input: lines.join('\n') + '\n' }).toString();
  const recs: TurnEventRec[] = [];
  out.trim().split('\n').forEach((line, frame) => {
    const [ev, s, e, v] = line.split(' ').map(Number);
    if (ev) recs.push({ frame, ms: frame * VAD_FRAME_MS, events: ev!, startFrame: s!, endFrame: e!, voicedMs: v! });
  });
  return recs;
}

/** Frames (32 ms) with probability >= threshold. */
export function voicedFrames(probs: number[], threshold = 0.5): number {
  return probs.filter((p) => p >= threshold).length;
}
