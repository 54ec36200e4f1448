/**
 * IPv4 or IPv6 media for a call: the peer's SDP `c=IN IP4` / `c=IN IP6` decides which family
 * our RTP socket must have, and the answer's `c=` carries our address of that family. An
 * offer whose family we cannot serve is rejected (488, Warning 301) — never answered 200
 * with audio that cannot flow (a v4 socket cannot send to a v6 peer, nor the reverse).
 */
import { isIPv6 } from 'node:net';
import type { RtpConfig } from '../config.ts';

export type MediaFamily = 4 | 6;

/** Our media address per family: what the answer's `c=` says. */
export interface MediaAddress {
  family: MediaFamily;
  /** advertised in `c=`/`o=` */
  address: string;
}

/**
 * The address advertised for `family`, or undefined when the configuration has none:
 * IPv4 — `rtp.publicAddress` when it is an IPv4 address; IPv6 — `rtp.publicAddress6`
 * (defaulted from `rtp.address6`, or from `rtp.address` when that is IPv6).
 */
export function advertisedAddress(rtp: Pick<RtpConfig, 'publicAddress' | 'publicAddress6'>, family: MediaFamily): string | undefined {
  if (family === 6) return rtp.publicAddress6 ?? (isIPv6(rtp.publicAddress) ? rtp.publicAddress : undefined);
  return isIPv6(rtp.publicAddress) ? undefined : rtp.publicAddress;
}

/**
 * Pick the media address for a call. `offered`: the family of the peer's `c=`; undefined for
 * a delayed offer (INVITE without SDP), where the family of the INVITE's source address is
 * preferred and the other one taken when that one is not served. `serves`: what the media
 * engine can bind (MediaEngine.serves). Returns the address, or null with the reason.
 */
export function mediaAddressFor(
  rtp: Pick<RtpConfig, 'publicAddress' | 'publicAddress6'>,
  serves: (family: MediaFamily) => boolean,
  offered: MediaFamily | undefined,
  sourceAddress?: string,
): MediaAddress | { reason: string } {
  const usable = (f: MediaFamily): string | undefined => (serves(f) ? advertisedAddress(rtp, f) : undefined);
  if (offered === undefined) {
    const first: MediaFamily = sourceAddress !== undefined && isIPv6(sourceAddress.replace(/^\[|\]$/g, '')) && !sourceAddress.startsWith('::ffff:') ? 6 : 4;
    for (const f of [first, first === 6 ? 4 : 6] as MediaFamily[]) {
      const a = usable(f);
      if (a !== undefined) return { family: f, address: a };
    }
    return { reason: 'no media address configured' };
  }
  const a = usable(offered);
  if (a !== undefined) return { family: offered, address: a };
  return offered === 6
    ? { reason: 'IPv6 media (c=IN IP6) offered but no IPv6 media address is configured (rtp.address6)' }
    : { reason: 'IPv4 media (c=IN IP4) offered but no IPv4 media address is configured (rtp.address / rtp.publicAddress are IPv6)' };
}
