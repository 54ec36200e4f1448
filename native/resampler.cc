#include "resampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace voice {
namespace {

double besselI0(double x) {
  double sum = 1.0, term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 64; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

constexpr double kBeta = 7.0;         // Kaiser beta (~70 dB stop band)
constexpr double kCutoffRatio = 0.465;  // cut-off as a fraction of the lower rate

// Dot product of n floats, four lanes at a time (GCC/Clang vector extension: SSE2 on x86-64,
// NEON on arm64); the media thread runs one per output sample of every resampled stream.
// Lane k of the sum holds the products j ≡ k (mod 8) in order; the AVX versions below keep
// exactly that order (one 8-lane register is the two 4-lane ones side by side), so every
// path gives bit-identical results.
typedef float V4 __attribute__((vector_size(16)));
inline float dot(const float* a, const float* b, int n) {
  V4 s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    V4 a0, a1, b0, b1;
    std::memcpy(&a0, a + j, sizeof a0);
    std::memcpy(&a1, a + j + 4, sizeof a1);
    std::memcpy(&b0, b + j, sizeof b0);
    std::memcpy(&b1, b + j + 4, sizeof b1);
    s0 += a0 * b0;
    s1 += a1 * b1;
  }
  s0 += s1;
  float acc = (s0[0] + s0[1]) + (s0[2] + s0[3]);
  for (; j < n; ++j) acc += a[j] * b[j];
  return acc;
}

// Two dot products at once (consecutive outputs): their dependency chains interleave.
inline void dot2(const float* a0, const float* b0, const float* a1, const float* b1, int n, float* r0, float* r1) {
  *r0 = dot(a0, b0, n);
  *r1 = dot(a1, b1, n);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VOICE_RESAMPLER_AVX 1
// 8 lanes per instruction (AVX, no FMA: a fused multiply-add would round differently).
typedef float V8 __attribute__((vector_size(32)));
__attribute__((target("avx"))) inline float hsum8(V8 s) {
  const V4 lo = {s[0], s[1], s[2], s[3]}, hi = {s[4], s[5], s[6], s[7]};
  const V4 t = lo + hi;
  return (t[0] + t[1]) + (t[2] + t[3]);
}
__attribute__((target("avx"))) void dot2Avx(const float* a0, const float* b0, const float* a1, const float* b1, int n,
                                            float* r0, float* r1) {
  V8 s = {0, 0, 0, 0, 0, 0, 0, 0}, u = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    V8 x0, y0, x1, y1;
    std::memcpy(&x0, a0 + j, sizeof x0);
    std::memcpy(&y0, b0 + j, sizeof y0);
    std::memcpy(&x1, a1 + j, sizeof x1);
    std::memcpy(&y1, b1 + j, sizeof y1);
    s += x0 * y0;
    u += x1 * y1;
  }
  float p = hsum8(s), q = hsum8(u);
  for (int k = j; k < n; ++k) p += a0[k] * b0[k];
  for (int k = j; k < n; ++k) q += a1[k] * b1[k];
  *r0 = p;
  *r1 = q;
}
const bool kHaveAvx = [] {
  __builtin_cpu_init();  // this initializer may run before libgcc's own
  return __builtin_cpu_supports("avx") != 0;
}();
#endif

inline int16_t toSample(float acc) {
  const float r = acc >= 0 ? acc + 0.5f : acc - 0.5f;  // round half away from zero
  return static_cast<int16_t>(r >= 32767.f ? 32767 : r <= -32768.f ? -32768 : static_cast<int>(r));
}

}  // namespace

Resampler::Resampler(int inRate, int outRate, size_t maxChunk, int zeroCrossings)
    : in_(inRate), out_(outRate), chunk_(maxChunk == 0 ? 4096 : maxChunk) {
  const int g = std::gcd(inRate, outRate);
  L_ = outRate / g;
  M_ = inRate / g;
  // Taps per phase: `zeroCrossings` wide on the lower-rate side, scaled up when decimating.
  const int down = (M_ + L_ - 1) / L_;
  taps_ = 2 * zeroCrossings * std::max(1, down);
  const int n = L_ * taps_;
  delayHi_ = n / 2;
  const double hiRate = static_cast<double>(inRate) * L_;
  const double fc = kCutoffRatio * std::min(inRate, outRate) / hiRate;  // cycles per hi-rate sample
  std::vector<double> h(n);
  // Centre on an integer tap so the group delay is exactly n/2 virtual
  // samples (the window's last tap, at r = 1, is ~0 and is the one dropped).
  const double center = n / 2.0;
  const double i0b = besselI0(kBeta);
  for (int i = 0; i < n; ++i) {
    const double x = i - center;
    const double sinc = x == 0 ? 2 * fc : std::sin(2 * M_PI * fc * x) / (M_PI * x);
    const double r = x / (n / 2.0);
    const double w = std::fabs(r) <= 1 ? besselI0(kBeta * std::sqrt(1 - r * r)) / i0b : 0;
    h[i] = sinc * w;
  }
  // Normalise so each phase has DC gain 1 (sum over all taps = L).
  const double s = std::accumulate(h.begin(), h.end(), 0.0);
  // Stored oldest-input-first per phase (tap j of the prototype weighs input i0 - j), so the
  // dot product in runChunk reads coefficients and inputs forward, four lanes at a time.
  coef_.assign(static_cast<size_t>(n), 0.0f);
  for (int p = 0; p < L_; ++p)
    for (int j = 0; j < taps_; ++j)
      coef_[static_cast<size_t>(p) * taps_ + (taps_ - 1 - j)] = static_cast<float>(h[p + j * L_] * L_ / s);
  histLen_ = static_cast<size_t>(taps_ - 1);
  buf_.assign(histLen_ + chunk_, 0.0f);
  t_ = static_cast<long>(histLen_) * L_;
}

void Resampler::reset() {
  std::fill(buf_.begin(), buf_.end(), 0.0f);
  t_ = static_cast<long>(histLen_) * L_;
}

// buf_[0 .. histLen_+avail) holds samples; output at virtual time t uses
// input index i0 = t / L (newest) and phase p = t % L.
size_t Resampler::runChunk(size_t avail, int16_t* out, size_t outCap) {
  const long total = static_cast<long>(histLen_ + avail);
  size_t w = 0;
  // Position of the next output as (newest input i0, phase p) = (t_ / L, t_ % L), advanced by
  // M per output without dividing (the divisions cost as much as a 64-tap dot product).
  long i0 = t_ / L_;
  int p = static_cast<int>(t_ % L_);
  const long stepI = M_ / L_;
  const int stepP = M_ % L_;
  auto advance = [&](long& i, int& ph) {
    i += stepI;
    ph += stepP;
    if (ph >= L_) {
      ph -= L_;
      ++i;
    }
  };
  // Outputs two at a time (independent dot products overlap in the pipeline), then the odd one.
  while (w + 2 <= outCap) {
    long i1 = i0;
    int p1 = p;
    advance(i1, p1);
    if (i1 >= total) break;
    const float* c0 = &coef_[static_cast<size_t>(p) * taps_];
    const float* c1 = &coef_[static_cast<size_t>(p1) * taps_];
    const float* x0 = &buf_[static_cast<size_t>(i0 - taps_ + 1)];
    const float* x1 = &buf_[static_cast<size_t>(i1 - taps_ + 1)];
    float a0, a1;
#ifdef VOICE_RESAMPLER_AVX
    if (kHaveAvx) dot2Avx(c0, x0, c1, x1, taps_, &a0, &a1);
    else
#endif
      dot2(c0, x0, c1, x1, taps_, &a0, &a1);
    out[w++] = toSample(a0);
    out[w++] = toSample(a1);
    i0 = i1;
    p = p1;
    advance(i0, p);
  }
  while (w < outCap && i0 < total) {
    const float* c = &coef_[static_cast<size_t>(p) * taps_];
    const float* x = &buf_[static_cast<size_t>(i0 - taps_ + 1)];
    out[w++] = toSample(dot(c, x, taps_));
    advance(i0, p);
  }
  t_ = i0 * L_ + p;
  // If the caller's buffer was too small, drop the outputs it could not take
  // so the read position never falls behind the retained history.
  const long behind = total * L_ - t_;
  if (behind > 0) t_ += ((behind + M_ - 1) / M_) * M_;
  // Keep the last histLen_ samples as history for the next chunk.
  const long shift = total - static_cast<long>(histLen_);
  if (shift > 0) {
    std::copy(buf_.begin() + shift, buf_.begin() + total, buf_.begin());
    t_ -= shift * L_;
  }
  return w;
}

size_t Resampler::process(const int16_t* in, size_t n, int16_t* out, size_t outCap) {
  size_t written = 0;
  size_t off = 0;
  while (off < n) {
    const size_t take = std::min(chunk_, n - off);
    for (size_t i = 0; i < take; ++i) buf_[histLen_ + i] = in[off + i];
    written += runChunk(take, out + written, outCap - written);
    off += take;
  }
  return written;
}

std::vector<int16_t> Resampler::resampleAll(const int16_t* in, size_t n, int inRate, int outRate) {
  if (inRate == outRate) return std::vector<int16_t>(in, in + n);
  Resampler r(inRate, outRate);
  const size_t want = static_cast<size_t>((static_cast<unsigned long long>(n) * outRate + inRate / 2) / inRate);
  std::vector<int16_t> tmp(r.maxOutput(n) + r.maxOutput(static_cast<size_t>(r.taps_) + 1) + r.delayOut() + 8);
  size_t got = r.process(in, n, tmp.data(), tmp.size());
  // Flush the filter with zeros so the tail comes out.
  std::vector<int16_t> zeros(static_cast<size_t>(r.taps_) + 1, 0);
  got += r.process(zeros.data(), zeros.size(), tmp.data() + got, tmp.size() - got);
  const size_t d = r.delayOut();
  std::vector<int16_t> outv;
  outv.reserve(want);
  for (size_t i = 0; i < want; ++i) outv.push_back(d + i < got ? tmp[d + i] : 0);
  return outv;
}

}  // namespace voice
