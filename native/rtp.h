// RTP (RFC 3550) header parsing and writing. Pure functions with no state and
// no allocation, kept in their own translation unit so the libFuzzer target
// (test/fuzz/rtp_parser_fuzz.cc) compiles exactly this code alone.
#pragma once
#include <cstddef>
#include <cstdint>

namespace voice {

enum class RtpStatus : uint8_t {
  Ok = 0,
  TooShort,      // fewer than 12 bytes, or CSRC list / extension runs past the end
  BadVersion,    // version field is not 2
  BadPadding,    // padding count is 0 or larger than the payload
  BadExtension,  // extension header length runs past the end
  Rtcp,          // RTCP multiplexed on the RTP port (RFC 5761: PT 72..76 with M bit = RTCP 200..204)
};

struct RtpPacket {
  bool marker = false;
  bool padding = false;
  bool extension = false;
  uint8_t csrcCount = 0;
  uint8_t payloadType = 0;
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  uint16_t extProfile = 0;        // valid when extension
  const uint8_t* payload = nullptr;
  size_t payloadLen = 0;          // excludes padding
};

/** Parse and validate an RTP packet; on Ok, `out` points into `buf`. */
RtpStatus parseRtp(const uint8_t* buf, size_t len, RtpPacket* out);

/** Human-readable name of a status, for logs and tests. */
const char* rtpStatusName(RtpStatus s);

constexpr size_t kRtpHeaderSize = 12;

/** Write a 12-byte RTP header (no CSRC, no extension, no padding). */
inline void writeRtpHeader(uint8_t* p, bool marker, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc) {
  p[0] = 0x80;
  p[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | (pt & 0x7F));
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  p[4] = static_cast<uint8_t>(ts >> 24);
  p[5] = static_cast<uint8_t>(ts >> 16);
  p[6] = static_cast<uint8_t>(ts >> 8);
  p[7] = static_cast<uint8_t>(ts);
  p[8] = static_cast<uint8_t>(ssrc >> 24);
  p[9] = static_cast<uint8_t>(ssrc >> 16);
  p[10] = static_cast<uint8_t>(ssrc >> 8);
  p[11] = static_cast<uint8_t>(ssrc);
}

}  // namespace voice
