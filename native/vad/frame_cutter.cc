#include "frame_cutter.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace voice {
namespace vad {

int vadRateFromEnv(const char** err) {
  static const char* bad = nullptr;
  static const int rate = [] {
    const char* e = std::getenv("VOICE_VAD_RATE");
    if (!e || !*e) return kDefaultVadRate;
    if (std::strcmp(e, "8000") == 0) return 8000;
    if (std::strcmp(e, "16000") == 0) return kVadRate;
    bad = "VOICE_VAD_RATE must be 8000 or 16000";
    return kDefaultVadRate;
  }();
  if (err) *err = bad;
  return rate;
}

size_t FrameCutter::write(const int16_t* pcm, size_t n) {
  if (pcm == nullptr || n == 0 || ready()) return 0;
  size_t k = std::min(n, frame_ - fill_);
  float* dst = win_.data() + context_ + fill_;
  for (size_t i = 0; i < k; i++) dst[i] = static_cast<float>(pcm[i]) * (1.0f / 32768.0f);
  fill_ += k;
  if (fill_ == frame_) frames_++;
  return k;
}

void FrameCutter::next() {
  if (!ready()) return;
  std::memmove(win_.data(), win_.data() + frame_, context_ * sizeof(float));
  fill_ = 0;
}

void FrameCutter::reset() {
  win_.fill(0.0f);
  fill_ = 0;
  frames_ = 0;
}

}  // namespace vad
}  // namespace voice
