/**
 * Speech-to-text provider interface: one stream per caller utterance.
 *
 * The dialogue controller opens a stream when the VAD reports speech start, pushes the
 * utterance's PCM (including the VAD's pre-roll) as it arrives, and calls `end()` at the
 * VAD's end of speech; `end()` resolves with the final transcript. `abort()` drops the
 * utterance (barge-in cancelled, call ended). Providers: `pocketsphinx.ts` (local, default),
 * `openai.ts` (OpenAI-compatible `/v1/audio/transcriptions`).
 */
import type { EventEmitter } from 'node:events';

/**
 * Words a tenant's callers are expected to say, taken from CRM/ERP data. The shape of
 * `CrmErpStore.vocabulary()` fits as is; the other fields are optional extras.
 */
export interface Vocabulary {
  /** Part numbers ("HX-4410") with their descriptions and search keywords. */
  skus?: ReadonlyArray<{ sku: string; description?: string; keywords?: string }>;
  /** Accounts: number ("ACC-10042") and name ("Acme Plumbing Supply"). */
  accounts?: ReadonlyArray<{ number: string; name: string }>;
  /** Known PO numbers ("PO12345", "EBS-2291"); digits in general are always in the model. */
  poNumbers?: readonly string[];
  /** People's names (contacts, reps). Words the dictionary does not know are skipped. */
  names?: readonly string[];
  /** Extra whole phrases the tenant's callers say. */
  phrases?: readonly string[];
}

/**
 * What the agent asked for last, so a recogniser can decode the answer against a grammar for
 * that state instead of the open-domain model: 'open' (first, open question or anything),
 * 'yesno' (an offer or another plain yes/no question), 'check_part' (a check of one part: yes, no,
 * or the part corrected), 'check_qty' (a check of a quantity or of the order read-back: yes, no,
 * or the quantity corrected), 'quantity', 'sku' (a part number), 'po' (a PO or order
 * number, lettered or digits), 'department', 'digits' (account / phone numbers), 'message'
 * (free dictation of an after-hours message), 'name' (a person's or company name), 'order' (a
 * whole reorder request, "I need twenty of H X four four one zero": the local recogniser's
 * second reading of an open turn that sounds like one; no prompt asks for it).
 * Providers that cannot narrow their model ignore it.
 */
export type Expectation = 'open' | 'yesno' | 'check_part' | 'check_qty' | 'quantity' | 'sku' | 'po' | 'department' | 'digits' | 'message' | 'name' | 'order';

export interface SttStreamOptions {
  /** Rate of the PCM given to {@link SttStream.push}. */
  sampleRate: 8000 | 16000;
  /** BCP 47 language of the caller. @defaultValue 'en-US' */
  language?: string;
  /** Tenant vocabulary; the local recogniser builds its domain language model from it. */
  vocabulary?: Vocabulary;
  /** What the agent's last prompt asked for (per-state recognition). @defaultValue 'open' */
  expect?: Expectation;
  /** The identified account's recent order lines (SKUs first in per-state grammars), if known. */
  history?: ReadonlyArray<{ sku: string; qty?: number }>;
}

/** Final result of one utterance. */
export interface SttResult {
  /** Transcript, lower case for the local recogniser; '' when nothing was recognised. */
  text: string;
  /** 0..1; providers without a score report 1 for a non-empty transcript. */
  confidence: number;
  /**
   * False when the utterance looks off-topic (the local recogniser maps any speech onto
   * its domain vocabulary, so a low acoustic/LM score per frame flags it) or empty.
   * The controller should then re-prompt rather than act on `text`.
   */
  inDomain: boolean;
  /** Time from `end()` to the result (recognition latency after end of speech), ms. */
  ms: number;
  /**
   * Other hypotheses, best first (n-best), when the provider has them; `grammar: 'order'`
   * marks the local recogniser's order reading of an open turn (see {@link Expectation}).
   */
  alternatives?: ReadonlyArray<{ text: string; confidence: number; grammar?: string }>;
  /** Which model decoded it: 'open', or the {@link Expectation} grammar used. */
  grammar?: string;
}

export interface SttStreamEvents {
  /** Interim transcript (providers may never emit it). */
  partial: [text: string];
}

/** One utterance being recognised. */
export interface SttStream extends EventEmitter<SttStreamEvents> {
  /** Append PCM (mono, 16-bit, at the stream's sample rate). Ignored after end()/abort(). */
  push(pcm: Int16Array): void;
  /** End of speech: resolves with the final result; rejects on engine/network errors and timeouts. */
  end(): Promise<SttResult>;
  /** Drop the utterance; a pending end() rejects with an AbortError. */
  abort(): void;
}

/** A speech-to-text engine. */
export interface SttProvider {
  readonly name: string;
  createStream(opts: SttStreamOptions): SttStream;
  /** Optional warm-up (build the tenant's model, load a decoder) so the first call is fast. */
  prepare?(vocabulary?: Vocabulary): Promise<void>;
}
