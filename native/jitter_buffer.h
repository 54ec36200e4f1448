// Adaptive jitter buffer for one inbound RTP stream. Codec-agnostic: it holds
// encoded payloads ordered by RTP timestamp and decides, once per playout
// request, what the decoder does next (play a packet, conceal a gap, stretch
// on underrun). Pure state, no threads, no clock of its own: the caller passes
// arrival and playout instants, which makes scripted tests exact.
//
// Vocabulary (all in milliseconds unless named *Ts):
//   rd            relative delay of a packet = arrival time - media time (ts/clock)
//   minRd         smallest rd over the last kDelayWindow packets (the "fastest path")
//   lateness      rd - minRd: how much later than the fastest path a packet came
//   bufferDelay   playout instant - media time of the sample being played - minRd:
//                 how long the fastest packets wait in the buffer. A packet whose
//                 lateness exceeds bufferDelay misses its playout instant.
//   target        clamp(p95(lateness) + margin, minDelay, maxDelay)
// The playout side (playout.cc) shrinks bufferDelay towards the target by
// dropping frames (in silence first) and grows it by stretching.
//
// Media thread only. Allocation happens in the constructor only.
#pragma once
#include <cstddef>
#include <cstdint>

#include "rtp.h"

namespace voice {

struct JitterConfig {
  /** RTP clock rate of the stream (8000 for G.711, 48000 for Opus). */
  int clockRate = 8000;
  /** Lower bound of the adaptive target. */
  int minDelayMs = 20;
  /** Upper bound of the adaptive target (Asterisk's adaptive jitter buffer defaults to 200 ms max). */
  int maxDelayMs = 200;
  /** Target before any jitter has been measured (NetEQ starts at 80 ms; trunks are mostly steadier). */
  int startDelayMs = 60;
  /** Added to the measured p95 lateness. */
  int marginMs = 10;
  /** Consecutive underrun frames after which the stream counts as stopped (re-primes on the next packet). */
  int idleFrames = 50;
  /** A timestamp step larger than this from the newest packet is a new talkspurt / source: reset. */
  int jumpMs = 600;
};

struct JitterStats {
  uint64_t received = 0;     // unique packets accepted
  uint64_t expected = 0;     // RFC 3550 extended highest seq - base + 1
  int64_t lost = 0;          // expected - received (RFC 3550 cumulative; may be < 0 with duplicates before dedup)
  uint64_t late = 0;         // arrived after their playout instant
  uint64_t duplicates = 0;
  uint64_t overflow = 0;     // dropped because the buffer was full
  uint64_t resets = 0;       // SSRC changes and timestamp jumps
  uint64_t ssrcChanges = 0;
  uint64_t underruns = 0;    // playout found the buffer empty
  double jitterMs = 0;       // RFC 3550 interarrival jitter
  double bufferDelayMs = 0;  // at the last playout
  double targetDelayMs = 0;
};

class JitterBuffer {
 public:
  static constexpr int kSlots = 48;
  static constexpr size_t kMaxPayload = 1280;  // Opus max frame 1275 bytes
  static constexpr int kDelayWindow = 128;

  explicit JitterBuffer(const JitterConfig& cfg);

  enum class PutResult : uint8_t { Accepted, Duplicate, Late, Overflow, TooBig, Reset };
  /** Insert one packet; `durTs` is its duration in RTP clock units (caller knows the codec). */
  PutResult put(const RtpPacket& p, uint32_t durTs, int64_t arrivalNs);

  struct Unit {
    enum Kind : uint8_t {
      NotStarted,  // nothing to play yet (never started, priming, or idle after the stream stopped)
      Packet,      // play `payload`
      Lost,        // the packet for `durTs` is missing: conceal; `next` is the packet right after the gap, if buffered
      Underrun,    // buffer empty at the playout instant: conceal / stretch one frame, media time does not advance
    } kind = NotStarted;
    const uint8_t* payload = nullptr;
    size_t len = 0;
    uint8_t payloadType = 0;
    uint32_t durTs = 0;
    const uint8_t* nextPayload = nullptr;  // Lost only
    size_t nextLen = 0;
    bool started = false;  // playout has produced audio before (NotStarted after a reset or idle → emit silence)
  };
  /** Next unit of audio for the playout instant `nowNs`; `frameTs` is one playout frame in RTP units. */
  Unit next(int64_t nowNs, uint32_t frameTs);

  /** bufferDelay - target in ms at `nowNs` (positive = too much buffered). */
  double excessMs(int64_t nowNs) const;
  /** The playout side dropped one frame's worth of media time (time-scale shrink). */
  void noteShrink() {}
  bool playing() const { return state_ == State::Playing; }
  const JitterStats& stats() const { return stats_; }
  // For RTCP receiver reports (RFC 3550 §6.4.1).
  bool haveSource() const { return haveSeq_; }
  uint32_t ssrc() const { return ssrc_; }
  uint32_t extHighestSeq() const { return cycles_ + maxSeq_; }
  uint32_t jitterTs() const { return static_cast<uint32_t>(jitterTs_); }
  const JitterConfig& config() const { return cfg_; }
  /** Forget everything (new SDP / codec). Stats are kept. */
  void reset();
  /** New RTP clock (codec switch): resets the stream state. */
  void setClockRate(int clockRate) {
    cfg_.clockRate = clockRate > 0 ? clockRate : 8000;
    reset();
  }

 private:
  struct Slot {
    int64_t ts = 0;  // extended (unwrapped) timestamp
    uint32_t dur = 0;
    uint16_t seq = 0;
    uint8_t pt = 0;
    size_t len = 0;
    uint8_t data[kMaxPayload];
  };
  enum class State : uint8_t { Empty, Priming, Playing };

  int64_t extendTs(uint32_t ts);
  void trackSeq(uint16_t seq, bool* dup);
  void updateDelay(int64_t extTs, int64_t arrivalNs);
  double tsToMs(int64_t ts) const { return static_cast<double>(ts) * 1000.0 / cfg_.clockRate; }
  double bufferDelay(int64_t nowNs) const;
  void flushSlots();
  void popHead();

  JitterConfig cfg_;
  JitterStats stats_;
  State state_ = State::Empty;
  bool everStarted_ = false;
  bool haveSsrc_ = false;
  uint32_t ssrc_ = 0;

  // timestamp unwrapping
  bool haveTs_ = false;
  uint32_t lastTs_ = 0;
  int64_t lastExtTs_ = 0;
  int64_t maxExtTs_ = 0;  // newest timestamp seen (+ its duration)

  // RFC 3550 sequence tracking
  bool haveSeq_ = false;
  uint16_t maxSeq_ = 0;
  uint32_t cycles_ = 0;
  uint32_t baseExtSeq_ = 0;
  uint64_t seqWindow_ = 0;  // bit i = maxSeq - i received
  uint64_t prevExpected_ = 0;  // expected packets of earlier SSRCs

  // RFC 3550 jitter (in timestamp units) and the delay estimator
  bool haveTransit_ = false;
  double transit_ = 0;
  double jitterTs_ = 0;
  double rd_[kDelayWindow];
  int rdCount_ = 0, rdPos_ = 0;
  double minRd_ = 0;
  double target_ = 0;
  int sinceTarget_ = 0;

  // playout
  int64_t playTs_ = 0;  // extended ts of the next sample to play
  int owed_ = 0;        // underrun frames not yet matched by media time
  uint32_t owedTs_ = 0;

  Slot* slots_;            // kSlots, heap (large)
  int order_[kSlots];      // indices into slots_, sorted by ts
  int count_ = 0;
  int freeList_[kSlots];
  int freeCount_ = 0;

 public:
  ~JitterBuffer();
  JitterBuffer(const JitterBuffer&) = delete;
  JitterBuffer& operator=(const JitterBuffer&) = delete;
};

}  // namespace voice
