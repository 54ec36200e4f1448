#include "rtp.h"

namespace voice {

static inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

RtpStatus parseRtp(const uint8_t* buf, size_t len, RtpPacket* out) {
  if (buf == nullptr || len < kRtpHeaderSize) return RtpStatus::TooShort;
  const uint8_t b0 = buf[0];
  const uint8_t b1 = buf[1];
  if ((b0 >> 6) != 2) return RtpStatus::BadVersion;
  const uint8_t pt = b1 & 0x7F;
  if (pt >= 72 && pt <= 76) return RtpStatus::Rtcp;

  RtpPacket p;
  p.padding = (b0 & 0x20) != 0;
  p.extension = (b0 & 0x10) != 0;
  p.csrcCount = b0 & 0x0F;
  p.marker = (b1 & 0x80) != 0;
  p.payloadType = pt;
  p.seq = rd16(buf + 2);
  p.timestamp = rd32(buf + 4);
  p.ssrc = rd32(buf + 8);

  size_t off = kRtpHeaderSize + 4u * p.csrcCount;
  if (off > len) return RtpStatus::TooShort;
  if (p.extension) {
    if (off + 4 > len) return RtpStatus::BadExtension;
    p.extProfile = rd16(buf + off);
    const size_t extWords = rd16(buf + off + 2);
    off += 4 + 4 * extWords;
    if (off > len) return RtpStatus::BadExtension;
  }
  size_t end = len;
  if (p.padding) {
    const uint8_t pad = buf[len - 1];
    if (pad == 0 || pad > end - off) return RtpStatus::BadPadding;
    end -= pad;
  }
  p.payload = buf + off;
  p.payloadLen = end - off;
  *out = p;
  return RtpStatus::Ok;
}

const char* rtpStatusName(RtpStatus s) {
  switch (s) {
    case RtpStatus::Ok: return "ok";
    case RtpStatus::TooShort: return "too-short";
    case RtpStatus::BadVersion: return "bad-version";
    case RtpStatus::BadPadding: return "bad-padding";
    case RtpStatus::BadExtension: return "bad-extension";
    case RtpStatus::Rtcp: return "rtcp";
  }
  return "unknown";
}

}  // namespace voice
