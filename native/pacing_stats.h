// Histogram of outbound RTP send-time error (actual send instant minus the
// ideal CLOCK_MONOTONIC deadline). Written by the media thread with relaxed
// atomics, read by the JS thread without a lock: a snapshot may mix a few
// in-flight samples, which is fine for percentiles.
#pragma once
#include <atomic>
#include <cstdint>

namespace voice {

/** Upper bounds (µs) of the cumulative lateness histogram exported as a Prometheus histogram. */
inline constexpr int kPacingPromBounds = 11;
inline constexpr int64_t kPacingPromBoundsUs[kPacingPromBounds] = {100, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 250000};

/** Never-reset counts since the engine started (a Prometheus histogram: monotonic). */
struct PacingCumulative {
  uint64_t buckets[kPacingPromBounds + 1] = {};  // per bound, not cumulative; last = above every bound
  uint64_t count = 0;
  double sumUs = 0;
};

struct PacingSnapshot {
  uint64_t samples = 0;
  double p50Us = 0;
  double p99Us = 0;
  double maxUs = 0;
};

class PacingStats {
 public:
  PacingStats() { reset(); }
  /** Record one send; errorNs < 0 (early) counts as 0. Media thread only. */
  void record(int64_t errorNs);
  PacingSnapshot snapshot() const;
  /** Since construction; reset() does not touch it (benchmarks reset the fine histogram). */
  PacingCumulative cumulative() const;
  void reset();

 private:
  // 0..1999 µs at 1 µs resolution, then 2 ms..102 ms at 100 µs, then overflow.
  static constexpr int kFine = 2000;
  static constexpr int kCoarse = 1000;
  static constexpr int kBuckets = kFine + kCoarse + 1;
  std::atomic<uint32_t> buckets_[kBuckets];
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> maxNs_{0};
  std::atomic<uint64_t> promBuckets_[kPacingPromBounds + 1] = {};
  std::atomic<uint64_t> promCount_{0};
  std::atomic<uint64_t> promSumNs_{0};
  static int bucketOf(int64_t us);
  static double bucketValueUs(int idx);
};

}  // namespace voice
