// Histogram of outbound RTP send-time error (actual send instant minus the
// ideal CLOCK_MONOTONIC deadline). Written by the media thread with relaxed
// atomics, read by the JS thread without a lock: a snapshot may mix a few
// in-flight samples, which is fine for percentiles.
#pragma once
#include <atomic>
#include <cstdint>

namespace voice {

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
  void reset();

 private:
  // 0..1999 µs at 1 µs resolution, then 2 ms..102 ms at 100 µs, then overflow.
  static constexpr int kFine = 2000;
  static constexpr int kCoarse = 1000;
  static constexpr int kBuckets = kFine + kCoarse + 1;
  std::atomic<uint32_t> buckets_[kBuckets];
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> maxNs_{0};
  static int bucketOf(int64_t us);
  static double bucketValueUs(int idx);
};

}  // namespace voice
