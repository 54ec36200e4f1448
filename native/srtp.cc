#include "srtp.h"

#include <srtp2/srtp.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <utility>
#include <stdexcept>

namespace voice {

static_assert(kSrtpTrailer >= SRTP_MAX_TRAILER_LEN, "protect() needs SRTP_MAX_TRAILER_LEN bytes after the packet");

namespace {

std::once_flag gInitOnce;
srtp_err_status_t gInitStatus = srtp_err_status_fail;

// libsrtp's own messages: errors and warnings go to stderr with a prefix, info and debug
// (the debug modules can print key material when switched on; we never switch them on)
// are dropped.
void logHandler(srtp_log_level_t level, const char* msg, void*) {
  if (level == srtp_log_level_error || level == srtp_log_level_warning) std::fprintf(stderr, "libsrtp: %s\n", msg);
}

void setPolicy(srtp_policy_t* p, SrtpSuite suite) {
  std::memset(p, 0, sizeof *p);
  if (suite == SrtpSuite::AesCm128HmacSha1_32) srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p->rtp);
  else srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
  // RFC 4568 §6.2.2: SRTCP keeps the 80-bit tag under AES_CM_128_HMAC_SHA1_32 as well.
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
  p->window_size = 128;  // libsrtp's default replay window (packets behind the highest index)
  p->allow_repeat_tx = 0;
  p->next = nullptr;
}

srtp_t create(SrtpSuite suite, const uint8_t key[kSrtpKeySaltLen], bool outbound, uint32_t ssrc) {
  std::string err;
  if (!srtpGlobalInit(&err)) throw std::runtime_error(err);
  srtp_policy_t p;
  setPolicy(&p, suite);
  uint8_t k[kSrtpKeySaltLen];
  std::memcpy(k, key, sizeof k);
  p.key = k;
  if (outbound) {
    p.ssrc.type = ssrc_specific;
    p.ssrc.value = ssrc;
  } else {
    p.ssrc.type = ssrc_any_inbound;
  }
  srtp_t s = nullptr;
  const srtp_err_status_t st = srtp_create(&s, &p);
  srtpWipe(k, sizeof k);
  if (st != srtp_err_status_ok) {
    throw std::runtime_error(std::string("SRTP ") + (outbound ? "outbound" : "inbound") + " context: libsrtp error " +
                             std::to_string(static_cast<int>(st)));
  }
  return s;
}

SrtpContext::Rx rxStatus(srtp_err_status_t st) {
  switch (st) {
    case srtp_err_status_ok: return SrtpContext::Rx::Ok;
    case srtp_err_status_auth_fail: return SrtpContext::Rx::AuthFail;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old: return SrtpContext::Rx::Replay;
    default: return SrtpContext::Rx::Invalid;  // too short, bad header, no context …
  }
}

}  // namespace

bool srtpSuiteFromName(const std::string& name, SrtpSuite* out) {
  if (name == "AES_CM_128_HMAC_SHA1_80") *out = SrtpSuite::AesCm128HmacSha1_80;
  else if (name == "AES_CM_128_HMAC_SHA1_32") *out = SrtpSuite::AesCm128HmacSha1_32;
  else return false;
  return true;
}

const char* srtpSuiteName(SrtpSuite s) {
  return s == SrtpSuite::AesCm128HmacSha1_32 ? "AES_CM_128_HMAC_SHA1_32" : "AES_CM_128_HMAC_SHA1_80";
}

bool srtpGlobalInit(std::string* err) {
  std::call_once(gInitOnce, [] {
    gInitStatus = srtp_init();
    if (gInitStatus == srtp_err_status_ok) srtp_install_log_handler(&logHandler, nullptr);
  });
  if (gInitStatus != srtp_err_status_ok) {
    if (err) *err = "libsrtp initialisation failed (error " + std::to_string(static_cast<int>(gInitStatus)) + ")";
    return false;
  }
  return true;
}

void srtpWipe(void* p, size_t n) {
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  while (n--) *v++ = 0;
}

struct SrtpContext::Impl {
  srtp_t tx = nullptr;
  srtp_t rx = nullptr;
  ~Impl() {
    if (tx) srtp_dealloc(tx);
    if (rx) srtp_dealloc(rx);
  }
};

SrtpContext::SrtpContext(SrtpSuite suite, const uint8_t localKey[kSrtpKeySaltLen], const uint8_t remoteKey[kSrtpKeySaltLen],
                         uint32_t txSsrc)
    : suite_(suite), impl_(new Impl()) {
  if (localKey) impl_->tx = create(suite, localKey, true, txSsrc);
  impl_->rx = create(suite, remoteKey, false, 0);
}

SrtpContext::~SrtpContext() = default;

void SrtpContext::adoptRemote(SrtpContext& other) {
  std::swap(impl_->rx, other.impl_->rx);  // ours goes with `other`, freed with it
}

bool SrtpContext::protectRtp(uint8_t* buf, size_t* len, size_t cap) {
  if (!impl_->tx || *len + kSrtpTrailer > cap || *len > INT_MAX) return false;
  int n = static_cast<int>(*len);
  if (srtp_protect(impl_->tx, buf, &n) != srtp_err_status_ok) return false;
  *len = static_cast<size_t>(n);
  return true;
}

bool SrtpContext::protectRtcp(uint8_t* buf, size_t* len, size_t cap) {
  if (!impl_->tx || *len + kSrtpTrailer > cap || *len > INT_MAX) return false;
  int n = static_cast<int>(*len);
  if (srtp_protect_rtcp(impl_->tx, buf, &n) != srtp_err_status_ok) return false;
  *len = static_cast<size_t>(n);
  return true;
}

SrtpContext::Rx SrtpContext::unprotectRtp(uint8_t* buf, size_t* len) {
  if (*len < 12 || *len > INT_MAX) return Rx::Invalid;
  int n = static_cast<int>(*len);
  const Rx r = rxStatus(srtp_unprotect(impl_->rx, buf, &n));
  if (r == Rx::Ok) *len = static_cast<size_t>(n);
  return r;
}

SrtpContext::Rx SrtpContext::unprotectRtcp(uint8_t* buf, size_t* len) {
  if (*len < 8 || *len > INT_MAX) return Rx::Invalid;
  int n = static_cast<int>(*len);
  const Rx r = rxStatus(srtp_unprotect_rtcp(impl_->rx, buf, &n));
  if (r == Rx::Ok) *len = static_cast<size_t>(n);
  return r;
}

}  // namespace voice
