// Feeds the VAD from inbound RTP as it arrives, ahead of the jitter buffer.
//
// The jitter buffer holds audio back by its target delay (20-200 ms, ~40-60 ms
// on a typical loopback/LAN stream) so that playout is smooth; the VAD does
// not need smoothness, it needs the caller's audio early: every millisecond
// spent in the buffer is a millisecond added to barge-in reaction and to the
// endpointing decision. ReadAhead puts decoded 8 kHz payloads back into
// RTP-timestamp order with a short reorder wait of its own and emits them the
// moment they are contiguous:
//
//   - a packet at the expected timestamp is emitted at once (and any stashed
//     packets that now follow contiguously);
//   - a packet after a gap is stashed; the gap is concealed (the last 20 ms
//     repeated at half level, then zeros) once it has waited reorderMs, or
//     when the stash is full;
//   - a late packet (its media already emitted or concealed) is dropped;
//   - when no audio arrives at all for stallMs (DTX, a far end that stops
//     sending in silence, a network stall), 20 ms of silence is emitted per
//     20 ms of wall time so that endpointing keeps counting; a stream that
//     resumes where it stopped (delayed packets) is emitted after the fill, a
//     stream whose clock moved on (silence suppression) only gets the part of
//     its gap the fill did not already cover;
//   - a timestamp jump of more than jumpMs either way (new source, new
//     talkspurt clock) re-anchors on the new packet.
//
// The emitted stream is what the VAD (and the utterance ring handed to STT)
// sees; it matches the playout's audio except where the playout conceals or
// time-scales differently. Plain C++17, no N-API, no allocation after
// construction; one instance per call, media thread only.
#pragma once
#include <cstddef>
#include <cstdint>

namespace voice {
namespace vad {

struct ReadAheadConfig {
  /** How long a gap waits for its missing packet before it is concealed. @defaultValue 40 */
  int reorderMs = 40;
  /** Wall time without any audio after which silence is emitted (20 ms per 20 ms). @defaultValue 60 */
  int stallMs = 60;
  /** A timestamp step larger than this (either way) re-anchors the stream. @defaultValue 600 */
  int jumpMs = 600;
};

struct ReadAheadStats {
  uint64_t packets = 0;    // emitted in order on arrival (incl. from the stash)
  uint64_t reordered = 0;  // emitted from the stash after their gap closed
  uint64_t late = 0;       // dropped: their media was already emitted or concealed
  uint64_t concealedSamples = 0;
  uint64_t stallSamples = 0;  // silence for stalls (and the part of a resumed sender's gap the fill did not cover)
  uint64_t reanchors = 0;
};

class ReadAhead {
 public:
  /** Sink receives 8 kHz PCM in chunks of at most kChunk samples. */
  using Sink = void (*)(void* ctx, const int16_t* pcm, size_t n);
  static constexpr size_t kChunk = 160;
  static constexpr int kStashSlots = 8;
  /** Longest payload taken (120 ms at 8 kHz); longer ones are cut to it. */
  static constexpr size_t kMaxPacket = 960;

  explicit ReadAhead(const ReadAheadConfig& cfg = ReadAheadConfig());

  /** A decoded 8 kHz packet with RTP timestamp `ts` arrived at `nowNs`. */
  void onPacket(uint32_t ts, const int16_t* pcm, size_t n, int64_t nowNs, Sink sink, void* ctx);
  /** Call every 20 ms of wall time: conceals gaps that waited long enough, fills stalls. */
  void onTick(int64_t nowNs, Sink sink, void* ctx);
  /** Forget the stream (codec change): the next packet anchors it. */
  void reset();

  bool started() const { return started_; }
  const ReadAheadStats& stats() const { return st_; }
  /** Timestamp of the next sample expected (valid once started). */
  uint32_t nextTs() const { return next_; }

 private:
  struct Entry {
    uint32_t ts = 0;
    size_t n = 0;
    int16_t pcm[kMaxPacket];
  };
  void emit(const int16_t* pcm, size_t n, Sink sink, void* ctx);
  void emitSilence(size_t n, bool conceal, Sink sink, void* ctx);
  void drain(int64_t nowNs, Sink sink, void* ctx);
  void concealGap(int64_t nowNs, Sink sink, void* ctx);
  void anchor(uint32_t ts, int64_t nowNs);

  ReadAheadConfig cfg_;
  int64_t reorderNs_, stallNs_;
  int32_t jumpTs_;
  bool started_ = false;
  uint32_t next_ = 0;       // RTP ts of the next sample to emit
  int64_t fedUntilNs_ = 0;  // wall time the emitted audio reaches (arrival of real media, or the stall fill)
  int64_t gapSinceNs_ = 0;  // when the current gap was first seen (0 = no gap)
  uint64_t filled_ = 0;     // stall-fill samples emitted since the last real packet
  bool stallArmed_ = false; // a tick saw the stall; the next one (if still nothing arrived) fills
  Entry stash_[kStashSlots];
  int order_[kStashSlots];  // stash indices sorted by ts (relative to next_)
  int count_ = 0;
  int16_t last_[kChunk];    // the last kChunk samples emitted (concealment source)
  ReadAheadStats st_;
};

}  // namespace vad
}  // namespace voice
