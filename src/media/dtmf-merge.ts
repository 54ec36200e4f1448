/**
 * One key press, one digit — whichever way it was signalled.
 *
 * A call's digits can reach us two ways: in the media (RFC 4733 telephone-events, or tones
 * in the audio found by the native in-band detector — the core never runs both on one
 * stream) and in SIP signalling (INFO with `application/dtmf-relay` / `application/dtmf`).
 * Some gateways send a press both ways at once. {@link DtmfMerge} sits in front of a
 * session's 'dtmfStart'/'dtmf' events and lets the first report of a press through: a
 * report of the same digit from the *other* way, within {@link DTMF_MERGE_WINDOW_MS} of a
 * delivered report, is the same press and is dropped (its end too). Reports from one way
 * are never merged with each other: two quick presses of the same key stay two digits.
 *
 * Pure logic with an injectable clock; JS thread only.
 */

/** How a digit was signalled: in the RTP stream (RFC 4733 or in-band tones) or by SIP INFO. */
export type DtmfPath = 'media' | 'sip';

/**
 * A report of the same digit from the other path within this long of a delivered report
 * of it is the same key press. Gateways that send both send them within a few ms of each
 * other (INFO at key-down, the RFC 4733 start at key-down, its end at key-up).
 * @defaultValue 1000
 */
export const DTMF_MERGE_WINDOW_MS = 1000;

export class DtmfMerge {
  /** per path: digit → when a report of it was last delivered */
  private readonly delivered: Record<DtmfPath, Map<string, number>> = { media: new Map(), sip: new Map() };
  /** per path: the digit whose start was dropped, so its end is dropped too */
  private readonly dropping: Record<DtmfPath, string | null> = { media: null, sip: null };

  constructor(private readonly now: () => number = Date.now, private readonly windowMs = DTMF_MERGE_WINDOW_MS) {}

  /** A press started on `path`: true = deliver ('dtmfStart'). */
  start(path: DtmfPath, digit: string): boolean {
    if (this.isEcho(path, digit)) {
      this.dropping[path] = digit;
      return false;
    }
    this.dropping[path] = null;
    this.delivered[path].set(digit, this.now());
    return true;
  }

  /** A press ended on `path`: true = deliver ('dtmf'). */
  end(path: DtmfPath, digit: string): boolean {
    if (this.dropping[path] === digit) {
      this.dropping[path] = null;
      return false;
    }
    this.dropping[path] = null;
    if (this.isEcho(path, digit)) return false; // an end whose start we never saw, of a press already delivered
    this.delivered[path].set(digit, this.now());
    return true;
  }

  private isEcho(path: DtmfPath, digit: string): boolean {
    const other = this.delivered[path === 'media' ? 'sip' : 'media'].get(digit);
    return other !== undefined && this.now() - other < this.windowMs;
  }
}
