// RTCP (RFC 3550 §6): compound packet parsing and SR/RR + SDES writing.
// Pure functions, no allocation; the parser has its own fuzz target.
#pragma once
#include <cstddef>
#include <cstdint>

namespace voice {

struct RtcpReportBlock {
  uint32_t ssrc = 0;
  uint8_t fractionLost = 0;     // /256
  int32_t cumulativeLost = 0;   // 24-bit signed
  uint32_t extHighestSeq = 0;
  uint32_t jitter = 0;          // RTP timestamp units
  uint32_t lsr = 0;             // middle 32 bits of the NTP time of the last SR
  uint32_t dlsr = 0;            // 1/65536 s
};

struct RtcpParsed {
  bool haveSr = false;
  uint32_t senderSsrc = 0;
  uint64_t ntp = 0;             // SR: sender's NTP timestamp
  uint32_t rtpTs = 0;
  uint32_t packetCount = 0, octetCount = 0;
  bool haveBlock = false;       // a report block about `ourSsrc`
  RtcpReportBlock block;
  bool bye = false;
  int packets = 0;              // RTCP packets in the compound
};

enum class RtcpStatus : uint8_t { Ok, TooShort, BadVersion, BadLength, NotRtcp };

/** Parse a compound RTCP packet, keeping the report block (if any) about `ourSsrc`. */
RtcpStatus parseRtcp(const uint8_t* buf, size_t len, uint32_t ourSsrc, RtcpParsed* out);
const char* rtcpStatusName(RtcpStatus s);

struct RtcpReportInput {
  uint32_t ssrc = 0;
  bool sender = false;      // SR (we sent RTP since the last report) or RR
  uint64_t ntp = 0;
  uint32_t rtpTs = 0;
  uint32_t packetsSent = 0, octetsSent = 0;
  bool haveBlock = false;
  RtcpReportBlock block;
  const char* cname = "";
};
/** Write SR or RR (+ one report block) and SDES CNAME; returns bytes written, 0 if `cap` is too small. */
size_t writeRtcpReport(const RtcpReportInput& in, uint8_t* buf, size_t cap);

/** Wall clock as a 64-bit NTP timestamp. */
uint64_t ntpNow();
inline uint32_t ntpMiddle(uint64_t ntp) { return static_cast<uint32_t>(ntp >> 16); }

}  // namespace voice
