/**
 * Config `srtp` (global, env `SRTP`) and `trunks[].srtp`: the SRTP policy of a call's trunk.
 *
 * ```yaml
 * srtp: optional          # off | optional | required; env SRTP
 * trunks:
 *   - name: carrier
 *     sources: [203.0.113.0/24]
 *     srtp: required      # this trunk: plain RTP offers get 488 "SRTP required on this trunk"
 * ```
 * - `optional` (default): an RTP/SAVP offer with a usable `a=crypto` (SDES, RFC 4568) is
 *   answered RTP/SAVP with our own key; a plain RTP/AVP offer with plain RTP.
 * - `required`: a plain RTP offer is refused with 488 and the reason.
 * - `off`: an RTP/SAVP offer is refused with 488 and the reason (plain RTP only).
 * The negotiation itself is src/sdp/crypto.ts and negotiate.ts; the media is the native core's
 * SrtpContext (native/srtp.{h,cc}).
 */
import { SRTP_POLICIES, type SrtpPolicy } from '../sdp/crypto.ts';

export { SRTP_POLICIES, type SrtpPolicy };

/** @defaultValue 'optional' */
export const DEFAULT_SRTP_POLICY: SrtpPolicy = 'optional';

/** The policy of a call: its trunk's `srtp`, else the global `srtp`, else `optional`. */
export function srtpPolicyFor(global: SrtpPolicy | undefined, trunk: { srtp?: SrtpPolicy } | undefined): SrtpPolicy {
  return trunk?.srtp ?? global ?? DEFAULT_SRTP_POLICY;
}
