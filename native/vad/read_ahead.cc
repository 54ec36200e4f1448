#include "read_ahead.h"

#include <algorithm>
#include <cstring>

namespace voice {
namespace vad {

namespace {
constexpr int64_t kFrameNs = 20'000'000;  // stall fill granularity: 20 ms
constexpr int kRate = 8000;
}  // namespace

ReadAhead::ReadAhead(const ReadAheadConfig& cfg) : cfg_(cfg) {
  reorderNs_ = static_cast<int64_t>(std::max(0, cfg_.reorderMs)) * 1'000'000;
  stallNs_ = static_cast<int64_t>(std::max(20, cfg_.stallMs)) * 1'000'000;
  jumpTs_ = std::max(20, cfg_.jumpMs) * (kRate / 1000);
  reset();
}

void ReadAhead::reset() {
  started_ = false;
  next_ = 0;
  fedUntilNs_ = 0;
  gapSinceNs_ = 0;
  filled_ = 0;
  count_ = 0;
  stallArmed_ = false;
  std::memset(last_, 0, sizeof last_);
}

void ReadAhead::anchor(uint32_t ts, int64_t nowNs) {
  started_ = true;
  next_ = ts;
  fedUntilNs_ = nowNs;
  gapSinceNs_ = 0;
  filled_ = 0;
  count_ = 0;
}

void ReadAhead::emit(const int16_t* pcm, size_t n, Sink sink, void* ctx) {
  while (n > 0) {
    const size_t k = std::min(n, kChunk);
    sink(ctx, pcm, k);
    // keep the newest kChunk samples for concealment
    if (k >= kChunk) {
      std::memcpy(last_, pcm + k - kChunk, sizeof last_);
    } else {
      std::memmove(last_, last_ + k, (kChunk - k) * sizeof(int16_t));
      std::memcpy(last_ + (kChunk - k), pcm, k * sizeof(int16_t));
    }
    pcm += k;
    n -= k;
  }
}

void ReadAhead::emitSilence(size_t n, bool conceal, Sink sink, void* ctx) {
  int16_t buf[kChunk];
  size_t done = 0;
  while (done < n) {
    const size_t k = std::min(n - done, kChunk);
    if (conceal && done == 0) {
      // First 20 ms of a gap: the last 20 ms again at half level (keeps a voiced
      // stretch voiced across one lost packet); zeros after that.
      for (size_t i = 0; i < k; ++i) buf[i] = static_cast<int16_t>(last_[i] / 2);
    } else {
      std::memset(buf, 0, k * sizeof(int16_t));
    }
    sink(ctx, buf, k);
    std::memmove(last_, last_ + k, (kChunk - k) * sizeof(int16_t));
    std::memcpy(last_ + (kChunk - k), buf, k * sizeof(int16_t));
    done += k;
  }
}

void ReadAhead::onPacket(uint32_t ts, const int16_t* pcm, size_t n, int64_t nowNs, Sink sink, void* ctx) {
  if (n == 0) return;
  stallArmed_ = false;
  if (n > kMaxPacket) n = kMaxPacket;
  if (!started_) anchor(ts, nowNs);
  int32_t d = static_cast<int32_t>(ts - next_);
  if (d > jumpTs_ || d < -jumpTs_) {
    ++st_.reanchors;
    anchor(ts, nowNs);
    d = 0;
  }
  if (d < 0) {
    ++st_.late;  // already emitted (or concealed / filled)
    return;
  }
  if (d > 0 && filled_ > 0) {
    // The stream stalled and silence was emitted meanwhile: the sender's clock
    // moved on by d. What the fill already covered is not emitted twice.
    const uint64_t gap = static_cast<uint64_t>(d);
    if (gap > filled_) {
      emitSilence(static_cast<size_t>(gap - filled_), false, sink, ctx);
      st_.stallSamples += gap - filled_;
    }
    next_ = ts;
    count_ = 0;
    gapSinceNs_ = 0;
    d = 0;
  }
  if (d == 0) {
    ++st_.packets;
    emit(pcm, n, sink, ctx);
    next_ += static_cast<uint32_t>(n);
    fedUntilNs_ = nowNs;
    filled_ = 0;
    drain(nowNs, sink, ctx);
    return;
  }
  // A gap before this packet: stash it in timestamp order (duplicates dropped).
  for (int i = 0; i < count_; ++i) {
    if (stash_[order_[i]].ts == ts) {
      ++st_.late;
      return;
    }
  }
  if (count_ == kStashSlots) concealGap(nowNs, sink, ctx);  // full: give up on the oldest gap
  if (static_cast<int32_t>(ts - next_) < 0) {               // concealment passed it
    ++st_.late;
    return;
  }
  if (count_ == kStashSlots) return;  // unreachable: concealGap drains at least one
  int slot = 0;
  {
    bool used[kStashSlots] = {};
    for (int i = 0; i < count_; ++i) used[order_[i]] = true;
    while (used[slot]) ++slot;
  }
  Entry& e = stash_[slot];
  e.ts = ts;
  e.n = n;
  std::memcpy(e.pcm, pcm, e.n * sizeof(int16_t));
  int pos = count_;
  while (pos > 0 && static_cast<int32_t>(stash_[order_[pos - 1]].ts - ts) > 0) {
    order_[pos] = order_[pos - 1];
    --pos;
  }
  order_[pos] = slot;
  ++count_;
  if (gapSinceNs_ == 0) gapSinceNs_ = nowNs;
  fedUntilNs_ = nowNs;  // audio is arriving: not a stall
  if (nowNs - gapSinceNs_ >= reorderNs_) concealGap(nowNs, sink, ctx);
}

void ReadAhead::drain(int64_t nowNs, Sink sink, void* ctx) {
  while (count_ > 0) {
    Entry& e = stash_[order_[0]];
    const int32_t d = static_cast<int32_t>(e.ts - next_);
    if (d > 0) break;
    if (d == 0) {
      ++st_.packets;
      ++st_.reordered;
      emit(e.pcm, e.n, sink, ctx);
      next_ += static_cast<uint32_t>(e.n);
    } else {
      ++st_.late;  // overlaps what was emitted
    }
    for (int i = 1; i < count_; ++i) order_[i - 1] = order_[i];
    --count_;
  }
  gapSinceNs_ = count_ > 0 ? nowNs : 0;
}

void ReadAhead::concealGap(int64_t nowNs, Sink sink, void* ctx) {
  if (count_ == 0) return;
  const int32_t d = static_cast<int32_t>(stash_[order_[0]].ts - next_);
  if (d > 0) {
    emitSilence(static_cast<size_t>(d), true, sink, ctx);
    st_.concealedSamples += static_cast<uint64_t>(d);
    next_ += static_cast<uint32_t>(d);
  }
  drain(nowNs, sink, ctx);
}

void ReadAhead::onTick(int64_t nowNs, Sink sink, void* ctx) {
  if (!started_) return;
  if (count_ > 0) {
    if (nowNs - gapSinceNs_ >= reorderNs_) concealGap(nowNs, sink, ctx);
    return;
  }
  // Nothing arrives: emit silence at the wall-clock rate, stallNs behind. A stall is only
  // believed on the second tick that sees it: the media thread runs the ticks before it reads
  // the sockets, so after a late wake-up the packets may be waiting in the kernel (filling
  // then would put silence in front of audio that did arrive, and feed the VAD faster than
  // real time when the thread is overloaded).
  if (nowNs - fedUntilNs_ < stallNs_ + kFrameNs) return;
  if (!stallArmed_) {
    stallArmed_ = true;
    return;
  }
  while (nowNs - fedUntilNs_ >= stallNs_ + kFrameNs) {
    emitSilence(kChunk, false, sink, ctx);
    st_.stallSamples += kChunk;
    filled_ += kChunk;  // next_ stays: a sender that resumes where it stopped is not "late"
    fedUntilNs_ += kFrameNs;
  }
}

}  // namespace vad
}  // namespace voice
