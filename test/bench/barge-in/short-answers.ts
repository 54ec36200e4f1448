/**
 * Short answers after a read-back, in noise (`npm run bench -- barge-in --set short-answers`):
 * through the live media path (MediaEngine with VAD, one UDP peer per session), the agent
 * plays a 2 s read-back; 400 ms after it ends the caller answers "Yes." / "No." / "Yep."
 * in one of the outcome benchmark's voices (four espeak-ng variants the agent was never
 * tuned on and four flite voices, test/bench/outcomes/audio.ts), with pink noise at 15 and
 * 5 dB SNR (the noise runs over the clip and its 120 ms pads, silence around it, as the
 * outcome benchmark's caller sends it). Counts the answers that formed a turn
 * (speechEnd), and, on the same noise without the word, the noise-only items that formed
 * one (false turns).
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MediaEngine } from '../../../src/media/index.ts';
import type { TurnTunables } from '../../../src/vad/policy.ts';
import { CallerVoices, DEFAULT_VOICES, isUnseen } from '../outcomes/audio.ts';
import { RtpPeer, pool, sleep, waitFor } from './peer.ts';

export const SHORT_WORDS = ['Yes.', 'No.', 'Yep.'] as const;
export const SHORT_SNRS = [15, 5] as const;

export interface ShortItem {
  name: string;
  voice: string;
  word: string;
  snrDb: number;
  /** noise only (the answer's noise without the word) */
  noiseOnly: boolean;
  pcm: Int16Array;
}

/** The answers (each voice × word × SNR × seed) and, per answer, its noise alone. */
export function shortItems(seeds = [1, 2], voices: readonly string[] = DEFAULT_VOICES): ShortItem[] {
  const dir = join(tmpdir(), 'voice-agent-short-answers');
  mkdirSync(dir, { recursive: true });
  const cv = new CallerVoices(dir);
  const out: ShortItem[] = [];
  for (const voice of voices) {
    for (const word of SHORT_WORDS) {
      for (const snrDb of SHORT_SNRS) {
        for (const seed of seeds) {
          const clean = cv.say(voice, word);
          const noisy = cv.say(voice, word, snrDb, seed);
          const noise = Int16Array.from(noisy, (v, i) => v - clean[i]!);
          const name = `${voice}-${word.replace(/\W/g, '').toLowerCase()}-${snrDb}dB-s${seed}`;
          out.push({ name, voice, word, snrDb, noiseOnly: false, pcm: noisy });
          out.push({ name: `${name}-noise`, voice, word, snrDb, noiseOnly: true, pcm: noise });
        }
      }
    }
  }
  return out;
}

export interface ShortResult {
  item: ShortItem;
  events: string[];
  /** voiced ms of the turn (speechEnd), or 0 */
  voicedMs: number;
}

async function answerTrial(engine: MediaEngine, readBack: Int16Array, it: ShortItem, tun: Partial<TurnTunables>): Promise<ShortResult> {
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, vad: tun });
  const peer = await RtpPeer.open();
  const events: string[] = [];
  let voicedMs = 0;
  let done = false;
  for (const e of ['speechStart', 'bargeIn', 'falseInterruption', 'backchannel', 'pause', 'resume'] as const) s.on(e, () => events.push(e));
  s.on('speechEnd', (ev: { voicedMs: number }) => {
    events.push('speechEnd');
    voicedMs = ev.voicedMs;
  });
  s.on('playoutDone', () => (done = true));
  try {
    s.setRemote('127.0.0.1', peer.port);
    peer.start(s.localPort);
    s.play(readBack);
    await waitFor(() => done, readBack.length / 8 + 3000);
    await sleep(400);
    peer.say(it.pcm);
    await waitFor(() => peer.queuedMs === 0, it.pcm.length / 8 + 3000);
    await sleep(1500); // endpointing (700 ms) and then some
    return { item: it, events, voicedMs };
  } finally {
    peer.close();
    s.close();
  }
}

export interface ShortSummary {
  tunables: Partial<TurnTunables>;
  /** answers that formed a turn / answers, by SNR and voice family */
  turns: Record<string, { formed: number; items: number; missed: string[] }>;
  /** noise-only items that formed a turn */
  falseTurns: { formed: number; items: number; by: string[] };
}

export async function runShortAnswers(
  engine: MediaEngine, readBack: Int16Array, tun: Partial<TurnTunables>, parallel: number, items = shortItems(),
): Promise<{ summary: ShortSummary; results: ShortResult[] }> {
  const results = await pool(items, parallel, (it) => answerTrial(engine, readBack, it, tun));
  const turns: ShortSummary['turns'] = {};
  for (const r of results.filter((x) => !x.item.noiseOnly)) {
    for (const key of [`${r.item.snrDb}dB-${isUnseen(r.item.voice) ? 'espeak' : 'flite'}`, `${r.item.snrDb}dB`, 'all']) {
      const b = (turns[key] ??= { formed: 0, items: 0, missed: [] });
      b.items++;
      if (r.events.includes('speechEnd')) b.formed++;
      else if (key === 'all') b.missed.push(r.item.name);
    }
  }
  const noise = results.filter((x) => x.item.noiseOnly);
  const falseBy = noise.filter((r) => r.events.includes('speechEnd') || r.events.includes('speechStart'));
  return {
    summary: { tunables: tun, turns, falseTurns: { formed: falseBy.length, items: noise.length, by: falseBy.map((r) => r.item.name) } },
    results,
  };
}
