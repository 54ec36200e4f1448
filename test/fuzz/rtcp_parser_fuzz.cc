// libFuzzer target: the RTCP compound parser alone.
// fuzz-sources: native/rtcp.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rtcp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  voice::RtcpParsed r;
  const uint32_t ours = size >= 4 ? (static_cast<uint32_t>(data[0]) << 24) | (data[1] << 16) | (data[2] << 8) | data[3] : 0;
  if (voice::parseRtcp(data, size, ours, &r) == voice::RtcpStatus::Ok && r.packets <= 0) abort();
  uint8_t out[512];
  voice::RtcpReportInput in;
  in.ssrc = ours;
  in.sender = r.haveSr;
  in.haveBlock = r.haveBlock;
  in.block = r.block;
  in.cname = "fuzz";
  const size_t n = voice::writeRtcpReport(in, out, sizeof out);
  voice::RtcpParsed back;
  if (n && voice::parseRtcp(out, n, ours, &back) != voice::RtcpStatus::Ok) abort();  // what we write, we parse
  return 0;
}
