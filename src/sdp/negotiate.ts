/**
 * RFC 3264 offer/answer for the one audio stream a call carries.
 *
 * We answer the first usable `m=audio` line (RTP/AVP or RTP/AVPF, port ≠ 0, with a codec
 * in common) and reject every other media line with port 0. The codec is the first one in
 * the *offerer's* order that we support (RFC 3264 §6.1 lets the answerer pick; following
 * the offerer is what carriers expect). Exactly one audio codec is answered, plus
 * telephone-event (RFC 4733) when offered at the same clock rate, echoing the offer's
 * payload type and fmtp.
 *
 * SRTP (SDES, RFC 4568; ./crypto.ts): with `srtp.policy` `optional` an RTP/SAVP(F) line is
 * answered RTP/SAVP(F) with our `a=crypto` (same tag and suite as the first usable line of the
 * offer, a fresh key) and RTP/AVP(F) with plain RTP; `required` refuses plain RTP lines and
 * `off` SAVP ones (kind `srtp`: 488 with the reason). An RTP/AVP line that carries a=crypto
 * (best-effort SRTP, RFC 5939 capability negotiation) is taken as plain RTP: out of scope.
 */
import {
  SdpError, parseSdp, serializeSdp, rtpMaps, fmtpOf, directionOf, ptimeOf,
  type Direction, type SessionDescription, type SdpMedia, type RtpMap, type SdpAttribute,
} from './parse.ts';
import { chooseCrypto, cryptoValue, isSdesProto, newSrtpKey, type SrtpParams, type SrtpPolicy, type SrtpSuiteName } from './crypto.ts';

export type CodecName = 'PCMU' | 'PCMA' | 'opus';

/** What the media layer can do. */
export interface MediaCapabilities {
  /** @defaultValue true */
  pcmu: boolean;
  /** @defaultValue true */
  pcma: boolean;
  /**
   * Opus/48000/2 (RFC 7587) with the offer's dynamic payload type. This pure module
   * defaults to off; the call app turns it on when the native media core lists Opus in
   * `supportedCodecs` (src/media).
   * @defaultValue false
   */
  opus: boolean;
  /** RFC 4733 DTMF events. @defaultValue true */
  telephoneEvent: boolean;
}

export const DEFAULT_CAPABILITIES: MediaCapabilities = { pcmu: true, pcma: true, opus: false, telephoneEvent: true };

export interface NegotiateOptions {
  /** Our RTP endpoint, written into `c=` and `m=` of the answer. */
  local: { address: string; port: number };
  capabilities?: Partial<MediaCapabilities>;
  /** `o=` of the answer; keep sessionId and bump sessionVersion on every new answer in a dialog. */
  origin?: { username?: string; sessionId: string; sessionVersion: number };
  /** Prefer this codec if the offer still contains it (re-INVITE keeps the running codec). */
  preferCodec?: CodecName;
  /**
   * Packetization we send, advertised as `a=ptime` for G.711.
   * @defaultValue 20
   */
  ptime?: number;
  /**
   * SRTP policy and our key (generate it once per call with `newSrtpKey()` and pass it to
   * every negotiation of the call, so the answer's key is the one the media session runs;
   * a fresh one is drawn when absent). `preferSuite`: keep this suite when offered (re-INVITE).
   * @defaultValue policy 'off' (RTP/SAVP lines are refused)
   */
  srtp?: { policy: SrtpPolicy; localKey?: Uint8Array; preferSuite?: SrtpSuiteName; scope?: string };
}

export interface NegotiatedAudio {
  codec: CodecName;
  payloadType: number;
  clockRate: number;
  channels: number;
  /** fmtp we answered for the codec, if any */
  fmtp?: string;
  /** fmtp the offer carried for the chosen codec (e.g. Opus `useinbandfec=1;stereo=0`) */
  remoteFmtp?: string;
  /** telephone-event as answered (offer's PT and fmtp echoed) */
  telephoneEvent?: { payloadType: number; clockRate: number; fmtp?: string };
  /** where to send RTP; null when the offer says not to (c=0.0.0.0 / ::) */
  remote: { address: string; port: number } | null;
  /**
   * address type of the peer's `c=` (also for a null address): the family our media must
   * use. Absent in provisional parameters built before any SDP of the peer was seen.
   */
  remoteAddrType?: 'IP4' | 'IP6';
  offerDirection: Direction;
  answerDirection: Direction;
  /** the answer lets us send audio */
  localSends: boolean;
  /** the peer said it will send audio (RTP inactivity supervision applies) */
  remoteSends: boolean;
  /** the peer put the call on hold (sendonly/inactive offer, or c=0.0.0.0) */
  hold: boolean;
  /** index of the answered m= line in the offer */
  mediaIndex: number;
  /** offered a=ptime, if any */
  remotePtime?: number;
  /** SRTP (RTP/SAVP with SDES keys) as answered; absent for plain RTP. Holds keys: never log it. */
  srtp?: SrtpParams;
}

export interface Negotiation {
  audio: NegotiatedAudio;
  answer: SessionDescription;
  /** the answer, serialized */
  sdp: string;
}

interface StaticPt { encoding: string; clockRate: number; channels?: number }
/** RFC 3551 static payload types, used when a format has no rtpmap. */
const STATIC_PTS: Record<number, StaticPt> = {
  0: { encoding: 'PCMU', clockRate: 8000 }, 3: { encoding: 'GSM', clockRate: 8000 },
  4: { encoding: 'G723', clockRate: 8000 }, 5: { encoding: 'DVI4', clockRate: 8000 },
  6: { encoding: 'DVI4', clockRate: 16000 }, 7: { encoding: 'LPC', clockRate: 8000 },
  8: { encoding: 'PCMA', clockRate: 8000 }, 9: { encoding: 'G722', clockRate: 8000 },
  10: { encoding: 'L16', clockRate: 44100, channels: 2 }, 11: { encoding: 'L16', clockRate: 44100 },
  12: { encoding: 'QCELP', clockRate: 8000 }, 13: { encoding: 'CN', clockRate: 8000 },
  14: { encoding: 'MPA', clockRate: 90000 }, 15: { encoding: 'G728', clockRate: 8000 },
  16: { encoding: 'DVI4', clockRate: 11025 }, 17: { encoding: 'DVI4', clockRate: 22050 },
  18: { encoding: 'G729', clockRate: 8000 },
};

/**
 * fmtp we answer/offer for Opus: what *we* want to receive. Our core plays out at 8 or
 * 16 kHz, so wideband is all we can use (saves the peer bandwidth); we decode in-band FEC.
 */
export const OPUS_FMTP = 'maxplaybackrate=16000;sprop-maxcapturerate=16000;minptime=10;useinbandfec=1';
/**
 * payload types we offer for Opus and for telephone-event at 48 kHz when we are the
 * offerer (delayed offer).
 */
export const OFFER_OPUS_PT = 111;
export const OFFER_TELEPHONE_EVENT_48K_PT = 110;

interface OfferedFormat {
  pt: number;
  map: RtpMap | undefined;
}

function describeFormat(f: OfferedFormat): string {
  if (!f.map) return `unknown (pt ${f.pt}, no rtpmap)`;
  const ch = f.map.channels !== undefined && f.map.channels !== 1 ? `/${f.map.channels}` : '';
  return `${f.map.encoding}/${f.map.clockRate}${ch} (pt ${f.pt})`;
}

function offeredFormats(m: SdpMedia): OfferedFormat[] {
  const maps = rtpMaps(m);
  const out: OfferedFormat[] = [];
  for (const f of m.formats) {
    if (!/^\d{1,3}$/.test(f)) continue;
    const pt = Number(f);
    if (pt > 127) continue;
    const stat = STATIC_PTS[pt];
    const map = maps.get(pt) ?? (stat && pt < 96 ? { payloadType: pt, ...stat } : undefined);
    out.push({ pt, map });
  }
  return out;
}

function codecOf(f: OfferedFormat, caps: MediaCapabilities): CodecName | undefined {
  const m = f.map;
  if (!m) return undefined;
  const enc = m.encoding.toUpperCase();
  const mono = m.channels === undefined || m.channels === 1;
  if (enc === 'PCMU' && m.clockRate === 8000 && mono && caps.pcmu) return 'PCMU';
  if (enc === 'PCMA' && m.clockRate === 8000 && mono && caps.pcma) return 'PCMA';
  // RFC 7587 §7 requires opus/48000/2; a missing channel count is tolerated (older stacks).
  if (enc === 'OPUS' && m.clockRate === 48000 && (m.channels === 2 || m.channels === undefined) && caps.opus) return 'opus';
  return undefined;
}

function isTelephoneEvent(f: OfferedFormat): boolean {
  return !!f.map && f.map.encoding.toLowerCase() === 'telephone-event';
}

/** Human-readable list of what we support, e.g. `PCMU/8000, PCMA/8000`. */
export function supportedCodecs(caps: MediaCapabilities = DEFAULT_CAPABILITIES): string {
  const out: string[] = [];
  if (caps.pcmu) out.push('PCMU/8000');
  if (caps.pcma) out.push('PCMA/8000');
  if (caps.opus) out.push('opus/48000/2');
  return out.join(', ');
}

function isRtpProto(proto: string): boolean {
  const p = proto.toUpperCase();
  return p === 'RTP/AVP' || p === 'RTP/AVPF';
}

function answerDirectionFor(offer: Direction): Direction {
  switch (offer) {
    case 'sendonly': return 'recvonly';
    case 'recvonly': return 'sendonly';
    case 'inactive': return 'inactive';
    default: return 'sendrecv';
  }
}

function addrTypeOf(address: string): 'IP4' | 'IP6' {
  return address.includes(':') ? 'IP6' : 'IP4';
}

/**
 * Answer an SDP offer.
 * @throws SdpError — `malformed` (parse errors, audio stream without c=), `no-audio` (no
 * RTP audio stream we can use), `no-common-codec` (message names offered and supported
 * codecs, e.g. `no common codec: offered G729/8000 (pt 18); supported PCMU/8000, PCMA/8000`).
 */
export function negotiate(offerIn: string | SessionDescription, opts: NegotiateOptions): Negotiation {
  const offer = typeof offerIn === 'string' ? parseSdp(offerIn) : offerIn;
  const caps: MediaCapabilities = { ...DEFAULT_CAPABILITIES, ...opts.capabilities };
  const ptime = opts.ptime ?? 20;

  const offeredAll: string[] = [];
  const offeredEvents: string[] = [];
  const unusable: string[] = [];
  const srtpPolicy: SrtpPolicy = opts.srtp?.policy ?? 'off';
  const scope = opts.srtp?.scope ?? 'on this trunk';
  /** why SRTP policy or keys refused a line (488 kind `srtp` when nothing else was usable) */
  const srtpRefusals: string[] = [];
  let chosen: { index: number; media: SdpMedia; format: OfferedFormat; codec: CodecName; formats: OfferedFormat[]; crypto?: { tag: number; suite: SrtpSuiteName; key: Uint8Array } } | undefined;

  offer.media.forEach((m, index) => {
    if (chosen) return;
    if (m.type.toLowerCase() !== 'audio') return;
    if (m.port === 0) return; // already rejected by the offerer
    let crypto: { tag: number; suite: SrtpSuiteName; key: Uint8Array } | undefined;
    if (isSdesProto(m.proto)) {
      if (srtpPolicy === 'off') {
        srtpRefusals.push(`SRTP is off ${scope} (offered m=audio ${m.proto})`);
        return;
      }
      const c = chooseCrypto(m, opts.srtp?.preferSuite);
      if ('reasons' in c) {
        srtpRefusals.push(`no usable a=crypto on m=audio ${m.proto}: ${c.reasons.join('; ')}`);
        return;
      }
      crypto = { tag: c.line.tag, suite: c.line.suite as SrtpSuiteName, key: c.line.key };
    } else if (isRtpProto(m.proto) && srtpPolicy === 'required') {
      srtpRefusals.push(`SRTP required ${scope} (offered m=audio ${m.proto})`);
      return;
    } else if (!isRtpProto(m.proto)) {
      unusable.push(`m=audio with ${m.proto}`);
      return;
    }
    const formats = offeredFormats(m);
    for (const f of formats) (isTelephoneEvent(f) ? offeredEvents : offeredAll).push(describeFormat(f));
    const candidates = formats.filter((f) => codecOf(f, caps) !== undefined);
    if (candidates.length === 0) return;
    const preferred = opts.preferCodec ? candidates.find((f) => codecOf(f, caps) === opts.preferCodec) : undefined;
    const format = preferred ?? candidates[0]!;
    chosen = { index, media: m, format, codec: codecOf(format, caps)!, formats, ...(crypto ? { crypto } : {}) };
  });

  if (!chosen) {
    const supported = supportedCodecs(caps);
    if (srtpRefusals.length > 0 && offeredAll.length === 0 && offeredEvents.length === 0) {
      throw new SdpError('srtp', srtpRefusals.join('; '), { offered: srtpRefusals.join('; '), supported });
    }
    if (offeredAll.length > 0 || offeredEvents.length > 0) {
      const offered = offeredAll.length > 0 ? offeredAll.join(', ') : `only ${offeredEvents.join(', ')}`;
      throw new SdpError('no-common-codec', `no common codec: offered ${offered}; supported ${supported}`, { offered, supported });
    }
    const what = unusable.length > 0
      ? `offered ${unusable.join(', ')} (only RTP/AVP(F) and, with SDES keys, RTP/SAVP(F) are supported)`
      : offer.media.length === 0 ? 'offer has no m= lines' : 'offer has no active m=audio line';
    throw new SdpError('no-audio', `no usable audio stream: ${what}`, { offered: unusable.join(', ') || 'none', supported });
  }
  const c = chosen;
  const conn = c.media.connection ?? offer.connection;
  if (!conn) throw new SdpError('malformed', `malformed SDP: m=audio (line ${c.index + 1} of the media lines) has no c= line and there is no session-level c=`);
  if (conn.netType.toUpperCase() !== 'IN' || !['IP4', 'IP6'].includes(conn.addrType.toUpperCase())) {
    throw new SdpError('unsupported', `unsupported connection address "c=${conn.netType} ${conn.addrType} ${conn.address}" (need IN IP4 or IN IP6)`);
  }
  const nullAddr = conn.address === '0.0.0.0' || conn.address === '::' || /^0+(\.0+){3}$/.test(conn.address);
  const offerDirection = directionOf(offer, c.media);
  const answerDirection = nullAddr && offerDirection === 'sendrecv' ? 'recvonly' : answerDirectionFor(offerDirection);

  const map = c.format.map!;
  const channels = c.codec === 'opus' ? 2 : 1;
  const audio: NegotiatedAudio = {
    codec: c.codec,
    payloadType: c.format.pt,
    clockRate: map.clockRate,
    channels,
    remote: nullAddr ? null : { address: conn.address, port: c.media.port },
    remoteAddrType: conn.addrType.toUpperCase() === 'IP6' ? 'IP6' : 'IP4',
    offerDirection,
    answerDirection,
    localSends: (answerDirection === 'sendrecv' || answerDirection === 'sendonly') && !nullAddr,
    remoteSends: offerDirection === 'sendrecv' || offerDirection === 'sendonly',
    hold: nullAddr || offerDirection === 'sendonly' || offerDirection === 'inactive',
    mediaIndex: c.index,
  };
  const remotePtime = ptimeOf(offer, c.media);
  if (remotePtime !== undefined) audio.remotePtime = remotePtime;
  if (c.codec === 'opus') audio.fmtp = OPUS_FMTP;
  const remoteFmtp = fmtpOf(c.media, c.format.pt);
  if (remoteFmtp !== undefined) audio.remoteFmtp = remoteFmtp;
  if (c.crypto) {
    audio.srtp = { suite: c.crypto.suite, tag: c.crypto.tag, remoteKey: c.crypto.key, localKey: opts.srtp?.localKey ?? newSrtpKey() };
  }

  const answerFormats = [String(c.format.pt)];
  const attrs: SdpAttribute[] = [];
  const ch = c.codec === 'opus' ? '/2' : '';
  const encName = c.codec === 'opus' ? 'opus' : c.codec;
  attrs.push({ name: 'rtpmap', value: `${c.format.pt} ${encName}/${map.clockRate}${ch}` });
  if (audio.fmtp) attrs.push({ name: 'fmtp', value: `${c.format.pt} ${audio.fmtp}` });

  if (caps.telephoneEvent) {
    const te = c.formats.find((f) => isTelephoneEvent(f) && f.map!.clockRate === map.clockRate && f.pt !== c.format.pt);
    if (te) {
      const fmtp = fmtpOf(c.media, te.pt);
      audio.telephoneEvent = { payloadType: te.pt, clockRate: te.map!.clockRate, ...(fmtp !== undefined ? { fmtp } : {}) };
      answerFormats.push(String(te.pt));
      attrs.push({ name: 'rtpmap', value: `${te.pt} telephone-event/${te.map!.clockRate}` });
      if (fmtp !== undefined) attrs.push({ name: 'fmtp', value: `${te.pt} ${fmtp}` });
    }
  }
  if (c.codec !== 'opus') attrs.push({ name: 'ptime', value: String(ptime) });
  attrs.push({ name: answerDirection });
  if (audio.srtp) attrs.push({ name: 'crypto', value: cryptoValue(audio.srtp.tag, audio.srtp.suite, audio.srtp.localKey) });

  const localType = addrTypeOf(opts.local.address);
  const answer: SessionDescription = {
    version: 0,
    origin: {
      username: opts.origin?.username ?? 'voice-agent',
      sessionId: opts.origin?.sessionId ?? String(Date.now()),
      sessionVersion: String(opts.origin?.sessionVersion ?? 1),
      netType: 'IN',
      addrType: localType,
      address: opts.local.address,
    },
    sessionName: 'voice-agent',
    emails: [],
    phones: [],
    connection: { netType: 'IN', addrType: localType, address: opts.local.address },
    bandwidths: [],
    timing: [{ start: '0', stop: '0', repeats: [] }],
    attributes: [],
    media: offer.media.map((m, i): SdpMedia => i === c.index
      ? { type: m.type, port: opts.local.port, proto: m.proto, formats: answerFormats, bandwidths: [], attributes: attrs }
      : { type: m.type, port: 0, proto: m.proto, formats: m.formats.length > 0 ? [...m.formats] : ['0'], bandwidths: [], attributes: [] }),
  };
  return { audio, answer, sdp: serializeSdp(answer) };
}

/**
 * payload type we offer for telephone-event when we are the offerer (delayed offer).
 * @defaultValue 101
 */
export const OFFER_TELEPHONE_EVENT_PT = 101;

export interface OfferOptions {
  local: { address: string; port: number };
  capabilities?: Partial<MediaCapabilities>;
  origin?: { username?: string; sessionId: string; sessionVersion: number };
  /** @defaultValue 20 */
  ptime?: number;
}

/**
 * Our own offer, for an INVITE that arrived without SDP (delayed offer, RFC 3261 §13.2.1):
 * the 200 OK carries this offer and the caller's ACK carries the answer
 * ({@link processAnswer}). Codecs in our preference order: PCMU, PCMA (Opus first when the
 * media layer has it), then telephone-event.
 */
export function createOffer(opts: OfferOptions): { offer: SessionDescription; sdp: string } {
  const caps: MediaCapabilities = { ...DEFAULT_CAPABILITIES, ...opts.capabilities };
  const formats: string[] = [];
  const attrs: SdpAttribute[] = [];
  if (caps.opus) {
    formats.push(String(OFFER_OPUS_PT));
    attrs.push({ name: 'rtpmap', value: `${OFFER_OPUS_PT} opus/48000/2` }, { name: 'fmtp', value: `${OFFER_OPUS_PT} ${OPUS_FMTP}` });
  }
  if (caps.pcmu) {
    formats.push('0');
    attrs.push({ name: 'rtpmap', value: '0 PCMU/8000' });
  }
  if (caps.pcma) {
    formats.push('8');
    attrs.push({ name: 'rtpmap', value: '8 PCMA/8000' });
  }
  if (caps.telephoneEvent) {
    formats.push(String(OFFER_TELEPHONE_EVENT_PT));
    attrs.push({ name: 'rtpmap', value: `${OFFER_TELEPHONE_EVENT_PT} telephone-event/8000` }, { name: 'fmtp', value: `${OFFER_TELEPHONE_EVENT_PT} 0-16` });
    if (caps.opus) {
      // DTMF must share the audio codec's clock: a peer that picks Opus needs it at 48 kHz.
      formats.push(String(OFFER_TELEPHONE_EVENT_48K_PT));
      attrs.push(
        { name: 'rtpmap', value: `${OFFER_TELEPHONE_EVENT_48K_PT} telephone-event/48000` },
        { name: 'fmtp', value: `${OFFER_TELEPHONE_EVENT_48K_PT} 0-16` },
      );
    }
  }
  attrs.push({ name: 'ptime', value: String(opts.ptime ?? 20) }, { name: 'sendrecv' });
  const addrType = addrTypeOf(opts.local.address);
  const offer: SessionDescription = {
    version: 0,
    origin: {
      username: opts.origin?.username ?? 'voice-agent',
      sessionId: opts.origin?.sessionId ?? String(Date.now()),
      sessionVersion: String(opts.origin?.sessionVersion ?? 1),
      netType: 'IN', addrType, address: opts.local.address,
    },
    sessionName: 'voice-agent',
    emails: [], phones: [],
    connection: { netType: 'IN', addrType, address: opts.local.address },
    bandwidths: [],
    timing: [{ start: '0', stop: '0', repeats: [] }],
    attributes: [],
    media: [{ type: 'audio', port: opts.local.port, proto: 'RTP/AVP', formats, bandwidths: [], attributes: attrs }],
  };
  return { offer, sdp: serializeSdp(offer) };
}

/**
 * Read the peer's answer to our offer ({@link createOffer}, or a re-offer in a dialog): which
 * of our codecs it picked (first in its list), where to send, and directions. `mediaIndex`:
 * the audio m= line of our offer (a re-offer keeps the m= lines of the session).
 * @throws SdpError — `malformed`, `no-audio` (audio stream rejected), `no-common-codec`
 */
export function processAnswer(answerIn: string | SessionDescription, offer: SessionDescription, mediaIndex = 0): NegotiatedAudio {
  const answer = typeof answerIn === 'string' ? parseSdp(answerIn) : answerIn;
  const ours = offer.media[mediaIndex];
  if (!ours) throw new SdpError('no-audio', `our offer has no m= line ${mediaIndex + 1}`);
  const m = answer.media[mediaIndex];
  if (!m || m.type.toLowerCase() !== 'audio') throw new SdpError('no-audio', 'answer has no m=audio line matching our offer');
  if (m.port === 0) throw new SdpError('no-audio', 'answer rejected the audio stream (port 0)');
  const ourMaps = rtpMaps(ours);
  const theirMaps = rtpMaps(m);
  const ourFormats = new Set(ours.formats);
  let chosen: { pt: number; codec: CodecName; map: RtpMap } | undefined;
  const tes: RtpMap[] = [];
  for (const f of m.formats) {
    if (!ourFormats.has(f)) continue;
    const pt = Number(f);
    const map = ourMaps.get(pt) ?? (STATIC_PTS[pt] && pt < 96 ? { payloadType: pt, ...STATIC_PTS[pt] } : undefined);
    if (!map) continue;
    const theirs = theirMaps.get(pt);
    if (theirs && theirs.encoding.toLowerCase() !== map.encoding.toLowerCase()) continue; // PT remapped: not allowed
    const enc = map.encoding.toUpperCase();
    if (enc === 'TELEPHONE-EVENT') tes.push(map);
    else if (!chosen) chosen = { pt, codec: enc === 'OPUS' ? 'opus' : (enc as CodecName), map };
  }
  if (!chosen) {
    const offered = m.formats.join(' ');
    throw new SdpError('no-common-codec', `no common codec: answer lists formats ${offered}; we offered ${ours.formats.join(' ')}`, {
      offered, supported: ours.formats.join(' '),
    });
  }
  const conn = m.connection ?? answer.connection;
  if (!conn) throw new SdpError('malformed', 'malformed SDP: answer m=audio has no c= line and there is no session-level c=');
  const nullAddr = conn.address === '0.0.0.0' || conn.address === '::';
  const dir = directionOf(answer, m);
  const audio: NegotiatedAudio = {
    codec: chosen.codec,
    payloadType: chosen.pt,
    clockRate: chosen.map.clockRate,
    channels: chosen.codec === 'opus' ? 2 : 1,
    remote: nullAddr ? null : { address: conn.address, port: m.port },
    remoteAddrType: conn.addrType.toUpperCase() === 'IP6' ? 'IP6' : 'IP4',
    offerDirection: directionOf(offer, ours),
    answerDirection: dir,
    localSends: (dir === 'sendrecv' || dir === 'recvonly') && !nullAddr,
    remoteSends: dir === 'sendrecv' || dir === 'sendonly',
    hold: nullAddr || dir === 'sendonly' || dir === 'inactive',
    mediaIndex,
  };
  const rate = chosen.map.clockRate;
  const te = tes.find((x) => x.clockRate === rate);
  if (te) {
    const fmtp = fmtpOf(m, te.payloadType) ?? fmtpOf(ours, te.payloadType);
    audio.telephoneEvent = { payloadType: te.payloadType, clockRate: te.clockRate, ...(fmtp !== undefined ? { fmtp } : {}) };
  }
  const remotePtime = ptimeOf(answer, m);
  if (remotePtime !== undefined) audio.remotePtime = remotePtime;
  if (isSdesProto(ours.proto)) audio.srtp = answeredSrtp(ours, m);
  if (chosen.codec === 'opus') {
    audio.fmtp = OPUS_FMTP;
    const remoteFmtp = fmtpOf(m, chosen.pt);
    if (remoteFmtp !== undefined) audio.remoteFmtp = remoteFmtp;
  }
  return audio;
}

/**
 * SRTP of an answer to our RTP/SAVP offer: the answer's a=crypto must echo one of our tags
 * with its suite (RFC 4568 §7.1.3) and carry a usable key.
 */
function answeredSrtp(ours: SdpMedia, m: SdpMedia): SrtpParams {
  if (!isSdesProto(m.proto)) throw new SdpError('srtp', `answer to our ${ours.proto} offer is ${m.proto}`);
  const c = chooseCrypto(m);
  if ('reasons' in c) throw new SdpError('srtp', `answer has no usable a=crypto: ${c.reasons.join('; ')}`);
  for (const a of ours.attributes) {
    if (a.name.toLowerCase() !== 'crypto' || !a.value) continue;
    const [tag, suite, key] = a.value.trim().split(/\s+/);
    if (Number(tag) !== c.line.tag || suite !== c.line.suite || !key?.startsWith('inline:')) continue;
    const localKey = new Uint8Array(Buffer.from(key.slice(7).split('|')[0]!, 'base64'));
    return { suite: c.line.suite as SrtpSuiteName, tag: c.line.tag, localKey, remoteKey: c.line.key };
  }
  throw new SdpError('srtp', `answer's a=crypto tag ${c.line.tag} ${c.line.suite} matches none of our offer`);
}

export interface ReofferOptions {
  /** our SDP currently in force in the dialog: its m= lines are kept, only the audio line's formats change */
  current: string | SessionDescription;
  /** index of the audio m= line */
  mediaIndex: number;
  /** codecs to offer, most preferred first (unsupported ones are left out) */
  codecs: readonly CodecName[];
  capabilities?: Partial<MediaCapabilities>;
  /**
   * payload types the session already uses (kept for the same codec, RFC 3264 §8.3.2): the
   * running codec's and telephone-event's
   */
  payloadTypes?: { opus?: number; telephoneEvent?: number };
  /** `o=` version of the new offer */
  sessionVersion: number;
  /** @defaultValue 20 */
  ptime?: number;
}

/**
 * Our offer inside an established dialog (re-INVITE): the m= lines of our current SDP, with
 * the audio line offering `codecs` (plus telephone-event when supported) and `a=sendrecv`.
 * Read the answer with {@link processAnswer}(answer, offer, mediaIndex).
 * @throws SdpError (`no-common-codec`) when none of `codecs` is supported
 */
export function createReoffer(opts: ReofferOptions): { offer: SessionDescription; sdp: string } {
  const caps: MediaCapabilities = { ...DEFAULT_CAPABILITIES, ...opts.capabilities };
  const current = typeof opts.current === 'string' ? parseSdp(opts.current) : opts.current;
  const audio = current.media[opts.mediaIndex];
  if (!audio) throw new SdpError('no-audio', `our SDP has no m= line ${opts.mediaIndex + 1}`);
  const supported = (c: CodecName): boolean => (c === 'PCMU' ? caps.pcmu : c === 'PCMA' ? caps.pcma : caps.opus);
  const codecs = [...new Set(opts.codecs)].filter(supported);
  if (codecs.length === 0) {
    throw new SdpError('no-common-codec', `cannot offer ${opts.codecs.join(', ') || 'no codec'}: supported ${supportedCodecs(caps)}`);
  }
  const used = new Set<number>();
  const formats: string[] = [];
  const attrs: SdpAttribute[] = [];
  const take = (preferred: number, fallback: number[]): number => {
    for (const pt of [preferred, ...fallback]) if (!used.has(pt)) return pt;
    for (let pt = 96; pt < 128; pt++) if (!used.has(pt)) return pt;
    throw new SdpError('unsupported', 'no free dynamic payload type');
  };
  for (const c of codecs) {
    if (c === 'PCMU' || c === 'PCMA') {
      const pt = c === 'PCMU' ? 0 : 8;
      used.add(pt);
      formats.push(String(pt));
      attrs.push({ name: 'rtpmap', value: `${pt} ${c}/8000` });
    } else {
      const pt = take(opts.payloadTypes?.opus ?? OFFER_OPUS_PT, [OFFER_OPUS_PT]);
      used.add(pt);
      formats.push(String(pt));
      attrs.push({ name: 'rtpmap', value: `${pt} opus/48000/2` }, { name: 'fmtp', value: `${pt} ${OPUS_FMTP}` });
    }
  }
  if (caps.telephoneEvent) {
    if (codecs.some((c) => c !== 'opus')) {
      const pt = take(opts.payloadTypes?.telephoneEvent ?? OFFER_TELEPHONE_EVENT_PT, [OFFER_TELEPHONE_EVENT_PT]);
      used.add(pt);
      formats.push(String(pt));
      attrs.push({ name: 'rtpmap', value: `${pt} telephone-event/8000` }, { name: 'fmtp', value: `${pt} 0-16` });
    }
    if (codecs.includes('opus')) {
      const pt = take(OFFER_TELEPHONE_EVENT_48K_PT, []);
      used.add(pt);
      formats.push(String(pt));
      attrs.push({ name: 'rtpmap', value: `${pt} telephone-event/48000` }, { name: 'fmtp', value: `${pt} 0-16` });
    }
  }
  if (!codecs.includes('opus')) attrs.push({ name: 'ptime', value: String(opts.ptime ?? 20) });
  attrs.push({ name: 'sendrecv' });
  const offer: SessionDescription = {
    ...current,
    origin: { ...current.origin, sessionVersion: String(opts.sessionVersion) },
    media: current.media.map((m, i) => (i === opts.mediaIndex
      ? { ...audio, formats, attributes: [...attrs, ...audio.attributes.filter((x) => x.name.toLowerCase() === 'crypto')], bandwidths: [] }
      : m)),
  };
  return { offer, sdp: serializeSdp(offer) };
}
