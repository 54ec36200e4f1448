/** SDP: parse/serialize (RFC 8866) and offer/answer (RFC 3264) for the call's audio stream. */
export {
  SdpError, parseSdp, serializeSdp, rtpMaps, fmtpOf, directionOf, ptimeOf, getAttribute, MAX_SDP_BYTES,
  type SdpErrorKind, type SessionDescription, type SdpMedia, type SdpOrigin, type SdpConnection,
  type SdpAttribute, type SdpTiming, type Direction, type RtpMap,
} from './parse.ts';
export {
  negotiate, createOffer, createReoffer, processAnswer, supportedCodecs, DEFAULT_CAPABILITIES, OFFER_TELEPHONE_EVENT_PT,
  OFFER_TELEPHONE_EVENT_48K_PT, OFFER_OPUS_PT, OPUS_FMTP,
  type OfferOptions, type ReofferOptions,
  type CodecName, type MediaCapabilities, type NegotiateOptions, type NegotiatedAudio, type Negotiation,
} from './negotiate.ts';
export {
  parseCryptoLine, chooseCrypto, cryptoValue, newSrtpKey, isSdesProto, sameKey, SRTP_SUITES, SRTP_POLICIES, SRTP_KEY_BYTES,
  MIN_SRTP_LIFETIME, type SrtpPolicy, type SrtpSuiteName, type SrtpParams, type CryptoLine,
} from './crypto.ts';
export {
  sdpFromBody, splitMultipart, parseContentType, BodyError, SDP_ACCEPT, SDP_BODY_TYPES,
  type SdpBody, type OtherPart,
} from './body.ts';
