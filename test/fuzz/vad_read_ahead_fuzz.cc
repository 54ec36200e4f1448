// libFuzzer target for the VAD read-ahead (native/vad/read_ahead.h): arbitrary
// timestamps, packet sizes and arrival times (reordering, loss, duplicates,
// jumps, wrap-around, stalls). Invariants: chunks never exceed kChunk; the
// stash never emits more audio than arrived plus concealment and stall fill
// (nothing is emitted twice). Run by test/fuzz/run.sh.
// fuzz-sources: native/vad/read_ahead.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "vad/read_ahead.h"

using namespace voice::vad;

namespace {
struct Count {
  uint64_t samples = 0;
  static void sink(void* ctx, const int16_t*, size_t n) {
    if (n == 0 || n > ReadAhead::kChunk) abort();
    static_cast<Count*>(ctx)->samples += n;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ReadAhead ra;
  Count c;
  int16_t pcm[2000];
  for (int i = 0; i < 2000; ++i) pcm[i] = static_cast<int16_t>(i * 31);
  uint32_t ts = 0;
  int64_t now = 1'000'000'000;
  uint64_t arrived = 0;
  // Records of 4 bytes: [ctl][dts lo][dts hi][len/8].
  for (size_t off = 0; off + 4 <= size; off += 4) {
    const uint8_t ctl = data[off];
    const int16_t dts = static_cast<int16_t>(data[off + 1] | data[off + 2] << 8);
    const size_t n = static_cast<size_t>(data[off + 3]) * 8;  // 0..2040 samples
    now += (ctl & 0x0f) * 5'000'000LL;                           // 0..75 ms per step
    if (ctl & 0x80) {
      ts += static_cast<uint32_t>(dts) * 40u;                    // big jumps either way
    } else {
      ts += static_cast<uint32_t>(static_cast<int32_t>(dts) % 800);  // small steps, reorders
    }
    if (ctl & 0x10) ra.onTick(now, &Count::sink, &c);
    if (ctl & 0x20) ra.reset();
    const size_t k = n < 2000 ? n : 2000;
    ra.onPacket(ts, pcm, k, now, &Count::sink, &c);
    arrived += k < ReadAhead::kMaxPacket ? k : ReadAhead::kMaxPacket;
    const ReadAheadStats& st = ra.stats();
    if (c.samples > arrived + st.concealedSamples + st.stallSamples) abort();  // nothing emitted twice
  }
  return 0;
}
