// Rational polyphase resampler (L/M) with a Kaiser-windowed sinc prototype.
// All memory is allocated in the constructor; process() never allocates, so
// one instance per stream can run on the media thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace voice {

class Resampler {
 public:
  /**
   * @param inRate, outRate  sample rates in Hz (any positive integers)
   * @param maxChunk         largest input block process() accepts per call
   *                         (larger inputs are split internally)
   * @param zeroCrossings    filter half-length in lower-rate samples; 32 gives
   *                         ~70 dB stop band with a ~540 Hz transition at 8 kHz
   */
  Resampler(int inRate, int outRate, size_t maxChunk = 4096, int zeroCrossings = 32);

  int inRate() const { return in_; }
  int outRate() const { return out_; }
  /** Group delay of the filter, in output samples. */
  size_t delayOut() const { return static_cast<size_t>(delayHi_ / M_); }
  /** Upper bound of outputs produced for n more input samples. */
  size_t maxOutput(size_t n) const { return (n * L_) / M_ + 2; }

  /**
   * Streaming resample: consumes all n inputs, writes at most outCap outputs
   * and returns how many were written. Output is delayed by delayOut().
   */
  size_t process(const int16_t* in, size_t n, int16_t* out, size_t outCap);
  void reset();

  /** One-shot helper (allocates; not for the media thread): delay-compensated, length round(n*out/in). */
  static std::vector<int16_t> resampleAll(const int16_t* in, size_t n, int inRate, int outRate);

 private:
  int in_, out_;
  int L_, M_;        // up / down factors after gcd
  int taps_;         // taps per phase (on the input side)
  long delayHi_;     // prototype group delay at the virtual rate in*L
  std::vector<float> coef_;   // [phase][tap], already scaled by L
  std::vector<float> buf_;    // history (taps_-1) + staged chunk
  size_t chunk_;
  size_t histLen_;
  long t_;           // virtual-rate time of the next output, relative to buf_ origin of history
  friend struct ResamplerAccess;
  size_t runChunk(size_t avail, int16_t* out, size_t outCap);
};

}  // namespace voice
