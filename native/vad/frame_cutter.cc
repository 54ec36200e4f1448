#include "frame_cutter.h"

#include <algorithm>
#include <cstring>

namespace voice {
namespace vad {

size_t FrameCutter::write(const int16_t* pcm, size_t n) {
  if (pcm == nullptr || n == 0 || ready()) return 0;
  size_t k = std::min(n, kVadFrame - fill_);
  float* dst = win_.data() + kVadContext + fill_;
  for (size_t i = 0; i < k; i++) dst[i] = static_cast<float>(pcm[i]) * (1.0f / 32768.0f);
  fill_ += k;
  if (fill_ == kVadFrame) frames_++;
  return k;
}

void FrameCutter::next() {
  if (!ready()) return;
  std::memmove(win_.data(), win_.data() + kVadFrame, kVadContext * sizeof(float));
  fill_ = 0;
}

void FrameCutter::reset() {
  win_.fill(0.0f);
  fill_ = 0;
  frames_ = 0;
}

}  // namespace vad
}  // namespace voice
