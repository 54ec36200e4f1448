/**
 * The hand-off to a human rep: screen pop, hold audio, and the transfer itself.
 *
 * `begin()` runs the moment the agent decides to escalate (the handshake prompt is still
 * playing): the screen pop goes to the {@link ScreenPopStore} (the rep console shows it
 * while the phone rings) and to the CRM (`log_activity` on the account), and — for a warm
 * transfer — the rep's phone is dialled at once as a UAC through the same SIP edge, with
 * the pop's id/URL and a short summary as SIP headers. When the rep answers, the two media
 * sessions are bridged natively at once (the rest of the handshake still plays to the
 * caller, mixed) and the agent leaves the media path. `finish()` runs after the handshake
 * has played: until the rep answers the caller hears hold audio; when the attempt fails
 * (busy, no answer within the ring time, unreachable) the dialogue takes the caller back.
 *
 * Blind transfers REFER the caller's leg (Refer-To carries the same headers for the
 * transferee's INVITE), follow the NOTIFY sipfrag progress, and hang up our leg on 2xx.
 *
 * Timing is logged per hand-off: trigger → rep ringing (180/183) and rep answer → bridged
 * (`msg="hand-off connected"` with `ringMs`, `answerMs`, `bridgeMs`).
 */
import { randomUUID } from 'node:crypto';
import { logger, type Logger } from '../ops/log.ts';
import { metrics } from '../ops/metrics.ts';
import { createOffer, processAnswer, type MediaCapabilities, type SessionDescription } from '../sdp/index.ts';
import type { ConversationState, DialogueEntry, EscalationTrigger, ToolGateway } from '../agent/types.ts';
import type { CallMediaSession, RepLeg, ReferProgress, CallDialog } from '../call/call.ts';
import type { Tenant } from '../tenants/index.ts';
import { HoldPlayer } from './hold.ts';
import { ScreenPopStore, type ScreenPop, type ScreenPopRecording } from './screen-pop.ts';

/** A hand-off the agent asked for (the transfer action, after its last words played). */
export interface TransferRequest {
  target: string;
  reason: string;
  targetName?: string;
  targetKind?: 'rep' | 'queue';
  trigger?: EscalationTrigger;
}

/** What the hand-off hook reports: done (the agent leaves the call) or failed (the agent takes the caller back). */
export type TransferOutcome = { ok: true } | { ok: false; why: string; status?: number };

/** The part of a Call the hand-off drives (src/call Call fits). */
export interface HandoffCall {
  readonly callId: string;
  /** calling number as people may see it (`anonymous` when withheld) */
  readonly from: string;
  /** the caller withheld their number: screen pops and the rep's phone show `anonymous` */
  readonly privacy?: boolean;
  readonly tenant: Tenant;
  /** recording posture and consent of the call (src/consent), shown in the screen pop */
  recording?: ScreenPopRecording | null;
  readonly session: CallMediaSession & { queuedMs?: number; play(pcm: Int16Array, opts?: { uninterruptible?: boolean }): void };
  readonly state: string;
  attachRepLeg(leg: RepLeg): void;
  refer(referTo: string, headers?: Record<string, string>): Promise<number>;
  noteHandoff(info: Record<string, string | number | undefined>): void;
  hangup(reason?: 'transferred' | 'agent-hangup'): Promise<void>;
  on(event: 'refer-progress', l: (p: ReferProgress) => void): unknown;
  on(event: 'ended', l: (...a: any[]) => void): unknown;
  removeListener(event: string, l: (...a: any[]) => void): unknown;
}

/** A UAC dialog as drachtio-srf resolves it. */
export interface UacDialog extends CallDialog {
  remote: { sdp: string };
}

/** The part of drachtio-srf the hand-off uses. */
export interface UacSrf {
  createUAC(
    uri: string,
    opts: { localSdp: string; headers?: Record<string, string>; callingNumber?: string; callingName?: string },
    progress?: { cbRequest?: (err: unknown, req: { cancel(cb?: (...a: any[]) => void): void }) => void; cbProvisional?: (res: { status: number }) => void },
  ): Promise<UacDialog>;
}

/** The part of the media engine the hand-off uses (src/media MediaEngine fits). */
export interface HandoffEngine {
  /** `near`: create the session on that session's media thread (bridged sessions must share one). */
  createSession(opts: { codec: 'PCMU' | 'PCMA' | 'opus'; payloadType: number; telephoneEventPayloadType?: number; near?: any }): CallMediaSession & { id?: number };
  bridge(a: any, b: any): void;
  unbridge(a: any): boolean;
}

export interface HandoffOptions {
  srf: UacSrf;
  engine: HandoffEngine;
  pops: ScreenPopStore;
  /** URL of a pop on the rep console (X-Screen-Pop-Url); none when the console is off */
  popUrl?: (id: string) => string;
  /** the tenant's tool gateway (CRM activity) */
  gatewayFor?: (tenant: Tenant) => Promise<ToolGateway>;
  /** rep URI template with {extension}. @defaultValue 'sip:{extension}@127.0.0.1:5070' */
  repUri: string;
  /** ring time before giving up, ms (a tenant's escalation.ringSeconds wins). @defaultValue 20000 */
  ringTimeoutMs?: number;
  /** address in our SDP for the rep leg */
  advertisedAddress: string;
  /** our SIP identity in Referred-By. @defaultValue 'sip:voice-agent@<advertisedAddress>' */
  referredBy?: string;
  /** what we offer the rep's phone. @defaultValue G.711 + telephone-event */
  capabilities?: Partial<MediaCapabilities>;
  log?: Logger;
}

/** Facts about the conversation for the pop (the agent's state and the line's transcript). */
export interface HandoffContext {
  state: ConversationState;
  transcript: readonly DialogueEntry[];
}

/** One hand-off in progress. */
export interface HandoffRun {
  readonly pop: ScreenPop;
  /** the handshake has played: hold audio, then wait for the outcome */
  finish(): Promise<TransferOutcome>;
  /** give up (the caller hung up) */
  abort(why: string): void;
}

function oneLine(s: string, max: number): string {
  const t = s.replace(/[\r\n]+/g, ' ').replace(/\s+/g, ' ').trim();
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
}

/** The SIP URI of a rep/queue extension. */
export function repUriFor(template: string, extension: string): string {
  return template.replace(/\{extension\}/g, extension.replace(/[^0-9A-Za-z_.+-]/g, ''));
}

/** Build the screen pop from what the agent knows. */
export function buildScreenPop(call: { callId: string; from: string; privacy?: boolean; tenant: Tenant; recording?: ScreenPopRecording | null }, req: TransferRequest, hc: HandoffContext, now = Date.now()): ScreenPop {
  const st = hc.state;
  const caller = {
    // Privacy: id — the rep sees who the CRM says it is, never the withheld number
    phone: call.privacy ? 'anonymous' : (st.caller?.phone ?? call.from),
    ...(st.caller?.name ? { name: st.caller.name } : {}),
    ...(st.caller?.contactId ? { contactId: st.caller.contactId } : {}),
    language: st.language,
  };
  const transcript = hc.transcript.length
    ? hc.transcript.map((e) => ({ role: e.role, text: e.text + (e.interrupted ? ' [cut]' : ''), at: e.at }))
    : st.transcript.map((e) => ({ role: e.role, text: e.text, at: e.at }));
  const order: ScreenPop['order'] = {
    placed: st.order.placed.map((o) => ({ order_number: o.order_number, ...(o.ship_date ? { ship_date: o.ship_date } : {}) })),
    ...(st.order.pending ? { pending: { lines: st.order.pending.lines, ...(st.order.pending.po_number ? { po_number: st.order.pending.po_number } : {}) } } : {}),
    ...(st.order.status ? { status: st.order.status } : {}),
  };
  const who = caller.name ? `${caller.name}${st.account ? ` (${st.account.name}${st.account.number ? ` #${st.account.number}` : ''})` : ''}` : `unidentified caller ${caller.phone}`;
  const ctx = st.order.pending ? `; reorder in progress: ${st.order.pending.lines.map((l) => `${l.qty} x ${l.sku}`).join(', ')}`
    : st.order.status ? `; looked up ${String(st.order.status.po_number ?? st.order.status.order_number ?? 'an order')}` : '';
  const rec = call.recording ?? null;
  const recNote = rec ? (rec.recorded ? ' [call recorded]' : ' [not recorded]') : '';
  const summary = oneLine(`${who}: ${req.reason}${ctx}`, 200 - recNote.length) + recNote;
  return {
    id: randomUUID(),
    callId: call.callId,
    tenantId: call.tenant.id,
    tenantName: call.tenant.name,
    createdAt: now,
    status: 'ringing',
    target: { name: req.targetName ?? req.target, extension: req.target, ...(req.targetKind ? { kind: req.targetKind } : {}) },
    trigger: req.trigger ?? 'agent',
    reason: oneLine(req.reason, 300),
    caller,
    ...(st.account ? { account: { ...st.account } } : {}),
    transcript,
    order,
    summary,
    ...(rec ? { recording: { recorded: rec.recorded, posture: rec.posture, jurisdiction: rec.jurisdiction, consent: rec.consent, ...(rec.consentAt ? { consentAt: rec.consentAt } : {}) } } : {}),
  };
}

/** SIP headers that carry the pop on the transfer (ASCII, one line each). */
export function popHeaders(pop: ScreenPop, url?: string): Record<string, string> {
  const ascii = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?');
  return {
    'X-Screen-Pop-Id': pop.id,
    ...(url ? { 'X-Screen-Pop-Url': url } : {}),
    'X-Handoff-Summary': ascii(pop.summary),
    'X-Handoff-Trigger': pop.trigger,
    ...(pop.account ? { 'X-Account-Id': ascii(pop.account.id) } : {}),
    // the rep's phone can show it before they speak: yes / no, posture, jurisdiction
    ...(pop.recording ? { 'X-Call-Recorded': `${pop.recording.recorded ? 'yes' : 'no'};posture=${pop.recording.posture};jurisdiction=${ascii(pop.recording.jurisdiction)};consent=${pop.recording.consent}` } : {}),
  };
}

export class HandoffService {
  private readonly log: Logger;

  constructor(private readonly opts: HandoffOptions) {
    this.log = opts.log ?? logger('handoff');
  }

  /** Start a hand-off now (screen pop; a warm transfer starts ringing the rep). */
  begin(call: HandoffCall, req: TransferRequest, hc: HandoffContext): HandoffRun {
    const t0 = Date.now();
    const pop = this.opts.pops.add(buildScreenPop(call, req, hc, t0));
    const url = this.opts.popUrl?.(pop.id);
    const headers = popHeaders(pop, url);
    const esc = call.tenant.escalation;
    const mode = esc.mode;
    const ringMs = (esc.ringSeconds ?? 0) > 0 ? esc.ringSeconds! * 1000 : this.opts.ringTimeoutMs ?? 20000;
    const uri = repUriFor(esc.repUri ?? this.opts.repUri, req.target);
    const log = this.log.child({ callId: call.callId, popId: pop.id });
    log.info('hand-off', { mode, trigger: pop.trigger, target: req.target, targetName: req.targetName, uri, reason: pop.reason });
    call.noteHandoff({ handoff: mode, handoffTarget: req.target, handoffTrigger: pop.trigger, popId: pop.id });
    void this.crmActivity(call, pop, log);

    const hold = new HoldPlayer(call.session);
    let aborted: string | null = null;
    const onEnded = (): void => run.abort('caller hung up');
    call.on('ended', onEnded);
    const cleanup = (): void => {
      hold.stop();
      call.removeListener('ended', onEnded);
    };
    const fail = (why: string, status?: number): TransferOutcome => {
      cleanup();
      const statusReason = `${why}${status ? ` (${status})` : ''}`;
      this.opts.pops.update(pop.id, { status: 'failed', statusReason });
      call.noteHandoff({ handoffOutcome: statusReason });
      metrics.transfers.inc({ mode, result: why.replace(/\s+/g, '-') });
      log.info('hand-off failed', { why, status, ms: Date.now() - t0 });
      return { ok: false, why, ...(status ? { status } : {}) };
    };

    let warm: Promise<TransferOutcome> | null = null;
    let cancelDial: (() => void) | null = null;
    let connected = false;

    if (mode === 'warm') {
      warm = (async (): Promise<TransferOutcome> => {
        let repSession: (CallMediaSession & { id?: number }) | null = null;
        let offer: SessionDescription;
        let sdp: string;
        try {
          // on the caller's media thread: the two legs are bridged natively below
          repSession = this.opts.engine.createSession({ codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: 101, near: call.session });
          ({ offer, sdp } = createOffer({
            local: { address: this.opts.advertisedAddress, port: repSession.localPort },
            capabilities: { opus: false, ...this.opts.capabilities },
            origin: { sessionId: String(Math.floor(Math.random() * 2 ** 31)), sessionVersion: 1 },
          }));
        } catch (err) {
          repSession?.close();
          log.error('no media session for the rep leg', { err: err as Error });
          return fail('unavailable', 503);
        }
        let ringing = 0;
        let timedOut = false;
        let uacReq: { cancel(cb?: (...a: any[]) => void): void } | null = null;
        const timer = setTimeout(() => {
          timedOut = true;
          log.info('rep did not answer in time; cancelling', { ringMs });
          try { uacReq?.cancel(); } catch { /* already final */ }
        }, ringMs);
        cancelDial = () => {
          clearTimeout(timer);
          try { uacReq?.cancel(); } catch { /* already final */ }
        };
        let dialog: UacDialog;
        try {
          dialog = await this.opts.srf.createUAC(uri, {
            localSdp: sdp, headers, callingNumber: call.from,
            ...(pop.caller.name ? { callingName: pop.caller.name.replace(/[^\x20-\x7e]|"/g, '') } : {}),
          }, {
            cbRequest: (_e, r) => { uacReq = r; },
            cbProvisional: (res) => {
              if ((res.status === 180 || res.status === 183) && !ringing) {
                ringing = Date.now();
                log.info('rep ringing', { status: res.status, triggerToRingMs: ringing - t0 });
                call.noteHandoff({ triggerToRingMs: ringing - t0 });
              }
            },
          });
        } catch (err) {
          clearTimeout(timer);
          repSession.close();
          const status = Number((err as { status?: number }).status) || 0;
          if (aborted) return fail('caller hung up', status || undefined);
          if (timedOut || status === 408 || status === 480 || status === 487) return fail('no-answer', status || undefined);
          if (status === 486 || status === 600) return fail('busy', status);
          if (status >= 300) return fail('rejected', status);
          log.warn('rep call failed', { err: err as Error });
          return fail('unavailable', status || undefined);
        }
        clearTimeout(timer);
        const answeredAt = Date.now();
        if (aborted) {
          dialog.destroy().catch(() => {});
          repSession.close();
          return fail('caller hung up');
        }
        try {
          const a = processAnswer(dialog.remote.sdp, offer);
          if (a.codec !== 'PCMU' || a.payloadType !== 0) repSession.setCodec(a.codec, a.payloadType, a.remoteFmtp);
          if (a.remote) repSession.setRemote(a.remote.address, a.remote.port);
        } catch (err) {
          log.warn('unusable SDP answer from the rep; hanging up that leg', { err: err as Error });
          dialog.destroy().catch(() => {});
          repSession.close();
          return fail('unavailable', 488);
        }
        // Bridge at once: the rep hears the caller immediately; what is left of the handshake
        // still plays to the caller (JS audio is mixed into a bridged session), hold audio
        // never starts.
        if (aborted || call.state !== 'answered') {
          dialog.destroy().catch(() => {});
          repSession.close();
          return fail('caller hung up');
        }
        cleanup();
        const rs = repSession;
        try {
          this.opts.engine.bridge(call.session, rs);
        } catch (err) {
          log.error('bridge failed', { err: err as Error });
          dialog.destroy().catch(() => {});
          rs.close();
          return fail('unavailable', 500);
        }
        let released = false;
        call.attachRepLeg({
          dialog,
          target: req.target,
          release: () => {
            if (released) return;
            released = true;
            try { this.opts.engine.unbridge(rs); } catch { /* closed */ }
            rs.close();
          },
        });
        connected = true;
        const bridgedAt = Date.now();
        this.opts.pops.update(pop.id, { status: 'connected', statusReason: `answered by ${req.targetName ?? req.target}` });
        call.noteHandoff({ handoffOutcome: 'connected', answerToBridgeMs: bridgedAt - answeredAt });
        metrics.transfers.inc({ mode, result: 'connected' });
        log.info('hand-off connected', {
          ringMs: ringing ? answeredAt - ringing : undefined, triggerToRingMs: ringing ? ringing - t0 : undefined,
          answerMs: answeredAt - t0, bridgeMs: bridgedAt - answeredAt,
        });
        return { ok: true };
      })();
    }

    const run: HandoffRun = {
      pop,
      finish: async () => {
        if (aborted) return fail(aborted);
        if (warm) {
          if (!connected) hold.start();
          return warm;
        }
        hold.start();
        return this.blind(call, uri, headers, ringMs, pop, log, () => aborted).then((o) => {
          if (o.ok) {
            cleanup();
            this.opts.pops.update(pop.id, { status: 'referred', statusReason: `transferred to ${req.targetName ?? req.target}` });
            call.noteHandoff({ handoffOutcome: 'referred' });
            metrics.transfers.inc({ mode, result: 'referred' });
            void call.hangup('transferred');
            return o;
          }
          return fail(o.why, o.status);
        });
      },
      abort: (why: string) => {
        if (aborted) return;
        aborted = why;
        log.info('hand-off aborted', { why });
        cancelDial?.();
        cleanup();
        if (this.opts.pops.get(pop.id)?.status === 'ringing') this.opts.pops.update(pop.id, { status: 'ended', statusReason: why });
      },
    };
    return run;
  }

  /** REFER the caller to the rep; resolves when the NOTIFYs report the outcome. */
  private async blind(call: HandoffCall, uri: string, headers: Record<string, string>, ringMs: number, pop: ScreenPop, log: Logger, aborted: () => string | null): Promise<TransferOutcome> {
    const embedded = Object.entries(headers).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    const referTo = `<${uri}${uri.includes('?') ? '&' : '?'}${embedded}>`;
    const referredBy = `<${this.opts.referredBy ?? `sip:voice-agent@${this.opts.advertisedAddress}`}>`;
    let progress: (p: ReferProgress) => void = () => {};
    const final = new Promise<ReferProgress | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), ringMs + 5000);
      progress = (p) => {
        if (p.status >= 200 || p.terminated) {
          clearTimeout(timer);
          resolve(p);
        }
      };
      call.on('refer-progress', progress);
    });
    let status: number;
    try {
      status = await call.refer(referTo, { 'Referred-By': referredBy, 'X-Screen-Pop-Id': pop.id });
    } catch (err) {
      call.removeListener('refer-progress', progress);
      const s = Number((err as { status?: number }).status) || 0;
      log.warn('REFER failed', { err: err as Error, status: s });
      return { ok: false, why: 'refer-failed', ...(s ? { status: s } : {}) };
    }
    if (status < 200 || status >= 300) {
      call.removeListener('refer-progress', progress);
      log.warn('REFER rejected', { status });
      return { ok: false, why: 'refer-rejected', status };
    }
    log.info('REFER accepted', { status });
    const p = await final;
    call.removeListener('refer-progress', progress);
    if (aborted()) return { ok: false, why: aborted()! };
    if (!p) return { ok: false, why: 'no-answer' };
    if (p.status >= 200 && p.status < 300) return { ok: true };
    if (p.status === 486 || p.status === 600) return { ok: false, why: 'busy', status: p.status };
    if ([408, 480, 487].includes(p.status)) return { ok: false, why: 'no-answer', status: p.status };
    return { ok: false, why: 'rejected', status: p.status };
  }

  /** The pop as an activity on the account (best effort, bounded by the gateway's timeout). */
  private async crmActivity(call: HandoffCall, pop: ScreenPop, log: Logger): Promise<void> {
    if (!this.opts.gatewayFor) return;
    try {
      const gw = await this.opts.gatewayFor(call.tenant);
      if (!gw.listTools().some((t) => t.name === 'log_activity')) {
        log.debug('no log_activity tool for this tenant; pop not written to the CRM');
        return;
      }
      const r = await gw.call('log_activity', {
        ...(pop.account ? { account_id: pop.account.id } : {}),
        ...(pop.caller.contactId ? { contact_id: pop.caller.contactId } : {}),
        kind: 'handoff', call_id: call.callId, summary: pop.summary, reason: pop.reason,
        transcript: pop.transcript.map((e) => `${e.role}: ${e.text}`).join('\n'),
        target: `${pop.target.name} (${pop.target.extension})`, idempotency_key: `handoff:${pop.id}`,
      }, { tenantId: call.tenant.id, callId: call.callId });
      if (r.ok) log.info('screen pop written to the CRM', { activityId: r.data.activity_id as string | undefined });
      else log.warn('CRM activity failed', { error: r.error, code: r.code });
    } catch (err) {
      log.warn('CRM activity failed', { err: err as Error });
    }
  }
}
