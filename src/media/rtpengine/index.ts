/**
 * rtpengine integration (ng control protocol through rtpengine-client): a typed client with
 * deadlines and clear errors, and the anchor the call layer uses so the carrier's media lands
 * on rtpengine and is relayed to the native core. Off unless `RTPENGINE_URL` is set.
 */
export {
  RtpengineClient, RtpengineError, parseRtpengineUrl, RTPENGINE_CLIENT_DEFAULTS,
  type RtpengineClientOptions, type RtpengineEndpoint, type RtpengineErrorKind, type NgParams, type NgReply, type NgValue,
  type OfferAnswerParams,
} from './client.ts';
export {
  RtpengineAnchor, AnchoredCall, createRtpengineAnchor, rtpengineConfigFromEnv, RTPENGINE_DEFAULTS,
  type RtpengineConfig, type AnchoredCallState,
} from './anchor.ts';
