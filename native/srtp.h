// SRTP / SRTCP (RFC 3711) for one session, keyed by SDES (RFC 4568), over
// libsrtp2. Suites: AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (for
// the _32 suite SRTCP still carries an 80-bit tag, RFC 4568 §6.2.2 / §6.2.1).
//
// Two libsrtp sessions per context: `tx_` (outbound policy, our key, the
// session's own SSRC — its stream exists from srtp_create, so the send path
// never allocates) and `rx_` (inbound policy, the peer's key, any SSRC: libsrtp
// clones its template into a stream for each new SSRC, and only after that
// SSRC's first packet authenticated, so forged packets never allocate). They
// are separate so that the peer may re-key (re-INVITE) without restarting our
// own stream's rollover counter under an unchanged key (keystream reuse).
//
// Threading: a context is created on the JS thread (srtp_create) and from then
// on used by exactly one thread at a time — the media thread, through the
// Session that owns it; libsrtp keeps no per-session state outside the srtp_t,
// and its only global, the crypto kernel, is read-only after srtpGlobalInit().
// Keys are copied into libsrtp and wiped from our buffers; nothing here logs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace voice {

enum class SrtpSuite : uint8_t { AesCm128HmacSha1_80 = 0, AesCm128HmacSha1_32 = 1 };

/** Master key (16) || master salt (14), as carried base64 in a=crypto inline:. */
constexpr size_t kSrtpKeySaltLen = 30;
/**
 * Room protect() may write after the packet: libsrtp's SRTP_MAX_TRAILER_LEN (largest tag +
 * largest MKI), which its documentation asks for, though our suites add 10 (SRTP) or 14 (SRTCP).
 */
constexpr size_t kSrtpTrailer = 144;

/** SDES key material of one session, as handed from JS (the owner wipes it after use). */
struct SrtpKeys {
  SrtpSuite suite = SrtpSuite::AesCm128HmacSha1_80;
  uint8_t local[kSrtpKeySaltLen];   // ours: protects what we send
  uint8_t remote[kSrtpKeySaltLen];  // the peer's: unprotects what we receive
};

/** Parse "AES_CM_128_HMAC_SHA1_80" / "..._32"; false if unknown. */
bool srtpSuiteFromName(const std::string& name, SrtpSuite* out);
const char* srtpSuiteName(SrtpSuite s);

/**
 * libsrtp's srtp_init(), once per process (std::call_once). srtp_init is not
 * itself thread-safe (it builds the crypto kernel's global lists); call_once
 * makes the first caller run it and every other caller wait for it. After it,
 * the kernel is only read (cipher/auth type look-ups in srtp_create), so
 * contexts may be created and used on any thread. Called from the JS thread by
 * Engine::createSession / Session::setSrtpRemote and by the test binding.
 */
bool srtpGlobalInit(std::string* err);

/** Wipe key material (not optimised away). */
void srtpWipe(void* p, size_t n);

class SrtpContext {
 public:
  enum class Rx : uint8_t { Ok, AuthFail, Replay, Invalid };

  /**
   * `localKey` protects what we send (SSRC `txSsrc`), `remoteKey` unprotects
   * what the peer sends. A null `localKey` makes an inbound-only context (a
   * re-key handed to adoptRemote). Throws std::runtime_error (message without
   * key material) on failure.
   */
  SrtpContext(SrtpSuite suite, const uint8_t localKey[kSrtpKeySaltLen], const uint8_t remoteKey[kSrtpKeySaltLen],
              uint32_t txSsrc);
  ~SrtpContext();
  SrtpContext(const SrtpContext&) = delete;
  SrtpContext& operator=(const SrtpContext&) = delete;

  SrtpSuite suite() const { return suite_; }

  /** Take the inbound side of `other` (built on the JS thread for a peer that re-keyed); ours is freed. */
  void adoptRemote(SrtpContext& other);

  /** Encrypt + authenticate the RTP packet in buf[0, *len) in place; buf must hold *len + kSrtpTrailer. */
  bool protectRtp(uint8_t* buf, size_t* len, size_t cap);
  /** Same for one compound RTCP packet (SRTCP: adds E|index and the 80-bit tag). */
  bool protectRtcp(uint8_t* buf, size_t* len, size_t cap);
  /** Authenticate (+ replay check) and decrypt in place; on Ok *len is the plain RTP length. */
  Rx unprotectRtp(uint8_t* buf, size_t* len);
  Rx unprotectRtcp(uint8_t* buf, size_t* len);

 private:
  struct Impl;
  SrtpSuite suite_;
  std::unique_ptr<Impl> impl_;
};

/** RFC 5761 §4: on a multiplexed port, second byte 192..223 is RTCP (SRTCP keeps that byte in clear). */
inline bool looksLikeRtcp(const uint8_t* buf, size_t len) { return len >= 2 && buf[1] >= 192 && buf[1] <= 223; }

}  // namespace voice
