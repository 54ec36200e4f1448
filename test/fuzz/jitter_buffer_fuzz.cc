// libFuzzer target: the inbound playout (jitter buffer + G.711/Opus decode +
// PLC) fed arbitrary RTP packets at arbitrary arrival times, ticked at 20 ms.
// fuzz-sources: native/playout.cc native/jitter_buffer.cc native/plc.cc native/opus_codec.cc native/resampler.cc native/g711.cc native/rtp.cc
// fuzz-libs: -lopus
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "playout.h"
#include "rtp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool opus = data[0] & 1;
  voice::JitterConfig jc;
  jc.clockRate = opus ? 48000 : 8000;
  voice::Playout p((data[0] & 2) ? 16000 : 8000, jc);
  p.setCodec(opus ? voice::Codec::Opus : voice::Codec::PCMU, opus ? 111 : 0);
  int64_t now = 1'000'000'000;
  int16_t frame[320];
  size_t off = 1;
  while (off + 2 <= size) {
    const uint8_t ctl = data[off];
    const size_t len = data[off + 1];
    off += 2;
    const size_t n = len <= size - off ? len : size - off;
    voice::RtpPacket pkt;
    if (voice::parseRtp(data + off, n, &pkt) == voice::RtpStatus::Ok && p.accepts(pkt.payloadType)) p.put(pkt, now);
    now += static_cast<int64_t>(ctl & 0x3F) * 1'000'000;
    for (int i = 0; i < (ctl >> 6); ++i) {
      now += 20'000'000;
      p.tick(now, frame);
    }
    off += n;
  }
  return 0;
}
