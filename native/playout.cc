#include "playout.h"

#include <algorithm>
#include <cstring>

namespace voice {

Playout::Playout(int outRate, const JitterConfig& jb)
    : outRate_(outRate == 16000 ? 16000 : 8000), jb_(jb), opus_(outRate_), up_(8000, 16000, 1280) {
  clockRate_ = jb_.config().clockRate;
  std::memset(last_, 0, sizeof last_);
  std::memset(work_, 0, sizeof work_);
}

void Playout::setCodec(Codec c, int pt) {
  const int clock = c == Codec::Opus ? 48000 : 8000;
  codec_ = c;
  pt_ = pt;
  const int work = c == Codec::Opus ? outRate_ : 8000;
  if (work != workRate_) {
    workRate_ = work;
    stashLen_ = 0;
    std::memset(last_, 0, sizeof last_);
    lastQuiet_ = true;
  }
  if (clock != clockRate_) {
    clockRate_ = clock;
    jb_.setClockRate(clock);
    stashLen_ = 0;
  }
}

bool Playout::accepts(uint8_t pt) const {
  return pt == pt_ || (codec_ != Codec::Opus && (pt == 0 || pt == 8));
}

JitterBuffer::PutResult Playout::put(const RtpPacket& p, int64_t arrivalNs) {
  uint32_t dur;
  if (codec_ == Codec::Opus) {
    const int n = opusPacketSamples48k(p.payload, p.payloadLen);
    dur = n > 0 ? static_cast<uint32_t>(n) : 960;  // malformed: the decoder conceals it
  } else {
    dur = static_cast<uint32_t>(p.payloadLen);
  }
  return jb_.put(p, dur, arrivalNs);
}

void Playout::appendG711(int16_t* pcm8k, size_t n) {
  n = std::min(n, kStash - stashLen_);
  std::memcpy(stash_ + stashLen_, pcm8k, n * sizeof(int16_t));
  stashLen_ += n;
}

void Playout::decodeInto(const JitterBuffer::Unit& u) {
  Codec c = codec_;
  if (u.payloadType != pt_) c = u.payloadType == 8 ? Codec::PCMA : Codec::PCMU;
  if (c == Codec::Opus) {
    const int n = opus_.decode(u.payload, u.len, stash_ + stashLen_, static_cast<int>(kStash - stashLen_));
    if (n < 0) {
      ++stats_.decodeErrors;
      concealInto(u.durTs, nullptr, 0);
      return;
    }
    stashLen_ += static_cast<size_t>(n);
    return;
  }
  const size_t n = std::min(u.len, kStash);
  g711Decode(c, u.payload, n, tmp_);
  plc_.good(tmp_, n);
  appendG711(tmp_, n);
}

void Playout::concealInto(uint32_t durTs, const uint8_t* next, size_t nextLen) {
  ++stats_.concealed;
  if (codec_ == Codec::Opus) {
    int n = static_cast<int>(static_cast<int64_t>(durTs) * workRate_ / clockRate_);
    n = std::min<int>(n, static_cast<int>(kStash - stashLen_));
    int got;
    if (next && nextLen) {
      got = opus_.decodeFec(next, nextLen, stash_ + stashLen_, n);
      if (got > 0 && opusPacketHasFec(next, nextLen)) {
        ++stats_.fecRecovered;
        --stats_.concealed;
      }
    } else {
      got = opus_.conceal(stash_ + stashLen_, n);
    }
    if (got <= 0) {
      std::memset(stash_ + stashLen_, 0, sizeof(int16_t) * static_cast<size_t>(n));
      got = n;
    }
    stashLen_ += static_cast<size_t>(got);
    return;
  }
  const size_t n8 = std::min<size_t>(durTs, kStash / 2);
  plc_.conceal(tmp_, n8);
  appendG711(tmp_, n8);
}

bool Playout::fill(int64_t nowNs, size_t want, bool* sawPacket) {
  const uint32_t frameTs = static_cast<uint32_t>(clockRate_ / 50);
  for (int guard = 0; stashLen_ < want; ++guard) {
    if (guard > 64) {  // defensive: decoders that produce nothing
      std::memset(stash_ + stashLen_, 0, (want - stashLen_) * sizeof(int16_t));
      stashLen_ = want;
      break;
    }
    const JitterBuffer::Unit u = jb_.next(nowNs, frameTs);
    switch (u.kind) {
      case JitterBuffer::Unit::NotStarted:
        if (!u.started && stashLen_ == 0) return false;
        std::memset(stash_ + stashLen_, 0, (want - stashLen_) * sizeof(int16_t));
        stashLen_ = want;
        break;
      case JitterBuffer::Unit::Packet:
        decodeInto(u);
        *sawPacket = true;
        break;
      case JitterBuffer::Unit::Lost:
        concealInto(u.durTs, u.nextPayload, u.nextLen);
        break;
      case JitterBuffer::Unit::Underrun:
        concealInto(u.durTs, nullptr, 0);
        break;
    }
  }
  return true;
}

bool Playout::quiet(const int16_t* x, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; ++i) e += static_cast<double>(x[i]) * x[i];
  return e < 300.0 * 300.0 * static_cast<double>(n);
}

bool Playout::tick(int64_t nowNs, int16_t* out, bool needOut, const int16_t** pcm8) {
  if (workRate_ == outRate_) {
    if (!tickWork(nowNs, out)) return false;
    if (pcm8) *pcm8 = outRate_ == 8000 ? out : nullptr;
    return true;
  }
  // G.711 at a 16 kHz delivery rate: the frame is made at 8 kHz, then interpolated (or only
  // pushed through the interpolator's history when nobody wants the 16 kHz frame).
  if (!tickWork(nowNs, work_)) return false;
  const size_t n8 = static_cast<size_t>(workRate_ / 50);
  if (needOut) up_.process(work_, n8, out, frameSamples());
  else up_.process(work_, n8, nullptr, 0);
  if (pcm8) *pcm8 = work_;
  return true;
}

bool Playout::tickWork(int64_t nowNs, int16_t* out) {
  const size_t frame = static_cast<size_t>(workRate_ / 50);
  const double frameMs = 20.0;
  const bool playing = jb_.playing();
  const double ex = playing ? jb_.excessMs(nowNs) : 0;
  if (playing && ex <= -frameMs && stashLen_ == 0 && lastQuiet_) {
    // Too little buffered and the talker is quiet: repeat the quiet frame (stretch).
    std::memcpy(out, last_, frame * sizeof(int16_t));
    ++stats_.stretches;
    ++stats_.framesOut;
    return true;
  }
  bool saw = false;
  if (!fill(nowNs, frame, &saw)) return false;
  std::memcpy(out, stash_, frame * sizeof(int16_t));
  stashLen_ -= frame;
  std::memmove(stash_, stash_ + frame, stashLen_ * sizeof(int16_t));

  if (saw && ex >= frameMs) {
    const bool q = quiet(out, frame);
    bool force = false;
    if (!q && ++excessTicks_ >= 25 && ex >= 2 * frameMs) force = true;  // sustained 0.5 s: shrink in speech too
    if (q || force) {
      bool saw2 = false;
      if (stashLen_ < frame) fill(nowNs, frame, &saw2);
      if (saw2 && stashLen_ >= frame) {
        // Drop `out`; play the next frame, cross-faded from the dropped one.
        const size_t ov = force ? static_cast<size_t>(workRate_ / 400) : 0;  // 2.5 ms
        for (size_t j = 0; j < ov; ++j) {
          const float w = static_cast<float>(j + 1) / static_cast<float>(ov + 1);
          stash_[j] = static_cast<int16_t>(w * stash_[j] + (1 - w) * out[j]);
        }
        std::memcpy(out, stash_, frame * sizeof(int16_t));
        stashLen_ -= frame;
        std::memmove(stash_, stash_ + frame, stashLen_ * sizeof(int16_t));
        ++stats_.shrinks;
        excessTicks_ = 0;
      }
    }
  } else if (ex < frameMs) {
    excessTicks_ = 0;
  }
  lastQuiet_ = quiet(out, frame);
  std::memcpy(last_, out, frame * sizeof(int16_t));
  ++stats_.framesOut;
  return true;
}

}  // namespace voice
