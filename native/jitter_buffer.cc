#include "jitter_buffer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace voice {

JitterBuffer::JitterBuffer(const JitterConfig& cfg) : cfg_(cfg), slots_(new Slot[kSlots]) {
  if (cfg_.clockRate <= 0) cfg_.clockRate = 8000;
  if (cfg_.minDelayMs < 0) cfg_.minDelayMs = 0;
  if (cfg_.maxDelayMs < cfg_.minDelayMs) cfg_.maxDelayMs = cfg_.minDelayMs;
  cfg_.startDelayMs = std::clamp(cfg_.startDelayMs, cfg_.minDelayMs, cfg_.maxDelayMs);
  target_ = cfg_.startDelayMs;
  stats_.targetDelayMs = target_;
  for (int i = 0; i < kSlots; ++i) freeList_[i] = kSlots - 1 - i;
  freeCount_ = kSlots;
}

JitterBuffer::~JitterBuffer() { delete[] slots_; }

void JitterBuffer::flushSlots() {
  for (int i = 0; i < count_; ++i) freeList_[freeCount_++] = order_[i];
  count_ = 0;
}

void JitterBuffer::popHead() {
  freeList_[freeCount_++] = order_[0];
  std::memmove(order_, order_ + 1, sizeof(int) * static_cast<size_t>(count_ - 1));
  --count_;
}

void JitterBuffer::reset() {
  flushSlots();
  state_ = State::Empty;
  everStarted_ = false;
  haveSsrc_ = haveTs_ = haveSeq_ = haveTransit_ = false;
  rdCount_ = rdPos_ = 0;
  owed_ = 0;
  owedTs_ = 0;
}

int64_t JitterBuffer::extendTs(uint32_t ts) {
  if (!haveTs_) {
    haveTs_ = true;
    lastTs_ = ts;
    lastExtTs_ = static_cast<int64_t>(ts) + (int64_t{1} << 32);  // keep extended values positive
    maxExtTs_ = lastExtTs_;
    return lastExtTs_;
  }
  const int32_t d = static_cast<int32_t>(ts - lastTs_);
  lastTs_ = ts;
  lastExtTs_ += d;
  return lastExtTs_;
}

void JitterBuffer::trackSeq(uint16_t seq, bool* dup) {
  *dup = false;
  if (!haveSeq_) {
    haveSeq_ = true;
    maxSeq_ = seq;
    cycles_ = 0;
    baseExtSeq_ = seq;
    seqWindow_ = 1;
    return;
  }
  const int16_t d = static_cast<int16_t>(seq - maxSeq_);
  if (d > 0) {
    if (seq < maxSeq_) cycles_ += 65536;
    seqWindow_ = d >= 64 ? 0 : seqWindow_ << d;
    seqWindow_ |= 1;
    maxSeq_ = seq;
  } else if (d == 0) {
    *dup = true;
  } else {
    const int back = -d;
    if (back < 64) {
      if ((seqWindow_ >> back) & 1) *dup = true;
      else seqWindow_ |= uint64_t{1} << back;
    }
  }
}

void JitterBuffer::updateDelay(int64_t extTs, int64_t arrivalNs) {
  // RFC 3550 §6.4.1 / A.8 interarrival jitter, in timestamp units.
  const double arrivalTs = static_cast<double>(arrivalNs) * cfg_.clockRate / 1e9;
  const double transit = arrivalTs - static_cast<double>(extTs);
  if (haveTransit_) {
    const double d = std::fabs(transit - transit_);
    jitterTs_ += (d - jitterTs_) / 16.0;
  }
  transit_ = transit;
  haveTransit_ = true;
  stats_.jitterMs = jitterTs_ * 1000.0 / cfg_.clockRate;

  const double rd = static_cast<double>(arrivalNs) / 1e6 - tsToMs(extTs);
  rd_[rdPos_] = rd;
  rdPos_ = (rdPos_ + 1) % kDelayWindow;
  if (rdCount_ < kDelayWindow) ++rdCount_;
  double mn = rd_[0];
  for (int i = 1; i < rdCount_; ++i) mn = std::min(mn, rd_[i]);
  minRd_ = mn;
  if (rdCount_ < 16 || (++sinceTarget_ & 3) != 0) return;
  // p95 of lateness over the window; fast attack, slow release.
  double tmp[kDelayWindow];
  for (int i = 0; i < rdCount_; ++i) tmp[i] = rd_[i] - mn;
  const int k = std::min(rdCount_ - 1, (rdCount_ * 95) / 100);
  std::nth_element(tmp, tmp + k, tmp + rdCount_);
  const double q = std::clamp(tmp[k] + cfg_.marginMs, static_cast<double>(cfg_.minDelayMs),
                              static_cast<double>(cfg_.maxDelayMs));
  if (q > target_) target_ = q;
  else target_ += (q - target_) * 0.03;
  stats_.targetDelayMs = target_;
}

JitterBuffer::PutResult JitterBuffer::put(const RtpPacket& p, uint32_t durTs, int64_t arrivalNs) {
  if (p.payloadLen > kMaxPayload) return PutResult::TooBig;
  PutResult result = PutResult::Accepted;
  if (haveSsrc_ && p.ssrc != ssrc_) {
    // New source (carrier re-INVITE, SBC fail-over): start over, keep counting.
    ++stats_.ssrcChanges;
    ++stats_.resets;
    prevExpected_ += haveSeq_ ? (cycles_ + maxSeq_) - baseExtSeq_ + 1 : 0;
    flushSlots();
    state_ = State::Empty;
    haveTs_ = haveSeq_ = haveTransit_ = false;
    rdCount_ = rdPos_ = 0;
    owed_ = 0;
    owedTs_ = 0;
    result = PutResult::Reset;
  }
  haveSsrc_ = true;
  ssrc_ = p.ssrc;
  const bool firstTs = !haveTs_;
  const int16_t seqDelta = haveSeq_ ? static_cast<int16_t>(p.seq - maxSeq_) : 0;
  const int64_t ext = extendTs(p.timestamp);
  if (!firstTs) {
    const int64_t jumpTs = static_cast<int64_t>(cfg_.jumpMs) * cfg_.clockRate / 1000;
    const int64_t delta = ext - maxExtTs_;
    if (delta > jumpTs || (delta < -jumpTs && std::abs(static_cast<int>(seqDelta)) > 100)) {
      // Timestamp discontinuity (new talkspurt after a long silence, or a new
      // source under the same SSRC): the delay history no longer applies.
      ++stats_.resets;
      flushSlots();
      state_ = State::Empty;
      rdCount_ = rdPos_ = 0;
      haveTransit_ = false;
      owed_ = 0;
      owedTs_ = 0;
      maxExtTs_ = ext;
      result = PutResult::Reset;
    }
  }
  bool dup = false;
  trackSeq(p.seq, &dup);
  if (!dup) {
    for (int i = 0; i < count_; ++i)
      if (slots_[order_[i]].ts == ext) { dup = true; break; }
  }
  if (dup) {
    ++stats_.duplicates;
    return PutResult::Duplicate;
  }
  ++stats_.received;
  stats_.expected = prevExpected_ + (cycles_ + maxSeq_) - baseExtSeq_ + 1;
  stats_.lost = static_cast<int64_t>(stats_.expected) - static_cast<int64_t>(stats_.received);
  if (ext + durTs > maxExtTs_) maxExtTs_ = ext + durTs;
  updateDelay(ext, arrivalNs);

  if (state_ == State::Playing && ext + static_cast<int64_t>(durTs) <= playTs_) {
    ++stats_.late;
    return PutResult::Late;
  }
  if (count_ == kSlots) {
    if (ext < slots_[order_[0]].ts) {
      ++stats_.overflow;
      return PutResult::Overflow;
    }
    popHead();
    ++stats_.overflow;
  }
  const int idx = freeList_[--freeCount_];
  Slot& s = slots_[idx];
  s.ts = ext;
  s.dur = durTs;
  s.seq = p.seq;
  s.pt = p.payloadType;
  s.len = p.payloadLen;
  if (p.payloadLen) std::memcpy(s.data, p.payload, p.payloadLen);
  int pos = count_;
  while (pos > 0 && slots_[order_[pos - 1]].ts > ext) {
    order_[pos] = order_[pos - 1];
    --pos;
  }
  order_[pos] = idx;
  ++count_;
  if (state_ == State::Empty) {
    state_ = State::Priming;
    owed_ = 0;
    owedTs_ = 0;
  }
  return result == PutResult::Reset ? PutResult::Reset : PutResult::Accepted;
}

double JitterBuffer::bufferDelay(int64_t nowNs) const {
  return static_cast<double>(nowNs) / 1e6 - tsToMs(playTs_) - minRd_;
}

double JitterBuffer::excessMs(int64_t nowNs) const {
  if (state_ != State::Playing) return 0;
  return bufferDelay(nowNs) - target_;
}

JitterBuffer::Unit JitterBuffer::next(int64_t nowNs, uint32_t frameTs) {
  Unit u;
  u.started = everStarted_;
  if (state_ == State::Empty) return u;
  if (state_ == State::Priming) {
    if (count_ == 0) {
      state_ = State::Empty;
      return u;
    }
    playTs_ = slots_[order_[0]].ts;
    const double frameMs = tsToMs(frameTs);
    if (bufferDelay(nowNs) < target_ - frameMs / 2) return u;
    state_ = State::Playing;
    everStarted_ = true;
    u.started = true;
  }
  stats_.bufferDelayMs = bufferDelay(nowNs);
  // Packets that became obsolete while media time moved past them.
  while (count_ > 0) {
    const Slot& h = slots_[order_[0]];
    if (h.ts + static_cast<int64_t>(h.dur) > playTs_) break;
    popHead();
    ++stats_.late;
  }
  if (count_ == 0) {
    ++stats_.underruns;
    ++owed_;
    owedTs_ += frameTs;
    if (owed_ > cfg_.idleFrames) {
      // The stream stopped (hold, DTX, hang-up): re-prime on the next packet.
      state_ = State::Empty;
      owed_ = 0;
      owedTs_ = 0;
      return u;
    }
    u.kind = Unit::Underrun;
    u.durTs = frameTs;
    return u;
  }
  const Slot* h = &slots_[order_[0]];
  if (h->ts > playTs_ && owedTs_ > 0) {
    // Frames already concealed during an underrun stand in for this gap.
    const int64_t absorb = std::min<int64_t>(owedTs_, h->ts - playTs_);
    playTs_ += absorb;
    owedTs_ = 0;
    owed_ = 0;
  }
  if (h->ts <= playTs_) {
    u.kind = Unit::Packet;
    u.payload = h->data;
    u.len = h->len;
    u.payloadType = h->pt;
    u.durTs = h->dur;
    playTs_ = h->ts + h->dur;
    owed_ = 0;
    owedTs_ = 0;
    popHead();  // the slot's bytes stay intact until the next put()
    return u;
  }
  const int64_t gap = h->ts - playTs_;
  const uint32_t conceal = static_cast<uint32_t>(std::min<int64_t>(gap, frameTs));
  playTs_ += conceal;
  u.kind = Unit::Lost;
  u.durTs = conceal;
  if (h->ts == playTs_) {
    u.nextPayload = h->data;
    u.nextLen = h->len;
    u.payloadType = h->pt;
  }
  return u;
}

}  // namespace voice
