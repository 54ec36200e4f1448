#include "plc.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace voice {

G711Plc::G711Plc() { reset(); }

void G711Plc::reset() {
  std::memset(hist_, 0, sizeof hist_);
  histLen_ = 0;
  pitch_ = 0;
  erased_ = 0;
  offset_ = 0;
}

void G711Plc::startLoss() {
  const int end = kHist;
  // Pitch: lag with the highest normalised correlation over the last 15 ms. The sums are of
  // 16-bit products, so they are exact in 64-bit integers: the cross term per lag, and the lag's
  // energy slid from the previous lag's (one sample enters, one leaves) instead of re-summed.
  int best = kMaxPitch;
  double bestScore = -1e30;
  if (histLen_ >= kCorrWin + kMaxPitch) {
    const int16_t* x = hist_ + (end - kCorrWin);
    int64_t yy = 0;
    for (int i = 0; i < kCorrWin; ++i) yy += static_cast<int32_t>(x[i - kMinPitch]) * x[i - kMinPitch];
    for (int p = kMinPitch; p <= kMaxPitch; ++p) {
      const int16_t* y = x - p;
      int64_t xy = 0;
      for (int i = 0; i < kCorrWin; ++i) xy += static_cast<int32_t>(x[i]) * y[i];
      const double score = static_cast<double>(xy) / std::sqrt(static_cast<double>(yy) + 1e-3);
      if (score > bestScore) { bestScore = score; best = p; }
      // Window of lag p + 1: y[-1] enters, y[kCorrWin - 1] leaves.
      yy += static_cast<int32_t>(y[-1]) * y[-1] - static_cast<int32_t>(y[kCorrWin - 1]) * y[kCorrWin - 1];
    }
  }
  pitch_ = best;
  // One period ending at the last real sample. Its tail is blended towards the
  // samples one period earlier, whose successor is the cycle's first sample,
  // so the wrap-around is smooth.
  const int p = pitch_;
  const int ov = std::max(1, p / 4);
  for (int i = 0; i < p; ++i) cycle_[i] = hist_[end - p + i];
  for (int j = 0; j < ov; ++j) {
    const float w = static_cast<float>(j + 1) / (ov + 1);
    cycle_[p - ov + j] = (1 - w) * hist_[end - ov + j] + w * hist_[end - p - ov + j];
  }
  // The first concealed sample follows hist[end-1]; the cycle's first sample
  // follows hist[end-p-1]. Ramp out the difference so the join is continuous.
  offset_ = static_cast<float>(hist_[end - 1]) - static_cast<float>(hist_[end - p - 1]);
}

float G711Plc::sampleAt(int k) const {
  float v = cycle_[k % pitch_];
  const int ramp = std::max(1, pitch_ / 4);
  if (k < ramp) v += offset_ * (1.0f - static_cast<float>(k + 1) / (ramp + 1));
  return v;
}

float G711Plc::gainAt(int k) const {
  if (k < kFadeStart) return 1.0f;
  const int f = k - kFadeStart;
  return f >= kFadeLen ? 0.0f : 1.0f - static_cast<float>(f) / kFadeLen;
}

namespace {
// std::lround for the concealment's range (|v| < 2^23, finite), without the libm call: the
// fractional part v - trunc(v) is exact in float there, so halves round away from zero as
// lround does.
inline long roundHalfAway(float v) {
  long r = static_cast<long>(v);
  const float f = v - static_cast<float>(r);
  if (f >= 0.5f) ++r;
  else if (f <= -0.5f) --r;
  return r;
}
}  // namespace

void G711Plc::conceal(int16_t* out, size_t n) {
  if (erased_ == 0) startLoss();
  // sampleAt/gainAt inline, with the cycle position carried instead of a modulo per sample.
  const int ramp = std::max(1, pitch_ / 4);
  int ph = erased_ % pitch_;
  for (size_t i = 0; i < n; ++i) {
    const int k = erased_ + static_cast<int>(i);
    float v = 0.0f;
    if (k < kFadeStart + kFadeLen) {
      float c = cycle_[ph];
      if (k < ramp) c += offset_ * (1.0f - static_cast<float>(k + 1) / (ramp + 1));
      v = c * gainAt(k);
    }
    if (++ph == pitch_) ph = 0;
    const long r = std::fabs(v) < 8388608.0f ? roundHalfAway(v) : std::lround(v);
    out[i] = static_cast<int16_t>(std::clamp(r, -32768L, 32767L));
  }
  erased_ += static_cast<int>(n);
}

void G711Plc::good(int16_t* pcm, size_t n) {
  if (erased_ > 0) {
    // Cross-fade from the continued concealment into the real signal.
    const int len = std::min<int>(kJoinOut, static_cast<int>(n));
    if (erased_ < kFadeStart + kFadeLen) {
      for (int j = 0; j < len; ++j) {
        const int k = erased_ + j;
        const float c = sampleAt(k) * gainAt(k);
        const float w = static_cast<float>(j + 1) / (len + 1);
        pcm[j] = static_cast<int16_t>(std::clamp(std::lround(w * pcm[j] + (1 - w) * c), -32768L, 32767L));
      }
    } else {
      for (int j = 0; j < len; ++j) pcm[j] = static_cast<int16_t>(pcm[j] * (j + 1) / (len + 1));  // fade in from silence
    }
    erased_ = 0;
  }
  if (n >= static_cast<size_t>(kHist)) {
    std::memcpy(hist_, pcm + n - kHist, sizeof hist_);
  } else {
    std::memmove(hist_, hist_ + n, sizeof(int16_t) * (kHist - n));
    std::memcpy(hist_ + kHist - n, pcm, sizeof(int16_t) * n);
  }
  histLen_ = std::min<int>(kHist, histLen_ + static_cast<int>(n));
}

}  // namespace voice
