// Ramped level of the outbound prompt: the pause-first duck. When an onset
// over the agent's prompt may be the caller starting to talk, the session
// lowers the prompt by TurnTunables::pauseDuckDb instead of silencing it; the
// level moves linearly (in amplitude) toward its target over
// vad::kDuckRampMs, so neither the drop nor the return clicks.
//
// Plain C++17, header only, no allocation, no locks: one instance per
// Session, touched only by the media thread (Session::buildPacket). The
// target comes from the session's vadDuckDb_ (guarded by Session::mu_ and
// read there under the lock).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace voice {

class OutboundDuck {
 public:
  /** Target attenuation, dB (0 = full level). Takes effect over the next rampMs of samples. */
  void setTargetDb(float db) { target_ = db > 0.0f ? std::pow(10.0f, -db / 20.0f) : 1.0f; }
  /** Current gain (linear, 1 = full level). */
  float gain() const { return g_; }
  bool atFullLevel() const { return g_ == 1.0f && target_ == 1.0f; }
  /** Jump to full level (a new prompt after a flush starts unducked). */
  void reset() { g_ = target_ = 1.0f; }
  /**
   * Apply the gain to n samples at `rate` Hz in place, moving toward the target by at most a
   * full swing (0 → 1) per rampMs.
   */
  void apply(int16_t* x, size_t n, int rate, int rampMs) {
    if (g_ == 1.0f && target_ == 1.0f) return;
    const int rampSamples = rate / 1000 * (rampMs > 0 ? rampMs : 1);
    const float step = 1.0f / static_cast<float>(rampSamples > 0 ? rampSamples : 1);
    for (size_t i = 0; i < n; ++i) {
      if (g_ < target_) g_ = g_ + step < target_ ? g_ + step : target_;
      else if (g_ > target_) g_ = g_ - step > target_ ? g_ - step : target_;
      const float v = std::nearbyint(static_cast<float>(x[i]) * g_);
      x[i] = static_cast<int16_t>(v > 32767.0f ? 32767.0f : (v < -32768.0f ? -32768.0f : v));
    }
  }

 private:
  float g_ = 1.0f;
  float target_ = 1.0f;
};

}  // namespace voice
