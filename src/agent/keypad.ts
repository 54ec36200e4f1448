/**
 * The keypad agent: serves a call in a language the recogniser does not understand (the
 * embedded pocketsphinx is English only) with DTMF, in the call's language — order status by
 * PO digits, a recorded message into a CRM case, 0 for a person (the escalation wrapper
 * hands that off) — and says so at the start. Every word comes from the tenant's prompts in
 * the call's language (`keypad*` keys, src/tenants/languages.ts); the built-in texts below
 * are Spanish, the one language the demo serves this way, and are used only for keys a
 * tenant leaves out.
 *
 * A recorded message is the caller's utterance as the endpointer cut it (8 kHz PCM, handed
 * in by the dialogue controller as `AgentTurn.audio`), written as a WAV (0600, in a 0700
 * directory under `<dataDir>/voicemail/<tenant>/`) and linked from the CRM case by its path.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promptsFor, type TenantPrompts } from '../tenants/index.ts';
import { logger } from '../ops/log.ts';
import type { Agent, AgentAction, AgentTurn, CallContext, CaseMessage, ConversationState, ToolResult } from './types.ts';
import { newState, transcriptText } from './types.ts';
import { callTool, DEFAULT_FILLER_AFTER_MS, type FillerState } from './call-tool.ts';
import { fillTemplate, firstName, speakOpening } from './text.ts';
import { pcmToWav } from '../stt/wav.ts';

const log = logger('agent.keypad');

/** Built-in texts (Spanish) for keypad keys a tenant leaves out. */
export const KEYPAD_DEFAULTS: Readonly<Required<Pick<TenantPrompts,
  'keypadNotice' | 'keypadMenu' | 'keypadPo' | 'keypadPoNotFound' | 'keypadStatus' | 'keypadShipped' | 'keypadEta' |
  'keypadRecord' | 'keypadRecorded' | 'keypadNoMessage' | 'keypadInvalid' | 'keypadMore'>>> = Object.freeze({
  keypadNotice: 'Por ahora nuestro asistente solo entiende inglés por voz, así que le atenderé con el teclado del teléfono.',
  keypadMenu: 'Para el estado de un pedido, oprima uno. Para dejar un mensaje, oprima dos. Para hablar con una persona, oprima cero.',
  keypadPo: 'Marque los dígitos del número de su orden de compra y después la tecla de número.',
  keypadPoNotFound: 'No encontré un pedido con el número {po}.',
  keypadStatus: 'El pedido con orden de compra {po} está {status}.',
  keypadShipped: 'Salió el {date} por {carrier}.',
  keypadEta: 'La entrega está prevista para el {eta}.',
  keypadRecord: 'Deje su mensaje después de esta indicación, con su nombre y su número.',
  keypadRecorded: 'Gracias. Su mensaje quedó grabado y su representante lo va a escuchar.',
  keypadNoMessage: 'No escuché ningún mensaje.',
  keypadInvalid: 'Esa opción no es válida.',
  keypadMore: 'Para consultar otro pedido, oprima uno. Para dejar un mensaje, oprima dos. Para hablar con una persona, oprima cero.',
});

/** Order statuses as said in Spanish (the CRM's codes otherwise, underscores as spaces). */
const STATUS_ES: Record<string, string> = {
  booked: 'registrado', picking: 'en preparación en el almacén', packed: 'empacado', shipped: 'enviado',
  delivered: 'entregado', backordered: 'pendiente por falta de existencias', cancelled: 'cancelado',
  canceled: 'cancelado', on_hold: 'en espera', in_progress: 'en proceso',
};

/** The status word in `language` (Spanish table; others get the CRM's word). */
export function statusWord(status: string, language: string): string {
  if (/^es\b/i.test(language) && STATUS_ES[status]) return STATUS_ES[status]!;
  return status.replace(/_/g, ' ');
}

/** "martes 8 de diciembre" (es), "Tuesday, December 8" (en): an ISO date said in `language`. */
export function dateWords(iso: string, language: string): string {
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(iso) ? `${iso}T12:00:00Z` : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleDateString(language, { weekday: 'long', day: 'numeric', month: 'long', timeZone: 'UTC' }).replace(',', '');
}

const DIAS = ['domingo', 'lunes', 'martes', 'miércoles', 'jueves', 'viernes', 'sábado'];

/**
 * When the office opens again, said in `language`: Spanish "mañana a las 7:30", "hoy a la 1",
 * "el lunes a las 8"; other languages get the English words of {@link speakOpening}.
 * `nextOpen` / `localTime` are ISO times in the office's zone (business_hours).
 */
export function openingWords(nextOpen: string | undefined, localTime: string | undefined, language: string): string | undefined {
  if (!/^es\b/i.test(language)) return speakOpening(nextOpen, localTime);
  const n = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})/.exec(nextOpen ?? '');
  if (!n) return undefined;
  const h = Number(n[2]);
  const clock = `${h % 12 === 0 ? 12 : h % 12}${n[3] !== '00' ? `:${n[3]}` : ''} de la ${h < 12 ? 'mañana' : h < 20 ? 'tarde' : 'noche'}`;
  const at = `${h % 12 === 1 ? 'a la' : 'a las'} ${clock}`;
  const day = (iso: string): number => Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1, Number(iso.slice(8, 10))) / 86_400_000;
  const l = /^(\d{4}-\d{2}-\d{2})/.exec(localTime ?? '');
  const diff = l ? day(n[1]!) - day(l[1]!) : NaN;
  if (diff === 0) return `hoy ${at}`;
  if (diff === 1) return `mañana ${at}`;
  return `el ${DIAS[new Date(day(n[1]!) * 86_400_000).getUTCDay()]} ${at}`;
}

/** Shortest recording kept as a message, ms of audio. @defaultValue 600 */
export const MIN_MESSAGE_MS = 600;

export interface KeypadAgentOptions {
  /** share a state object (the multilingual wrapper keeps one per call). */
  state?: ConversationState;
  /** where recorded messages go: `<dataDir>/voicemail/<tenant>/`. @defaultValue env DATA_DIR, else './var' */
  dataDir?: string;
  /** say a filler when a tool has not answered after this many ms. @defaultValue 700 */
  fillerAfterMs?: number;
}

type Step = 'menu' | 'po' | 'record';

export class KeypadAgent implements Agent {
  readonly state: ConversationState;
  private ctx: CallContext;
  private step: Step = 'menu';
  private out: AgentAction[] = [];
  private filler: FillerState = { said: false };
  private msgSeq = 0;
  private readonly dataDir: string;
  private readonly fillerAfterMs: number;

  constructor(ctx: CallContext, opts: KeypadAgentOptions = {}) {
    this.ctx = ctx;
    this.state = opts.state ?? newState(ctx);
    this.dataDir = opts.dataDir ?? process.env.DATA_DIR ?? './var';
    this.fillerAfterMs = opts.fillerAfterMs ?? DEFAULT_FILLER_AFTER_MS;
  }

  /** The current prompt text of `key` in the call's language, filled. */
  private p(key: keyof typeof KEYPAD_DEFAULTS, vars: Record<string, string | undefined> = {}): string {
    const pr = promptsFor(this.ctx.tenant, this.state.language);
    return fillTemplate(pr[key] ?? KEYPAD_DEFAULTS[key], vars);
  }

  private say(text: string): void {
    this.out.push({ type: 'say', text });
    this.state.transcript.push({ role: 'agent', text, at: Date.now() });
  }

  private async *tool(name: string, args: Record<string, unknown>): AsyncGenerator<AgentAction, ToolResult> {
    yield* this.flush();
    const pr = promptsFor(this.ctx.tenant, this.state.language);
    return yield* callTool(this.ctx, name, args, { fillerAfterMs: this.fillerAfterMs, fillerText: pr.filler ?? 'Un momento, por favor.', filler: this.filler });
  }

  private *flush(): Generator<AgentAction> {
    const acts = this.out;
    this.out = [];
    yield* acts;
  }

  /** Emit what is queued, the last `say` marked final. */
  private *finish(): Generator<AgentAction> {
    const rest = this.out;
    this.out = [];
    let last = -1;
    rest.forEach((a, i) => { if (a.type === 'say') last = i; });
    for (let i = 0; i < rest.length; i++) yield i === last ? { ...rest[i]!, final: true } as AgentAction : rest[i]!;
  }

  start(ctx?: CallContext): AsyncIterable<AgentAction> {
    if (ctx) this.ctx = { ...ctx, language: this.state.language };
    return this.doStart();
  }

  private async *doStart(): AsyncGenerator<AgentAction> {
    this.filler = { said: false };
    const t = this.ctx.tenant;
    if (this.ctx.ani && !this.state.caller) {
      const r = yield* this.tool('identify_caller', { phone: this.ctx.ani });
      if (r.ok && r.data.found) {
        const a = r.data.account as Record<string, unknown> | undefined;
        const c = r.data.contact as Record<string, unknown> | undefined;
        if (a?.id) this.state.account = { id: String(a.id), name: String(a.name ?? ''), ...(a.number ? { number: String(a.number) } : {}) };
        this.state.caller = { phone: String(c?.phone ?? this.ctx.ani), ...(c?.id ? { contactId: String(c.id) } : {}), ...(c?.name ? { name: String(c.name) } : {}), ...(c?.language ? { language: String(c.language) } : {}) };
      }
    }
    let opens: string | undefined;
    if (t.afterHours.enabled) {
      const r = yield* this.tool('business_hours', { tenant: t.businessHoursTenant, at: (this.ctx.now ?? new Date()).toISOString() });
      if (r.ok) {
        this.state.afterHours = r.data.open === false;
        opens = openingWords(r.data.next_open as string | undefined, r.data.local_time as string | undefined, this.state.language);
      }
    }
    const pr = promptsFor(t, this.state.language);
    const first = firstName(this.state.caller?.name);
    const greeting = this.state.account && first && pr.greetingKnown
      ? fillTemplate(pr.greetingKnown, { tenant: t.name, first_name: first, account: this.state.account.name })
      : fillTemplate(pr.greeting || t.greeting, { tenant: t.name });
    // the open question of a spoken greeting ("¿En qué le puedo ayudar?") makes no sense here: the menu asks
    this.say(greeting.replace(/\s*¿[^?]*\?\s*$/, '').replace(/\s*How can I help you( today)?\?\s*$/i, '') || greeting);
    this.say(this.p('keypadNotice'));
    // after hours is not a wall: order status works around the clock; the menu's message
    // choice (and 0, which the escalation wrapper turns into a message at night) is what waits for a person
    if (this.state.afterHours && pr.afterHours) {
      this.say(fillTemplate(pr.afterHours, { opens: opens ?? (/^es\b/i.test(this.state.language) ? 'el próximo día hábil' : 'our next business day'), tenant: t.name }));
    }
    this.say(this.p('keypadMenu'));
    log.info('keypad path', { callId: this.ctx.callId, language: this.state.language, afterHours: this.state.afterHours });
    yield* this.finish();
  }

  /** A person was asked for (0) while the office is closed: the message is recorded instead. */
  personUnavailable(reason: string): AsyncIterable<AgentAction> {
    return this.unavailable(reason);
  }

  private async *unavailable(reason: string): AsyncGenerator<AgentAction> {
    this.state.slots.handoff_reason = reason;
    this.beginRecording();
    yield* this.finish();
  }

  private beginRecording(): void {
    this.step = 'record';
    this.state.lane = 'message';
    this.say(this.p('keypadRecord'));
  }

  turn(input: AgentTurn, signal?: AbortSignal): AsyncIterable<AgentAction> {
    return this.doTurn(input, signal);
  }

  private async *doTurn(input: AgentTurn, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    this.filler = { said: false, since: Date.now() };
    const keys = (input.dtmf ?? '').replace(/[^0-9*#]/g, '');
    const spoke = !keys && !!input.audio?.length;
    this.state.transcript.push({ role: 'caller', text: keys || (spoke ? '(voz)' : input.text || ''), at: Date.now() });
    if (signal?.aborted) return;
    if (this.step === 'record') {
      if (spoke) {
        yield* this.recordMessage(input.audio!);
        return yield* this.finish();
      }
      if (!keys) {
        this.say(this.p('keypadNoMessage'));
        this.step = 'menu';
        this.say(this.p('keypadMenu'));
        return yield* this.finish();
      }
      this.step = 'menu'; // a key instead of a message: a menu choice
    }
    if (this.step === 'po') {
      const digits = keys.replace(/\D/g, '');
      if (!digits) {
        this.say(this.p('keypadPo'));
        return yield* this.finish();
      }
      yield* this.orderStatus(digits);
      return yield* this.finish();
    }
    // menu
    const choice = keys.replace(/#/g, '');
    if (choice === '1') {
      this.step = 'po';
      this.state.lane = 'status';
      this.say(this.p('keypadPo'));
    } else if (choice === '2') {
      this.beginRecording();
    } else if (choice === '*' || choice === '9') {
      this.say(this.p('keypadMenu'));
    } else if (!keys) {
      // speech the recogniser cannot understand in this language: say how this line works
      this.say(this.p('keypadNotice'));
      this.say(this.p('keypadMenu'));
    } else {
      this.say(this.p('keypadInvalid'));
      this.say(this.p('keypadMenu'));
    }
    yield* this.finish();
  }

  private async *orderStatus(digits: string): AsyncGenerator<AgentAction> {
    const args: Record<string, unknown> = { po_number: digits };
    if (this.state.account) args.account_id = this.state.account.id;
    const r = yield* this.tool('order_status', args);
    const lang = this.state.language;
    const po = `PO${digits}`;
    this.step = 'menu';
    if (!r.ok || !r.data.found) {
      if (!r.ok) log.warn('order_status failed on the keypad path', { callId: this.ctx.callId, err: r.error });
      this.say(this.p('keypadPoNotFound', { po }));
      this.step = 'po';
      this.say(this.p('keypadPo'));
      return;
    }
    const d = r.data;
    this.state.order.status = d;
    const status = String(d.status ?? 'in_progress');
    this.say(this.p('keypadStatus', { po: String(d.po_number ?? po), status: statusWord(status, lang) }));
    if (d.ship_date && d.carrier && status !== 'delivered') this.say(this.p('keypadShipped', { date: dateWords(String(d.ship_date), lang), carrier: String(d.carrier) }));
    if (d.eta && status !== 'delivered') this.say(this.p('keypadEta', { eta: dateWords(String(d.eta), lang) }));
    this.say(this.p('keypadMore'));
  }

  private async *recordMessage(audio: Int16Array): AsyncGenerator<AgentAction> {
    this.step = 'menu';
    if (audio.length < (MIN_MESSAGE_MS / 1000) * 8000) {
      this.say(this.p('keypadNoMessage'));
      this.say(this.p('keypadMenu'));
      return;
    }
    const n = ++this.msgSeq;
    const dir = path.join(this.dataDir, 'voicemail', this.ctx.tenant.id);
    const safeCall = this.ctx.callId.replace(/[^A-Za-z0-9._-]/g, '_');
    const file = path.resolve(dir, `${safeCall}-${n}.wav`);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(file, pcmToWav(audio), { mode: 0o600 });
    } catch (err) {
      log.error('could not write the recorded message', { callId: this.ctx.callId, file, err: err as Error });
    }
    const seconds = Math.round(audio.length / 800) / 10;
    const message: CaseMessage = {
      id: `${this.ctx.callId}:voicemail:${n}`,
      tenantId: this.ctx.tenant.id,
      callId: this.ctx.callId,
      ...(this.state.account ? { accountId: this.state.account.id, accountName: this.state.account.name } : {}),
      callerName: this.state.caller?.name ?? 'unknown caller',
      callbackNumber: (this.state.caller?.phone ?? this.ctx.ani).replace(/\D/g, '') || 'unknown',
      reason: `Recorded voice message (${this.state.language}, ${seconds} s): ${file}`,
      kind: this.state.afterHours ? 'after_hours_message' : 'callback',
      transcript: `${transcriptText(this.state)}\nrecording: ${file}`,
      takenAt: new Date().toISOString(),
    };
    this.state.messages.push(message);
    this.state.slots.recording = file;
    log.info('voice message recorded', { callId: this.ctx.callId, file, seconds });
    yield* this.flush();
    yield { type: 'take_message', message };
    this.say(this.p('keypadRecorded'));
    this.say(this.p('keypadMore'));
  }
}
