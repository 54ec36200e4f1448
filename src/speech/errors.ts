/**
 * Why a speech provider failed, as a small bounded set (the `reason` label of
 * `voice_agent_speech_fallbacks_total`): `timeout` (a deadline passed), `http_5xx`,
 * `http_4xx` (a bad key, an unknown model or voice …), `connection` (refused, reset, DNS),
 * `error` (anything else: a bad response, a local engine error).
 */
export type SpeechFailureReason = 'timeout' | 'http_5xx' | 'http_4xx' | 'connection' | 'error';

/** A provider's failure with its {@link SpeechFailureReason}. */
export class SpeechProviderError extends Error {
  override name = 'SpeechProviderError';
  constructor(message: string, readonly reason: SpeechFailureReason, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The reason of an error (looks through `cause` chains and the openai SDK's error classes by shape). */
export function speechFailureReason(err: unknown): SpeechFailureReason {
  for (let e = err as (Error & { status?: unknown; reason?: unknown; code?: unknown; cause?: unknown }) | undefined, depth = 0; e && depth < 6; e = e.cause as typeof e, depth++) {
    if (e instanceof SpeechProviderError) return e.reason;
    const name = e.constructor?.name ?? e.name;
    if (name === 'APIConnectionTimeoutError' || e.name === 'TimeoutError' || /timed? ?out/i.test(e.message ?? '')) return 'timeout';
    if (typeof e.status === 'number') return e.status >= 500 ? 'http_5xx' : 'http_4xx';
    if (name === 'APIConnectionError' || (typeof e.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|UND_ERR_SOCKET)$/.test(e.code))) return 'connection';
  }
  return 'error';
}
