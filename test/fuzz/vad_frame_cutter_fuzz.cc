// libFuzzer target for the VAD frame cutter and turn state machine: arbitrary
// bytes become PCM fed in arbitrary chunk sizes; every window must hold the
// right samples (context = previous window's tail) and the state machine must
// accept whatever probabilities come out. Run by test/fuzz/run.sh.
// fuzz-sources: native/vad/frame_cutter.cc native/vad/turn_state.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "vad/frame_cutter.h"
#include "vad/turn_state.h"

using namespace voice::vad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // First byte: chunking seed (bit 2: the 8 kHz cutter, 256 + 32); the rest: s16le samples.
  const unsigned seed = data[0];
  const size_t nsamp = (size - 1) / 2;
  std::vector<int16_t> pcm(nsamp);
  if (nsamp) std::memcpy(pcm.data(), data + 1, nsamp * 2);

  FrameCutter c((seed & 4) ? 8000 : 16000);
  const size_t W = c.windowSize(), F = c.frameSize(), C = c.contextSize();
  if (W != (seed & 4 ? kVadWindow8 : kVadWindow)) abort();
  TurnState turn;
  std::vector<float> prev(W, 0.0f);
  size_t off = 0, consumedTotal = 0, windows = 0, step = 0;
  while (off < nsamp) {
    size_t chunk = 1 + ((seed * 131u + step * 977u) % 700u);
    step++;
    if (chunk > nsamp - off) chunk = nsamp - off;
    const int16_t* p = pcm.data() + off;
    size_t left = chunk;
    while (left > 0) {
      size_t k = c.write(p, left);
      if (k == 0 && !c.ready()) abort();  // no progress and nothing to drain
      p += k;
      left -= k;
      consumedTotal += k;
      if (c.ready()) {
        const float* w = c.window();
        // Context equals the previous window's last C samples.
        if (std::memcmp(w, prev.data() + F, C * sizeof(float)) != 0) abort();
        // New samples equal the input.
        for (size_t i = 0; i < F; i++) {
          float want = static_cast<float>(pcm[windows * F + i]) / 32768.0f;
          if (w[C + i] != want || w[C + i] < -1.0f || w[C + i] >= 1.0f) abort();
        }
        std::memcpy(prev.data(), w, W * sizeof(float));
        // A stand-in probability from the window's energy; the machine must never misbehave.
        float e = 0;
        for (size_t i = 0; i < W; i++) e += w[i] * w[i];
        const FrameLevels lv = measureLevels(w + C, F);
        TurnOutput o = turn.push(e / W * 4.0f, (seed & 1) != 0, (seed & 2) != 0, (seed & 8) ? &lv : nullptr);
        if ((o.events & kEvSpeechEnd) && (o.startFrame < 0 || o.endFrame < o.startFrame)) abort();
        windows++;
        c.next();
      }
    }
    off += chunk;
  }
  if (consumedTotal != nsamp || c.frames() != windows || c.pending() != nsamp - windows * F) abort();
  return 0;
}
