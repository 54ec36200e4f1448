/**
 * Calls through the impairment relay (`voice-agent impair`, its own process), shared by
 * test/e2e/impairment.test.ts and the `impairment` benchmark: one scripted call per profile
 * (ask for order status, key the PO, talk over the answer), judged from the CDR and the
 * relay's own counters.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './server.ts';
import { cdrList } from './cdr.ts';
import { fliteSay } from './audio.ts';
import { placeCall } from './caller.ts';
import type { CdrRecord } from '../../src/cdr/index.ts';
import type { RelayStats } from '../../src/qa/impair.ts';

export interface Relay { proc: ChildProcess; port: number; stop(): Promise<RelayStats> }

/** Start `voice-agent impair --target 127.0.0.1:<sipPort> --profile <profile> --seed <seed>`. */
export async function startRelay(sipPort: number, profile: string, seed = 7): Promise<Relay> {
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'voice-agent.mjs'), 'impair', '--target', `127.0.0.1:${sipPort}`, '--profile', profile, '--seed', String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${err}`)), 20000);
    const check = (): void => {
      const m = /"event":"ready","sip":"[^:]+:(\d+)"/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (c) => { clearTimeout(timer); reject(new Error(`relay exited ${c}: ${err}`)); });
  });
  return {
    proc, port,
    stop: () => new Promise<RelayStats>((resolve) => {
      proc.once('exit', () => resolve(JSON.parse(out.split('\n').find((l) => l.includes('"event":"stats"')) ?? '{}') as RelayStats));
      proc.kill('SIGTERM');
    }),
  };
}

let audio: { question: Int16Array; over: Int16Array } | undefined;

export interface ImpairedCall {
  profile: string;
  row?: CdrRecord;
  /** what the recogniser made of the spoken question (from the CDR transcript) */
  heard: string;
  stats: RelayStats;
}

/** One call through a relay with `profile` to the server on `sipPort`, its CDR read from `cdrDb`. */
export async function callThrough(sipPort: number, cdrDb: string, profile: string, seed = 7): Promise<ImpairedCall> {
  audio ??= { question: fliteSay('What is the status of my order', 'kal'), over: fliteSay('Wait, I have another question about that order please', 'kal') };
  const a = audio;
  const r = await startRelay(sipPort, profile, seed);
  const call = await placeCall({
    port: r.port, to: '18005550100', from: '+14155550142', maxCallMs: 90_000,
    script: async (ctl) => {
      await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 20000 }); // greeting
      await ctl.say(a.question);
      await ctl.waitForAgent({ silenceMs: 1200, timeoutMs: 20000 }); // "what is the PO number?"
      await ctl.dtmf('12345#');
      // the status answer is a long sentence: talk over it once it has started
      await ctl.pause(1800);
      await ctl.say(a.over);
      await ctl.waitForAgent({ silenceMs: 1500, timeoutMs: 20000 });
      await ctl.pause(300);
    },
  });
  const stats = await r.stop();
  let row: CdrRecord | undefined;
  for (let i = 0; i < 50 && !row?.media; i++) {
    row = (await cdrList({ CDR_DB: cdrDb })).find((x) => x.sipCallId === call.callId && x.status === 'completed');
    if (!row?.media) await new Promise((res) => setTimeout(res, 200));
  }
  const heard = row?.transcript.find((l) => l.role === 'caller' && !l.dtmf)?.text ?? '';
  return { profile, row, heard, stats };
}

/** Word error rate of `hyp` against `ref` (Levenshtein over words / reference length). */
export function wer(ref: string, hyp: string): number {
  const a = ref.toLowerCase().split(/\s+/).filter(Boolean);
  const b = hyp.toLowerCase().split(/\s+/).filter(Boolean);
  if (!a.length) return b.length ? 1 : 0;
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)] as number[]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]! / a.length;
}

/** One line of the impairment table. */
export function tableRow(o: ImpairedCall, cleanHeard: string): string {
  const m = o.row?.media;
  return `${o.profile.padEnd(9)} | ${`${o.stats.up.dropped}/${o.stats.up.duplicated}/${o.stats.up.reordered}`.padEnd(23)} | ${String(m?.lossInPct).padEnd(13)} | ${String(m?.mos).padEnd(4)} | ${String(o.row?.bargeIns).padEnd(9)} | ${wer(cleanHeard, o.heard).toFixed(2)} | ${o.row?.outcome}`;
}
export const TABLE_HEAD = 'profile   | relay up drop/dup/reord | CDR loss in % | MOS  | barge-ins | WER  | outcome';
