// libFuzzer target: the in-band DTMF detector (InbandDtmf), fed the way
// Session::playoutTick feeds it (chunks of up to 160 samples, two output
// slots per call) with audio built from the input: segments of dual tones
// (any key, level, twist, frequency error, length), silence, and raw sample
// bytes (noise, clipping, odd chunk sizes), and an occasional finish() (a
// re-INVITE that adds telephone-event). Invariants: at most the slots given
// are written; events are valid keys; Start and End alternate, an End names
// the key of its Start; a key lasts at least the windows that started it;
// finish() ends exactly the key in progress. Also classify() on arbitrary
// floats (NaN, infinities, negatives).
// fuzz-sources: native/dtmf_inband.cc native/dtmf.cc
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dtmf_inband.h"

namespace {
const double kRows[4] = {697, 770, 852, 941};
const double kCols[4] = {1209, 1336, 1477, 1633};

bool validKey(char c) {
  return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using voice::DtmfReceiver;
  using voice::InbandDtmf;

  if (size >= 36) {
    float f[9];
    std::memcpy(f, data, sizeof f);
    const InbandDtmf::WindowResult w = InbandDtmf::classify(f, f + 4, f[8], static_cast<char>(data[0] & 0x7f));
    if (w.key && !validKey(w.key)) abort();
  }

  std::vector<int16_t> pcm;
  pcm.reserve(8000);
  size_t off = 0;
  double phase = 0;
  while (off + 4 <= size && pcm.size() < 8000 * 4) {
    const uint8_t kind = data[off] % 4;
    const size_t len = 8 + (static_cast<size_t>(data[off + 1]) << 2);  // 1..128 ms
    const uint8_t a = data[off + 2], b = data[off + 3];
    off += 4;
    if (kind <= 1) {  // a key: row/col, level, twist, frequency error from a and b
      const double fl = kRows[a & 3] * (1 + ((b & 7) - 3) * 0.01);
      const double fh = kCols[(a >> 2) & 3] * (1 + ((b & 7) - 3) * 0.01);
      const double lo = 22000.0 * std::pow(10.0, -(a >> 4) * 3.0 / 20.0);
      const double hi = lo * std::pow(10.0, (((b >> 3) & 15) - 6) / 20.0);
      for (size_t i = 0; i < len; ++i, phase += 1.0 / 8000) {
        double v = lo * std::sin(2 * M_PI * fl * phase) + hi * std::sin(2 * M_PI * fh * phase);
        v = std::fmax(-32768.0, std::fmin(32767.0, v));
        pcm.push_back(static_cast<int16_t>(v));
      }
    } else if (kind == 2) {
      pcm.insert(pcm.end(), len, static_cast<int16_t>((a - 128) * (b & 3)));
    } else {  // raw bytes as samples
      for (size_t i = 0; i < len && off + 1 < size; ++i, off += 2)
        pcm.push_back(static_cast<int16_t>(data[off] | (data[off + 1] << 8)));
    }
  }

  InbandDtmf det;
  char open = 0;
  size_t i = 0;
  size_t pick = 0;
  while (i < pcm.size()) {
    const uint8_t c = size ? data[pick++ % size] : 0;
    const size_t n = std::min<size_t>(pcm.size() - i, 1 + (c % 160));
    DtmfReceiver::Out out[3];
    out[2].digit = 'x';  // sentinel: never written
    const int k = det.process(pcm.data() + i, n, out, 2);
    if (k < 0 || k > 2 || out[2].digit != 'x') abort();
    for (int j = 0; j < k; ++j) {
      if (!validKey(out[j].digit)) abort();
      if (out[j].kind == DtmfReceiver::Out::Start) {
        if (open) abort();
        open = out[j].digit;
      } else {
        if (open != out[j].digit) abort();
        if (out[j].durationTs < static_cast<uint32_t>(InbandDtmf::kStartWindows * InbandDtmf::kHop)) abort();
        open = 0;
      }
    }
    if (det.active() != open) abort();
    i += n;
    if ((c & 0xf0) == 0xf0 && (c & 1)) {  // now and then: the detector is switched off
      DtmfReceiver::Out o;
      const bool ended = det.finish(&o);
      if (ended != (open != 0)) abort();
      if (ended && o.digit != open) abort();
      open = 0;
      if (det.active()) abort();
    }
  }
  return 0;
}
