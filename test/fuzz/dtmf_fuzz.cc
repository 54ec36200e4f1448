// libFuzzer target: RFC 4733 payload parser and the DTMF receive state machine.
// fuzz-sources: native/dtmf.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dtmf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  voice::DtmfReceiver rx;
  int64_t now = 0;
  int open = 0;
  // Records of [ts-step][len][payload...]
  size_t off = 0;
  uint32_t ts = 0;
  while (off + 2 <= size) {
    ts += data[off] & 3 ? 0 : 800;
    const size_t len = data[off + 1] % 12;
    off += 2;
    const size_t n = len <= size - off ? len : size - off;
    voice::DtmfReceiver::Out out[3];
    const int k = rx.onPacket(ts, data + off, n, now, out);
    if (k < 0 || k > 3) abort();
    for (int i = 0; i < k; ++i) {
      if (!out[i].digit) abort();
      open += out[i].kind == voice::DtmfReceiver::Out::Start ? 1 : -1;
      if (open < 0 || open > 1) abort();  // starts and ends alternate
    }
    now += 30'000'000;
    voice::DtmfReceiver::Out o;
    if (rx.poll(now + (data[off - 2] & 0x80 ? 2'000'000'000 : 0), &o)) --open;
    if (open < 0) abort();
    off += n;
  }
  return 0;
}
