// libFuzzer target: the RTP header parser alone.
// fuzz-sources: native/rtp.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rtp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  voice::RtpPacket p;
  const voice::RtpStatus st = voice::parseRtp(data, size, &p);
  if (st == voice::RtpStatus::Ok) {
    // The payload must lie inside the input, after the fixed header.
    if (p.payload < data + voice::kRtpHeaderSize || p.payload + p.payloadLen > data + size) abort();
    if (p.payloadType > 127 || p.csrcCount > 15) abort();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < p.payloadLen; ++i) sink ^= p.payload[i];  // touch every byte (ASan checks bounds)
    (void)sink;
  }
  (void)voice::rtpStatusName(st);
  return 0;
}
