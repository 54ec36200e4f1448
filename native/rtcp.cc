#include "rtcp.h"

#include <time.h>

#include <algorithm>
#include <cstring>

namespace voice {
namespace {
inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void wr16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v >> 8); p[1] = static_cast<uint8_t>(v); }
inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24); p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8); p[3] = static_cast<uint8_t>(v);
}
void readBlock(const uint8_t* p, RtcpReportBlock* b) {
  b->ssrc = rd32(p);
  b->fractionLost = p[4];
  int32_t lost = static_cast<int32_t>((static_cast<uint32_t>(p[5]) << 16) | (p[6] << 8) | p[7]);
  if (lost & 0x800000) lost -= 0x1000000;
  b->cumulativeLost = lost;
  b->extHighestSeq = rd32(p + 8);
  b->jitter = rd32(p + 12);
  b->lsr = rd32(p + 16);
  b->dlsr = rd32(p + 20);
}
}  // namespace

RtcpStatus parseRtcp(const uint8_t* buf, size_t len, uint32_t ourSsrc, RtcpParsed* out) {
  if (!buf || len < 4) return RtcpStatus::TooShort;
  RtcpParsed r;
  size_t off = 0;
  while (off < len) {
    if (len - off < 4) return RtcpStatus::TooShort;
    const uint8_t* p = buf + off;
    if ((p[0] >> 6) != 2) return RtcpStatus::BadVersion;
    const int count = p[0] & 0x1F;
    const uint8_t pt = p[1];
    const size_t plen = (static_cast<size_t>(rd16(p + 2)) + 1) * 4;
    if (plen > len - off) return RtcpStatus::BadLength;
    if (off == 0 && pt != 200 && pt != 201) return RtcpStatus::NotRtcp;  // RFC 3550 A.2: compound starts with SR/RR
    size_t blocksAt = 0;
    if (pt == 200) {
      if (plen < 28) return RtcpStatus::BadLength;
      r.haveSr = true;
      r.senderSsrc = rd32(p + 4);
      r.ntp = (static_cast<uint64_t>(rd32(p + 8)) << 32) | rd32(p + 12);
      r.rtpTs = rd32(p + 16);
      r.packetCount = rd32(p + 20);
      r.octetCount = rd32(p + 24);
      blocksAt = 28;
    } else if (pt == 201) {
      if (plen < 8) return RtcpStatus::BadLength;
      r.senderSsrc = rd32(p + 4);
      blocksAt = 8;
    } else if (pt == 203) {
      r.bye = true;
    }
    if (blocksAt) {
      if (blocksAt + static_cast<size_t>(count) * 24 > plen) return RtcpStatus::BadLength;
      for (int i = 0; i < count; ++i) {
        RtcpReportBlock b;
        readBlock(p + blocksAt + static_cast<size_t>(i) * 24, &b);
        if (b.ssrc == ourSsrc) {
          r.block = b;
          r.haveBlock = true;
        }
      }
    }
    ++r.packets;
    off += plen;
  }
  *out = r;
  return RtcpStatus::Ok;
}

const char* rtcpStatusName(RtcpStatus s) {
  switch (s) {
    case RtcpStatus::Ok: return "ok";
    case RtcpStatus::TooShort: return "too-short";
    case RtcpStatus::BadVersion: return "bad-version";
    case RtcpStatus::BadLength: return "bad-length";
    case RtcpStatus::NotRtcp: return "not-rtcp";
  }
  return "unknown";
}

size_t writeRtcpReport(const RtcpReportInput& in, uint8_t* buf, size_t cap) {
  const size_t cnameLen = std::min<size_t>(std::strlen(in.cname), 255);
  const size_t head = in.sender ? 28 : 8;
  const size_t rr = head + (in.haveBlock ? 24 : 0);
  // SDES: header(4) + ssrc(4) + item(2 + len) + end(1), padded to 32 bits.
  const size_t sdes = (4 + 4 + 2 + cnameLen + 1 + 3) / 4 * 4;
  if (rr + sdes > cap) return 0;
  uint8_t* p = buf;
  p[0] = static_cast<uint8_t>(0x80 | (in.haveBlock ? 1 : 0));
  p[1] = in.sender ? 200 : 201;
  wr16(p + 2, static_cast<uint16_t>(rr / 4 - 1));
  wr32(p + 4, in.ssrc);
  if (in.sender) {
    wr32(p + 8, static_cast<uint32_t>(in.ntp >> 32));
    wr32(p + 12, static_cast<uint32_t>(in.ntp));
    wr32(p + 16, in.rtpTs);
    wr32(p + 20, in.packetsSent);
    wr32(p + 24, in.octetsSent);
  }
  if (in.haveBlock) {
    uint8_t* b = p + head;
    const RtcpReportBlock& k = in.block;
    wr32(b, k.ssrc);
    b[4] = k.fractionLost;
    int32_t lost = k.cumulativeLost;
    if (lost > 0x7FFFFF) lost = 0x7FFFFF;
    if (lost < -0x800000) lost = -0x800000;
    const uint32_t l24 = static_cast<uint32_t>(lost) & 0xFFFFFF;
    b[5] = static_cast<uint8_t>(l24 >> 16); b[6] = static_cast<uint8_t>(l24 >> 8); b[7] = static_cast<uint8_t>(l24);
    wr32(b + 8, k.extHighestSeq);
    wr32(b + 12, k.jitter);
    wr32(b + 16, k.lsr);
    wr32(b + 20, k.dlsr);
  }
  uint8_t* s = buf + rr;
  std::memset(s, 0, sdes);
  s[0] = 0x81;
  s[1] = 202;
  wr16(s + 2, static_cast<uint16_t>(sdes / 4 - 1));
  wr32(s + 4, in.ssrc);
  s[8] = 1;  // CNAME
  s[9] = static_cast<uint8_t>(cnameLen);
  std::memcpy(s + 10, in.cname, cnameLen);
  return rr + sdes;
}

uint64_t ntpNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const uint64_t sec = static_cast<uint64_t>(ts.tv_sec) + 2208988800ULL;
  const uint64_t frac = (static_cast<uint64_t>(ts.tv_nsec) << 32) / 1'000'000'000ULL;
  return (sec << 32) | frac;
}

}  // namespace voice
