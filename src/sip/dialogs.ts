/**
 * drachtio-srf dialogs as the call and hand-off layers see them.
 *
 * drachtio-srf's bundled type declarations describe `Dialog.destroy()` and
 * `Dialog.request()` callback-style and `createUAC`'s `cbRequest` as `(req)`; at run time,
 * without a callback, both return promises and `cbRequest` is called `(err, req)`
 * (lib/srf.js, lib/dialog.js). These adapters state that run-time contract once, in code,
 * so `src/call` ({@link CallDialog}) and `src/escalation` ({@link UacSrf}) get exactly the
 * shapes they declare, with no casts at the call sites.
 */
import type { EventEmitter } from 'node:events';
import type Srf from 'drachtio-srf';
import type { CallDialog } from '../call/call.ts';
import type { UacDialog, UacSrf } from '../escalation/handoff.ts';
import { metrics, sipMethodLabel, statusClass } from '../ops/metrics.ts';

/** A drachtio-srf dialog (UAS or UAC) as a {@link UacDialog} (which is a {@link CallDialog}). */
export function callDialog(d: Srf.Dialog): UacDialog {
  const em = d as EventEmitter;
  return {
    on: (event, listener) => em.on(event, listener),
    removeListener: (event, listener) => em.removeListener(event, listener),
    destroy: (opts) => new Promise((resolve, reject) => {
      countOut('BYE'); // our dialogs are INVITE dialogs: destroy() sends BYE
      d.destroy(opts, (err: unknown, msg: unknown) => (err ? reject(err) : resolve(msg)));
    }),
    // the same objects drachtio-srf keeps: writing local.sdp updates the dialog's own copy
    local: d.local,
    remote: d.remote,
    // srf calls back once per response; an INVITE (session refresh) resolves on its final one
    request: (opts) => new Promise((resolve, reject) => {
      countOut(opts.method);
      (d.request as (o: unknown, cb: (err: unknown, res: { status: number; reason?: string; get?(h: string): string | undefined }) => void) => void)(
        opts, (err, res) => {
          if (err) reject(err);
          else {
            countIn(opts.method, res.status);
            if (opts.method !== 'INVITE' || res.status >= 200) resolve(res);
          }
        });
    }),
  };
}

/**
 * A provisional response, reliable (RFC 3262) when `opts.headers.Require` names 100rel: the
 * run-time `res.send(status, reason, opts, callback, onPrack)` of drachtio-srf, whose bundled
 * types lack the fifth argument. The edge (built-in or drachtio-server) adds RSeq and
 * retransmits; drachtio-srf calls `onPrack` when the caller's PRACK arrives.
 */
export function sendProvisional(
  res: Srf.SrfResponse, status: number, reason: string,
  opts: { headers?: Record<string, string>; body?: string }, done: (err: unknown) => void, onPrack?: () => void,
): void {
  Reflect.apply(res.send, res, onPrack ? [status, reason, opts, done, onPrack] : [status, reason, opts, done]);
}

/** The UAC side of drachtio-srf the hand-off uses (rep legs of warm transfers). */
export function uacSrf(srf: Srf): UacSrf {
  return {
    createUAC: async (uri, opts, progress) => {
      countOut('INVITE');
      let dialog: Srf.Dialog;
      try {
        dialog = await srf.createUAC(uri, opts, {
          cbRequest: (...a: unknown[]) => progress?.cbRequest?.(a[0], a[1] as Parameters<NonNullable<NonNullable<typeof progress>['cbRequest']>>[1]),
          cbProvisional: (res) => {
            countIn('INVITE', res.status);
            progress?.cbProvisional?.(res);
          },
        });
      } catch (err) {
        const status = (err as { status?: unknown })?.status;
        if (typeof status === 'number') countIn('INVITE', status);
        throw err;
      }
      countIn('INVITE', 200);
      return callDialog(dialog);
    },
  };
}

/** App-side counters of what the app itself sends (its requests) and what it gets back. */
function countOut(method: string): void {
  metrics.sipRequests.inc({ layer: 'app', direction: 'out', method: sipMethodLabel(method) });
}
function countIn(method: string, status: number): void {
  metrics.sipResponses.inc({ layer: 'app', direction: 'in', method: sipMethodLabel(method), status_class: statusClass(status) });
}
