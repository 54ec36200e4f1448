#include "pacing_stats.h"

namespace voice {

int PacingStats::bucketOf(int64_t us) {
  if (us < kFine) return static_cast<int>(us);
  const int64_t c = (us - kFine) / 100;
  return c < kCoarse ? kFine + static_cast<int>(c) : kBuckets - 1;
}

double PacingStats::bucketValueUs(int idx) {
  if (idx < kFine) return idx + 0.5;
  if (idx < kFine + kCoarse) return kFine + (idx - kFine) * 100.0 + 50.0;
  return kFine + kCoarse * 100.0;
}

void PacingStats::record(int64_t errorNs) {
  if (errorNs < 0) errorNs = 0;
  buckets_[bucketOf(errorNs / 1000)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  const int64_t us = errorNs / 1000;
  int pb = 0;
  while (pb < kPacingPromBounds && us > kPacingPromBoundsUs[pb]) ++pb;
  promBuckets_[pb].fetch_add(1, std::memory_order_relaxed);
  promCount_.fetch_add(1, std::memory_order_relaxed);
  promSumNs_.fetch_add(static_cast<uint64_t>(errorNs), std::memory_order_relaxed);
  int64_t prev = maxNs_.load(std::memory_order_relaxed);
  while (errorNs > prev && !maxNs_.compare_exchange_weak(prev, errorNs, std::memory_order_relaxed)) {
  }
}

void PacingStats::reset() {
  for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  count_.store(0, std::memory_order_relaxed);
  maxNs_.store(0, std::memory_order_relaxed);
}

PacingCumulative PacingStats::cumulative() const {
  PacingCumulative c;
  for (int i = 0; i <= kPacingPromBounds; ++i) c.buckets[i] = promBuckets_[i].load(std::memory_order_relaxed);
  c.count = promCount_.load(std::memory_order_relaxed);
  c.sumUs = static_cast<double>(promSumNs_.load(std::memory_order_relaxed)) / 1000.0;
  return c;
}

PacingSnapshot PacingStats::snapshot() const {
  PacingSnapshot s;
  uint64_t total = 0;
  static thread_local uint32_t copy[kBuckets];
  for (int i = 0; i < kBuckets; ++i) {
    copy[i] = buckets_[i].load(std::memory_order_relaxed);
    total += copy[i];
  }
  s.samples = total;
  s.maxUs = static_cast<double>(maxNs_.load(std::memory_order_relaxed)) / 1000.0;
  if (total == 0) return s;
  const uint64_t r50 = (total * 50 + 99) / 100;
  const uint64_t r99 = (total * 99 + 99) / 100;
  uint64_t acc = 0;
  bool have50 = false;
  for (int i = 0; i < kBuckets; ++i) {
    acc += copy[i];
    if (!have50 && acc >= r50) { s.p50Us = bucketValueUs(i); have50 = true; }
    if (acc >= r99) { s.p99Us = bucketValueUs(i); break; }
  }
  if (s.p99Us > s.maxUs) s.p99Us = s.maxUs;
  if (s.p50Us > s.maxUs) s.p50Us = s.maxUs;
  return s;
}

}  // namespace voice
