/**
 * A small drachtio-srf application for the conformance suite. It behaves by the dialed
 * number (Request-URI user) so SIPp scenarios can pick a flow, and records what drachtio-srf
 * reported, so the same flows can be compared between the built-in edge and drachtio-server.
 *
 *   answer   (any other number) createUAS with a PCMU answer; waits for the caller's BYE
 *   app-bye  createUAS, then the app hangs up (dialog.destroy) after 1 s
 *   ring     180 Ringing, never answers; expects a CANCEL (the edge sends 487 itself)
 *   reject   488 with Reason and Warning
 *   100rel   183 Session Progress with SDP sent reliably (Require: 100rel), createUAS once the
 *            caller's PRACK arrived (the PRACK callback of res.send); waits for the caller's BYE
 * OPTIONS → 200. `placeCall(uri)` is the UAC flow (createUAC, hang up after 500 ms).
 */
import Srf from 'drachtio-srf';

const SDP = (port: number): string => [
  'v=0', `o=conformance 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
  `m=audio ${port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16', 'a=ptime:20', 'a=sendrecv', '',
].join('\r\n');

/** What the app saw for one call (Call-ID), in order. */
export type Events = Map<string, string[]>;

export class ConformanceApp {
  readonly srf = new Srf();
  readonly events: Events = new Map();
  /** Events in arrival order across calls: `${callId} ${event}`. */
  readonly timeline: string[] = [];
  private timers = new Set<NodeJS.Timeout>();

  constructor(private readonly mediaPort = 27990) {
    this.srf.on('error', () => { /* reconnect noise */ });
    this.srf.use('options', (req, res) => {
      this.note(req.get('Call-ID'), 'options');
      res.send(200, { headers: { Allow: 'INVITE, ACK, CANCEL, BYE, OPTIONS' } });
    });
    this.srf.invite((req, res) => this.onInvite(req, res));
  }

  note(callId: string, ev: string): void {
    const list = this.events.get(callId) ?? [];
    list.push(ev);
    this.events.set(callId, list);
    this.timeline.push(`${callId} ${ev}`);
  }

  /** Every event list, keyed by the first event's flow label (the dialed user). */
  connect(host: string, port: number, secret: string, timeoutMs = 10000): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no connection to ${host}:${port}`)), timeoutMs);
      this.srf.once('connect', (err: Error | null, hostport: string) => {
        clearTimeout(t);
        if (err) reject(err);
        else resolve(hostport);
      });
      void this.srf.connect({ host, port, secret });
    });
  }

  private onInvite(req: Srf.SrfRequest, res: Srf.SrfResponse): void {
    const callId = req.get('Call-ID');
    let user = '';
    try {
      user = Srf.parseUri(req.uri)?.user ?? '';
    } catch { /* keep '' */ }
    this.note(callId, `invite:${user}`);
    if (user === 'reject') {
      res.send(488, {
        headers: {
          Reason: 'Q.850;cause=65;text="no common codec"',
          Warning: '305 conformance "Incompatible media format"',
        },
      });
      this.note(callId, 'rejected-488');
      return;
    }
    if (user === '100rel') {
      // drachtio-srf's reliable provisional: res.send(status, reason, opts, callback, onPrack)
      // (the bundled types lack onPrack)
      Reflect.apply(res.send, res, [183, 'Session Progress', {
        headers: { Require: '100rel', 'Content-Type': 'application/sdp' }, body: SDP(this.mediaPort),
      }, (err: unknown) => {
        if (err) this.note(callId, `183-error:${String(err)}`);
      }, () => {
        this.note(callId, 'prack');
        this.srf.createUAS(req, res, { localSdp: SDP(this.mediaPort) }).then(
          (dialog) => {
            this.note(callId, 'answered');
            dialog.on('destroy', () => this.note(callId, 'destroy-by-caller'));
          },
          (err: Error) => this.note(callId, `uas-error:${(err as { status?: number }).status ?? err.message}`),
        );
      }]);
      return;
    }
    if (user === 'ring') {
      res.send(180);
      req.on('cancel', () => this.note(callId, 'cancel'));
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (!res.finalResponseSent) res.send(480);
      }, 8000);
      this.timers.add(t);
      return;
    }
    this.srf.createUAS(req, res, { localSdp: SDP(this.mediaPort) }).then(
      (dialog) => {
        this.note(callId, 'answered');
        dialog.on('destroy', () => this.note(callId, 'destroy-by-caller'));
        if (user === 'app-bye') {
          const t = setTimeout(() => {
            this.timers.delete(t);
            dialog.destroy(undefined, (err) => this.note(callId, err ? 'app-bye-failed' : 'app-bye-sent'));
          }, 1000);
          this.timers.add(t);
        }
      },
      (err: Error) => this.note(callId, `uas-error:${(err as { status?: number }).status ?? err.message}`),
    );
  }

  /** UAC flow: call `uri`, hang up after `holdMs`. Resolves with the events of that call. */
  async placeCall(uri: string, holdMs = 500): Promise<string[]> {
    const evs: string[] = [];
    try {
      const dialog = await this.srf.createUAC(uri, { localSdp: SDP(this.mediaPort), headers: { 'X-Conformance': 'uac' } }, {
        cbProvisional: (r) => evs.push(`provisional:${r.status}`),
      });
      evs.push('connected');
      const remoteHasPcmu = /m=audio \d+ RTP\/AVP 0/.test(dialog.remote.sdp);
      evs.push(remoteHasPcmu ? 'remote-sdp-pcmu' : 'remote-sdp-other');
      await new Promise((r) => setTimeout(r, holdMs));
      await new Promise<void>((resolve) => dialog.destroy(undefined, () => resolve()));
      evs.push('bye-sent');
    } catch (err) {
      evs.push(`uac-error:${(err as { status?: number }).status ?? (err as Error).message}`);
    }
    return evs;
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    try {
      this.srf.disconnect();
    } catch { /* not connected */ }
  }
}
