/**
 * Escalation triggers: when a caller turn should go to a person instead of the agent.
 *
 * {@link EscalationDetector} is fed every caller turn (transcript, DTMF, and the voice
 * measures the dialogue takes from the utterance audio) and answers with the trigger that
 * fired, or null. It is pure logic (no I/O), so every trigger is unit-tested on scripted
 * turns; {@link EscalatingAgent} (agent.ts) runs it before the agent sees the turn, and also
 * records the triggers that originate in the agent itself (`llm-tool`, `agent`).
 *
 * Triggers, each switchable per tenant (`escalation.triggers` in tenants.yaml):
 * - `explicit`: "agent", "human", "representative", "operator", "a real person" …, also when
 *   the recogniser clipped it ("I want to talk to a…"), a spoken "zero", and "help" twice in a row
 * - `routing`: the caller names a department or their rep ("billing", "returns please",
 *   "connect me with technical support", "my rep") — the CRM's route_request picks the target
 * - `dtmf-zero`: the caller keyed 0 (alone, while no number was asked for)
 * - `repetition`: the same unresolved request for the Nth time (default 3rd); the agent's own
 *   repair loop (one question asked three times, still not understood) hands off with it too
 * - `frustration`: lexical cues, strengthened by a louder / faster utterance than the
 *   caller's own baseline (first turns) — or by the repair loop: one cue is enough while the
 *   agent is asking a question again
 *
 * While the agent takes a message (`expect: 'message'`), the caller's words are the message:
 * "tell my rep…" or "a person" inside it fire nothing (a keyed 0 still does).
 * - `complex-part`: descriptive part language ("the one with the brass fitting") with no
 *   SKU in the utterance, or a `find_sku` that matched nothing for such a description
 * - `always-human`: intent categories the tenant never lets the agent handle (price or terms
 *   negotiation, complaint, financial dispute)
 */
import { DEPARTMENTS, asksForPerson, doubtful, extractSkuCandidates, words } from '../agent/text.ts';
import { ALWAYS_HUMAN_CATEGORIES, type AlwaysHumanCategory } from '../tenants/index.ts';
import type { EscalationTrigger, Expectation } from '../agent/types.ts';

export { ALWAYS_HUMAN_CATEGORIES, type AlwaysHumanCategory };

/** Which triggers run for a tenant. */
export interface TriggerPolicy {
  /** caller asks for a person. @defaultValue true */
  explicit: boolean;
  /** caller names a department or their rep. @defaultValue true */
  routing: boolean;
  /** DTMF 0. @defaultValue true */
  dtmfZero: boolean;
  /** escalate on the Nth repetition of the same unresolved request; 0 = off. @defaultValue 3 */
  repetition: number;
  /** frustration cues (lexical + energy/rate). @defaultValue true */
  frustration: boolean;
  /** descriptive part identification the catalogue cannot match. @defaultValue true */
  complexPart: boolean;
  /** categories that always go to a person. @defaultValue all of {@link ALWAYS_HUMAN_CATEGORIES} */
  alwaysHuman: AlwaysHumanCategory[];
  /** the LLM agent may call escalate(reason). @defaultValue true */
  llmTool: boolean;
}

export const DEFAULT_TRIGGER_POLICY: Readonly<TriggerPolicy> = Object.freeze({
  explicit: true, routing: true, dtmfZero: true, repetition: 3, frustration: true, complexPart: true,
  alwaysHuman: [...ALWAYS_HUMAN_CATEGORIES], llmTool: true,
});

/** Loudness and pace of one utterance (from the endpointed audio). */
export interface VoiceMeasures {
  /** RMS level of the voiced audio, dBFS */
  rmsDb: number;
  /** voiced duration, ms */
  voicedMs: number;
}

export interface TriggerInput {
  text: string;
  dtmf?: string;
  voice?: VoiceMeasures;
  /** the agent just asked for digits (a PO/phone number): a lone 0 is an answer, not a request */
  expectingDigits?: boolean;
  /** what the agent's last prompt asked for ('message': the words are dictation, not requests) */
  expect?: Expectation;
  /** the agent is asking a question again (its repair loop): one frustration cue is enough */
  repairing?: boolean;
  /** recogniser confidence: a person asked for in a grammar's floor confidence is left to the agent to ask about */
  confidence?: number;
}

export interface TriggerHit {
  trigger: EscalationTrigger;
  /** one line for the screen pop */
  reason: string;
  /** what to ask the CRM's route_request for ("billing", "my rep", "customer service" …) */
  topic: string;
  /** always-human: which category */
  category?: AlwaysHumanCategory;
}

/** "zero" said for the operator (not while a number is being given) */
const SPOKEN_ZERO = /^(zero|press zero|zero please|operator zero|i pressed zero)$/;
/** a plea for help: twice in a row (or "help help") is a request for a person */
const HELP = /^(help( me| please| help)*|i need help|somebody help|can (you|someone|somebody) help( me)?)$/;
/** expectations under which a spoken "zero" is an answer */
const NUMBER_EXPECTED = new Set<Expectation>(['quantity', 'sku', 'po', 'digits']);
/** departments the CRM routes to (the topic handed to route_request) */
const DEPARTMENT = DEPARTMENTS;
const ROUTE_VERB = /\b(talk|speak|connect|transfer|put me through|get me|give me|need|want|looking for|reach|department|please)\b/;
/** a routing word inside a lane request ("check my invoice status" is not "billing please") */
const IN_LANE = /\b(status|where('s| is)|track|tracking|order number|p ?o|purchase order|reorder|ship date|in stock|available)\b/;

/** "someone" in a message request is not a request for a person now */
const NOT_NOW = /\b(message|call me back|callback|call back|have (someone|him|her|them) call)\b/;

const FRUSTRATION_CUES: RegExp[] = [
  /\b(ridiculous|unbelievable|absurd)\b/, /\bfrustrat\w*/, /\b(annoying|annoyed)\b/, /\b(useless|stupid|pointless)\b/,
  /\bnot (listening|understanding|helping)\b/, /\bdo(n't| not) understand (me|anything)\b/, /\bi (already|just) (told|said)\b/,
  /\bfor the (second|third|last) time\b/, /\bwaste of (my )?time\b/, /\b(damn|dammit|hell)\b/, /\bcome on\b/,
  /\bthis is (crazy|insane|a joke)\b/, /\b(fed up|sick of|tired of)\b/, /\bworst\b/,
];

const DESCRIPTIVE = /\b(the one (with|that|for)|looks like|kind of a|sort of a|some kind of|thingy|whatchamacallit|doohickey|gizmo|i don'?t (know|have|remember) the (part|sku|item)( number)?|no (part|sku) number|don'?t know what it'?s called|it'?s (the|a) (little|small|big|round|long)|with the (brass|steel|copper|plastic|rubber|threaded|red|blue|black)\b)/;
const PART_WORDS = /\b(part|fitting|valve|coupling|hose|gasket|bracket|adapter|connector|fastener|bolt|nut|washer|seal|clamp|thing|piece|one)\b/;

const CATEGORY: Record<AlwaysHumanCategory, { re: RegExp; topic: string; label: string }> = {
  price_negotiation: {
    re: /\b(discount|better (price|deal|rate)|lower (the )?price|price match|negotiat\w*|volume pricing|pricing|cheaper|payment terms|net (30|60|90|thirty|sixty|ninety)|credit terms|terms of (payment|sale)|rebate)\b/,
    topic: 'my rep', label: 'price or terms negotiation',
  },
  complaint: {
    re: /\b(complain|complaint|unacceptable|arrived (damaged|broken)|damaged|wrong (part|item|parts|items)|very (unhappy|disappointed)|terrible service|poor service|file a grievance)\b/,
    topic: 'customer service', label: 'complaint',
  },
  financial_dispute: {
    re: /\b(dispute|disputing|overcharged|over charged|double charged|charged twice|billing (error|mistake)|invoice is wrong|wrong (invoice|charge|amount)|chargeback|charge back|refund)\b/,
    topic: 'billing', label: 'financial dispute',
  },
};

const STOP = new Set(['i', 'a', 'an', 'the', 'to', 'my', 'me', 'is', 'it', 'of', 'for', 'and', 'please', 'uh', 'um', 'so', 'just', 'can', 'you', 'do', 'on', 'in', 'that', 'this', 'want', 'need', 'like', 'would', 'again', 'yes', 'no', 'okay', 'ok']);

function contentWords(text: string): string[] {
  return words(text).filter((w) => !STOP.has(w));
}

function jaccard(a: readonly string[], b: readonly string[]): number {
  const A = new Set(a);
  const B = new Set(b);
  let inter = 0;
  for (const w of A) if (B.has(w)) inter++;
  const union = A.size + B.size - inter;
  return union === 0 ? 0 : inter / union;
}

function quote(text: string, max = 80): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return `"${t.length > max ? t.slice(0, max - 1) + '…' : t}"`;
}

/** Tunables of the frustration measure. */
export interface FrustrationTunables {
  /** dB above the caller's baseline level that counts as raised. @defaultValue 6 */
  raisedDb: number;
  /** words per second above baseline × this counts as fast. @defaultValue 1.4 */
  fastRatio: number;
  /** turns averaged into the baseline. @defaultValue 2 */
  baselineTurns: number;
}

export const FRUSTRATION_DEFAULTS: Readonly<FrustrationTunables> = Object.freeze({ raisedDb: 6, fastRatio: 1.4, baselineTurns: 2 });

/** Per-call trigger state. */
export class EscalationDetector {
  readonly policy: TriggerPolicy;
  private readonly tun: FrustrationTunables;
  /** earlier caller requests (content words) for the repetition trigger */
  private readonly requests: string[][] = [];
  private readonly baseline: Array<{ rmsDb: number; wps: number }> = [];
  /** turns in a row that were only a plea for help */
  private helps = 0;

  constructor(policy: Partial<TriggerPolicy> = {}, tunables: Partial<FrustrationTunables> = {}) {
    this.policy = { ...DEFAULT_TRIGGER_POLICY, ...policy };
    this.tun = { ...FRUSTRATION_DEFAULTS, ...tunables };
  }

  /** Check one caller turn. Null: the agent handles it. */
  check(input: TriggerInput): TriggerHit | null {
    const p = this.policy;
    const text = input.text.trim();
    const t = words(text).join(' ');
    const numberExpected = !!input.expectingDigits || (input.expect !== undefined && NUMBER_EXPECTED.has(input.expect));
    if (p.dtmfZero && input.dtmf === '0' && !input.expectingDigits && !text) {
      return { trigger: 'dtmf-zero', reason: 'caller pressed 0 for a person', topic: 'my rep' };
    }
    if (!t) return null;
    // a message being dictated: its words are the message ("tell my rep…", "a person")
    if (input.expect === 'message') return null;
    const frustrated = p.frustration ? this.frustration(t, input.voice, input.repairing) : null;
    if (input.voice) this.learnBaseline(t, input.voice);
    const help = HELP.test(t);
    this.helps = help ? this.helps + 1 : 0;
    // a per-state grammar's escape words forced onto other speech ("hmm" → "agent"): the agent asks
    const doubt = doubtful(input.confidence, input.expect);
    if (p.explicit && !doubt) {
      if (asksForPerson(text)) {
        const topic = /\b(billing|invoice|accounts receivable)\b/.test(t) ? 'billing' : /\b(returns?|rma)\b/.test(t) ? 'returns' : 'my rep';
        return { trigger: 'explicit', reason: `caller asked for a person: ${quote(text)}`, topic };
      }
      if (SPOKEN_ZERO.test(t) && !numberExpected) return { trigger: 'explicit', reason: `caller said "zero" for a person: ${quote(text)}`, topic: 'my rep' };
      if (help && (this.helps >= 2 || /\bhelp\b.*\bhelp\b/.test(t))) {
        this.helps = 0;
        return { trigger: 'explicit', reason: `caller asked for help repeatedly: ${quote(text)}`, topic: 'my rep' };
      }
    }
    if (p.routing && !doubt && !NOT_NOW.test(t) && !IN_LANE.test(t) && (ROUTE_VERB.test(t) || words(text).length <= 3)) {
      const d = DEPARTMENT.find(([re]) => re.test(t));
      if (d) return { trigger: 'routing', reason: `caller asked for ${d[1]}: ${quote(text)}`, topic: d[1] };
    }
    for (const cat of p.alwaysHuman) {
      const c = CATEGORY[cat];
      if (c.re.test(t)) return { trigger: 'always-human', category: cat, reason: `${c.label}: ${quote(text)}`, topic: c.topic };
    }
    if (frustrated) return frustrated;
    if (p.complexPart && DESCRIPTIVE.test(t) && PART_WORDS.test(t) && extractSkuCandidates(text).length === 0) {
      return { trigger: 'complex-part', reason: `part the caller could only describe: ${quote(text)}`, topic: 'sales' };
    }
    if (p.repetition > 0) return this.repetition(text);
    return null;
  }

  /**
   * The agent's catalogue look-up came back empty for what the caller described (the
   * rules/LLM agent ran `find_sku`): a complex identification, when the words were
   * descriptive. Null otherwise.
   */
  skuNotFound(callerText: string): TriggerHit | null {
    if (!this.policy.complexPart) return null;
    const t = words(callerText).join(' ');
    if (!DESCRIPTIVE.test(t) && !/\b(with|without|that|which)\b/.test(t)) return null;
    return { trigger: 'complex-part', reason: `no catalogue match for the part described: ${quote(callerText)}`, topic: 'sales' };
  }

  private repetition(text: string): TriggerHit | null {
    const cw = contentWords(text);
    if (cw.length < 2 || /^\d+$/.test(cw.join(''))) return null;
    let same = 1;
    for (const r of this.requests) if (jaccard(r, cw) >= 0.6) same++;
    this.requests.push(cw);
    if (this.requests.length > 20) this.requests.shift();
    if (same >= this.policy.repetition) {
      return { trigger: 'repetition', reason: `same request ${same} times without a resolution: ${quote(text)}`, topic: 'my rep' };
    }
    return null;
  }

  private frustration(t: string, voice?: VoiceMeasures, repairing = false): TriggerHit | null {
    const cues = FRUSTRATION_CUES.filter((re) => re.test(t)).length;
    if (cues === 0) return null;
    let raised = false;
    let how = '';
    if (voice && this.baseline.length > 0) {
      const n = this.baseline.length;
      const db = this.baseline.reduce((s, b) => s + b.rmsDb, 0) / n;
      const wps = this.baseline.reduce((s, b) => s + b.wps, 0) / n;
      const nowWps = t.split(' ').length / Math.max(0.3, voice.voicedMs / 1000);
      if (voice.rmsDb - db >= this.tun.raisedDb) { raised = true; how = `${Math.round(voice.rmsDb - db)} dB louder`; }
      else if (wps > 0 && nowWps >= wps * this.tun.fastRatio) { raised = true; how = `${(nowWps / wps).toFixed(1)}x faster`; }
    }
    if (cues >= 2 || raised || repairing) {
      if (repairing && !raised && cues < 2) how = 'while asked again';
      return { trigger: 'frustration', reason: `caller frustrated${how ? ` (${how})` : ''}: ${quote(t)}`, topic: 'my rep' };
    }
    return null;
  }

  private learnBaseline(t: string, voice: VoiceMeasures): void {
    if (this.baseline.length >= this.tun.baselineTurns || voice.voicedMs < 400) return;
    this.baseline.push({ rmsDb: voice.rmsDb, wps: t.split(' ').length / (voice.voicedMs / 1000) });
  }
}

/** RMS level of PCM in dBFS (−100 for silence). */
export function rmsDb(pcm: Int16Array): number {
  if (pcm.length === 0) return -100;
  let s = 0;
  for (let i = 0; i < pcm.length; i++) s += pcm[i]! * pcm[i]!;
  const rms = Math.sqrt(s / pcm.length) / 32768;
  return rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
}
