// Cuts a 16 kHz mono PCM stream into the windows Silero VAD v5 consumes:
// 512 new samples (32 ms) preceded by the last 64 samples of the previous
// window as context, 576 float32 samples in [-1, 1) — or, constructed with
// rate 8000, an 8 kHz stream into 256 + 32 samples (288). The first window's
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
/** At 8 kHz (Silero v5's 8 kHz mode): 256 new samples (32 ms) and 32 of context. */
constexpr size_t kVadFrame8 = 256;
constexpr size_t kVadContext8 = 32;
constexpr size_t kVadWindow8 = kVadContext8 + kVadFrame8;

/** New samples per frame at a model rate (8000 or 16000). */
constexpr size_t vadFrameAt(int rate) { return rate == 8000 ? kVadFrame8 : kVadFrame; }
/** Context samples at a model rate. */
constexpr size_t vadContextAt(int rate) { return rate == 8000 ? kVadContext8 : kVadContext; }

/**
 * The model rate when VOICE_VAD_RATE is unset: 8000, the calls' own rate (no upsampling per
 * call; src/vad/rate.ts holds the same default for the VAD workers).
 */
constexpr int kDefaultVadRate = 8000;

/**
 * The model rate from VOICE_VAD_RATE (8000 or 16000; unset = kDefaultVadRate), read once per
 * process. `err` gets a message naming the variable when it holds anything else (the rate is
 * then kDefaultVadRate).
 */
int vadRateFromEnv(const char** err = nullptr);

class FrameCutter {
 public:
  /** `rate`: 16000 (512 + 64 context, the default) or 8000 (256 + 32). */
  explicit FrameCutter(int rate = kVadRate)
      : frame_(vadFrameAt(rate)), context_(vadContextAt(rate)), rate_(rate == 8000 ? 8000 : kVadRate) {
    reset();
  }

  /**
   * Copy samples in until the current window is full or the input runs out.
   * Returns the number of samples consumed (0 only when n == 0 or a full
   * window is waiting for next()).
   */
  size_t write(const int16_t* pcm, size_t n);

  /** A complete window is available. */
  bool ready() const { return fill_ == frame_; }

  /** The complete window: windowSize() floats (context first). Valid until next()/reset(). */
  const float* window() const { return win_.data(); }

  /** Floats per window: 576 at 16 kHz, 288 at 8 kHz. */
  size_t windowSize() const { return context_ + frame_; }
  /** New samples per window (512 / 256). */
  size_t frameSize() const { return frame_; }
  /** Context samples at the start of a window (64 / 32). */
  size_t contextSize() const { return context_; }
  /** Model rate of the windows. */
  int rate() const { return rate_; }

  /** Release the current window; its last context samples become the next context. */
  void next();

  /** Forget all audio (new call, or after a long gap): zero context, empty frame. */
  void reset();

  /** Samples waiting in the partial frame (0..frameSize()). */
  size_t pending() const { return fill_; }

  /** Windows completed since construction/reset. */
  uint64_t frames() const { return frames_; }

 private:
  std::array<float, kVadWindow> win_;  // the first windowSize() are used
  size_t frame_, context_;
  int rate_;
  size_t fill_ = 0;  // new samples in win_[context_ ..]
  uint64_t frames_ = 0;
};

}  // namespace vad
}  // namespace voice
