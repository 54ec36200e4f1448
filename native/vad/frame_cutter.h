// Cuts a 16 kHz mono PCM stream into the windows Silero VAD v5 consumes:
// 512 new samples (32 ms) preceded by the last 64 samples of the previous
// window as context, 576 float32 samples in [-1, 1). The first window's
// context is zeros. Plain C++17, no N-API, no allocation after construction:
// safe to call per datagram on the media thread.
//
// Usage (one cutter per call, media thread only):
//   while (n > 0) {
//     size_t k = cutter.write(pcm, n);  // consumes up to the end of a window
//     pcm += k; n -= k;
//     if (cutter.ready()) { submit(cutter.window()); cutter.next(); }
//   }
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace voice {
namespace vad {

/** Sample rate the VAD model runs at. */
constexpr int kVadRate = 16000;
/** New samples per VAD frame (32 ms at 16 kHz). */
constexpr size_t kVadFrame = 512;
/** Samples of the previous frame prepended as context. */
constexpr size_t kVadContext = 64;
/** Model input row: context + frame. */
constexpr size_t kVadWindow = kVadContext + kVadFrame;
/** Duration of one VAD frame in milliseconds. */
constexpr int kVadFrameMs = 32;

class FrameCutter {
 public:
  FrameCutter() { reset(); }

  /**
   * Copy samples in until the current window is full or the input runs out.
   * Returns the number of samples consumed (0 only when n == 0 or a full
   * window is waiting for next()).
   */
  size_t write(const int16_t* pcm, size_t n);

  /** A complete window is available. */
  bool ready() const { return fill_ == kVadFrame; }

  /** The complete window: kVadWindow floats (context first). Valid until next()/reset(). */
  const float* window() const { return win_.data(); }

  /** Release the current window; its last 64 samples become the next context. */
  void next();

  /** Forget all audio (new call, or after a long gap): zero context, empty frame. */
  void reset();

  /** Samples waiting in the partial frame (0..512). */
  size_t pending() const { return fill_; }

  /** Windows completed since construction/reset. */
  uint64_t frames() const { return frames_; }

 private:
  std::array<float, kVadWindow> win_;
  size_t fill_ = 0;  // new samples in win_[kVadContext ..]
  uint64_t frames_ = 0;
};

}  // namespace vad
}  // namespace voice
