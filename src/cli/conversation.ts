/**
 * A scripted conversation with the agent over SIP — what `voice-agent call` runs and what
 * the end-to-end lane tests use: wait for the greeting, then per turn speak (flite text or a
 * WAV file, optionally with noise) or key DTMF, wait until the agent has answered and gone
 * quiet, and transcribe each answer with the local recogniser when it is available.
 */
import { readFileSync } from 'node:fs';
import { placeCall, type AgentSegment, type CallOptions, type CallResult } from './caller.ts';
import { parseWav } from './rtp.ts';
import { resample } from '../tts/resample.ts';
import type { SttProvider, Vocabulary } from '../stt/types.ts';

/** One caller turn. */
export type CallerTurn =
  | { say: string; voice?: string; noiseSnrDb?: number }
  | { wav: string }
  | { pcm: Int16Array; label?: string }
  | { dtmf: string };

export interface ConversationOptions extends Omit<CallOptions, 'script' | 'send' | 'hangupAfterMs'> {
  turns: CallerTurn[];
  /** flite voice for `say` turns. @defaultValue 'slt' */
  voice?: string;
  /** quiet after the agent's speech that ends its turn, ms. @defaultValue 1500 */
  silenceMs?: number;
  /** longest wait for the agent to answer one turn, ms. @defaultValue 20000 */
  answerTimeoutMs?: number;
  /** wait for the greeting before the first turn. @defaultValue true */
  waitForGreeting?: boolean;
  /** after the last turn, wait for the agent's answer, then hang up. @defaultValue true */
  waitAfterLast?: boolean;
  /**
   * Transcribe the agent's answers: a provider, or false. @defaultValue the local
   * pocketsphinx recogniser when it loads, else no transcripts
   */
  stt?: SttProvider | false;
  /** recogniser vocabulary for the agent's speech. @defaultValue {@link agentVocabulary}() */
  vocabulary?: Vocabulary;
  /** a line per event (the CLI prints them) */
  onLine?: (line: ConversationLine) => void;
}

export interface ConversationLine {
  role: 'caller' | 'agent' | 'call';
  text: string;
  /** agent: our last voiced packet → its first voiced packet */
  gapMs?: number;
  /** agent: length of the answer */
  durationMs?: number;
}

export interface ConversationResult {
  call: CallResult;
  lines: ConversationLine[];
  /** one per agent answer (greeting first when waited for) */
  answers: Array<AgentSegment & { text?: string }>;
  /** measured turn gaps, ms */
  gapsMs: number[];
}

/** Phrases the agent says, so the local recogniser can transcribe them back. */
export const AGENT_PHRASES = [
  'thank you for calling northwind industrial supply', 'this is the automated ordering assistant',
  'how can i help you today', 'hi dana i see you are calling from acme plumbing supply',
  'that is twenty of h x four four one zero half inch brass ball valve available to ship from the oakland warehouse',
  'shall i place the order', 'your order is booked', 'the order number is s o four eight two three one one',
  'it ships', 'is there anything else i can help with',
  'purchase order p o one two three four five order s o four eight one two zero zero is shipped',
  'it shipped with u p s ground', 'the tracking number is one z nine nine nine a a one zero one two three four five six seven eight four',
  'our office is closed right now but i can take a message and have your rep call you back',
  'our office is closed until tomorrow at seven am but i can still check an order or take a reorder',
  'to leave a message for your rep say message or press one what would you like to do',
  'just to check the part is that right', 'and the quantity was that', 'please key in the quantity on your phone and press pound',
  'is one four one five five five five zero one four two the best number to call you back on',
  'what would you like me to tell your rep', 'i have taken your message and your rep will call you back',
  'thanks for calling goodbye', "i can't place orders on this line but i can take a message for your rep",
  'the order number is', 'your order is booked', 'it ships on', 'is booked',
  'would you like me to do that', 'sorry i did not catch that could you say it again',
  'let me check that for you', 'what is the p o number', 'how many would you like',
];

/** Vocabulary for transcribing the agent: the demo CRM/ERP words plus {@link AGENT_PHRASES}. */
export async function agentVocabulary(): Promise<Vocabulary> {
  const { CrmErpStore } = await import('../crm-erp/store.ts');
  const store = new CrmErpStore({ db: ':memory:' });
  try {
    return { ...store.vocabulary(), names: ['Dana', 'Reyes', 'Maria', 'Chen', 'Northwind'], phrases: AGENT_PHRASES };
  } finally {
    store.close();
  }
}

/** Deterministic white noise added at `snrDb` below the signal's RMS. */
export function addNoise(pcm: Int16Array, snrDb: number, seed = 1): Int16Array {
  let e = 0;
  let n = 0;
  for (let i = 0; i < pcm.length; i++) {
    if (Math.abs(pcm[i]!) > 200) {
      e += pcm[i]! * pcm[i]!;
      n++;
    }
  }
  const rms = n ? Math.sqrt(e / n) : 1000;
  const amp = (rms / 10 ** (snrDb / 20)) * Math.sqrt(3); // uniform noise: rms = amp / √3
  const out = new Int16Array(pcm.length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < pcm.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const v = pcm[i]! + ((x / 0xffffffff) * 2 - 1) * amp;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(v)));
  }
  return out;
}

async function turnAudio(turn: CallerTurn, defVoice: string): Promise<{ pcm: Int16Array; label: string } | null> {
  if ('dtmf' in turn) return null;
  if ('pcm' in turn) return { pcm: turn.pcm, label: turn.label ?? `(${Math.round(turn.pcm.length / 8)} ms of audio)` };
  if ('wav' in turn) {
    const w = parseWav(readFileSync(turn.wav));
    return { pcm: await resample(w.pcm, w.sampleRate, 8000), label: `(${turn.wav})` };
  }
  const { synthesize } = await import('../media/index.ts');
  let pcm = await synthesize(turn.say, { voice: (turn.voice ?? defVoice) as 'slt', sampleRate: 8000 });
  if (turn.noiseSnrDb !== undefined) pcm = addNoise(pcm, turn.noiseSnrDb);
  return { pcm, label: turn.say };
}

let defaultStt: Promise<SttProvider | null> | undefined;
function localStt(): Promise<SttProvider | null> {
  defaultStt ??= import('../stt/index.ts').then((m) => m.createStt('pocketsphinx') as SttProvider).catch(() => null);
  return defaultStt;
}

async function transcribe(stt: SttProvider, pcm: Int16Array, vocabulary: Vocabulary): Promise<string> {
  const s = stt.createStream({ sampleRate: 8000, vocabulary });
  for (let i = 0; i < pcm.length; i += 160) s.push(pcm.subarray(i, i + 160));
  try {
    return (await s.end()).text;
  } catch {
    return '';
  }
}

/** Place the call and run the turns. */
export async function runConversation(o: ConversationOptions): Promise<ConversationResult> {
  const lines: ConversationLine[] = [];
  const answers: ConversationResult['answers'] = [];
  const line = (l: ConversationLine): void => {
    lines.push(l);
    o.onLine?.(l);
  };
  // audio first, so synthesis time does not count against the call
  const audio = await Promise.all(o.turns.map((t) => turnAudio(t, o.voice ?? 'slt')));
  const stt = o.stt === false ? null : o.stt ?? (await localStt());
  const vocabulary = o.vocabulary ?? (stt ? await agentVocabulary() : {});
  const pendingText: Array<Promise<void>> = [];
  const agentTurn = async (seg: AgentSegment): Promise<void> => {
    const entry: AgentSegment & { text?: string } = seg;
    answers.push(entry);
    const durationMs = Math.round(seg.pcm.length / 8);
    if (seg.timedOut) {
      line({ role: 'agent', text: '(no answer)' });
      return;
    }
    if (stt) {
      const p = transcribe(stt, seg.pcm, vocabulary).then((text) => {
        entry.text = text;
      });
      pendingText.push(p);
      await p;
    }
    line({ role: 'agent', text: entry.text ?? `(${durationMs} ms of speech)`, ...(seg.gapMs !== undefined ? { gapMs: Math.round(seg.gapMs) } : {}), durationMs });
  };
  const call = await placeCall({
    ...o,
    maxCallMs: o.maxCallMs ?? 180_000,
    onEvent: (ev, detail) => {
      if (ev === 'bye-received') line({ role: 'call', text: 'the agent hung up' });
      o.onEvent?.(ev, detail);
    },
    script: async (ctl) => {
      line({ role: 'call', text: 'answered' });
      const wait = (): Promise<AgentSegment> => ctl.waitForAgent({ silenceMs: o.silenceMs ?? 1500, timeoutMs: o.answerTimeoutMs ?? 20000 });
      if (o.waitForGreeting ?? true) await agentTurn(await wait());
      for (let i = 0; i < o.turns.length; i++) {
        if (ctl.serverHungUp) break;
        const t = o.turns[i]!;
        const a = audio[i];
        if ('dtmf' in t) {
          line({ role: 'caller', text: `[keys ${t.dtmf}]` });
          await ctl.dtmf(t.dtmf);
        } else if (a) {
          line({ role: 'caller', text: a.label });
          await ctl.say(a.pcm);
        }
        if (i < o.turns.length - 1 || (o.waitAfterLast ?? true)) {
          const seg = await wait();
          if ('dtmf' in t) delete seg.gapMs; // the gap is measured from voiced audio only
          await agentTurn(seg);
        }
      }
    },
  });
  await Promise.all(pendingText);
  if (call.status < 200 || call.status >= 300) line({ role: 'call', text: `call failed: ${call.status} ${call.reason}` });
  const gapsMs = answers.filter((a) => a.gapMs !== undefined).map((a) => Math.round(a.gapMs!));
  return { call, lines, answers, gapsMs };
}
