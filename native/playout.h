// Inbound playout of one session: jitter buffer → decoder (G.711 or Opus) →
// concealment → time-scale adjustment → fixed 20 ms frames at the session's
// delivery rate (8 or 16 kHz). Driven by the media thread's 20 ms clock;
// test bindings drive it with scripted arrival and playout instants.
//
// G.711 is played out at its own 8 kHz (decode, concealment, time-scaling) and
// interpolated to a 16 kHz delivery rate per frame, and only for a caller that
// asks for the 16 kHz frame (tick's needOut): a call nobody listens to at 16 kHz
// (no 'audio' consumer, no recording) only advances the interpolator's history,
// so the next frame asked for is exactly what a continuous run would give.
// Opus is decoded straight at the delivery rate.
//
// Media thread only. Everything is allocated in the constructor.
#pragma once
#include <cstdint>
#include <memory>

#include "g711.h"
#include "jitter_buffer.h"
#include "opus_codec.h"
#include "plc.h"
#include "resampler.h"
#include "rtp.h"

namespace voice {

struct PlayoutStats {
  JitterStats jb;
  uint64_t framesOut = 0;     // 20 ms frames produced
  uint64_t concealed = 0;     // frames (or parts) synthesized by PLC
  uint64_t fecRecovered = 0;  // Opus frames rebuilt from in-band FEC
  uint64_t shrinks = 0;       // frames dropped to reduce delay (silence first, cross-faded otherwise)
  uint64_t stretches = 0;     // frames inserted to grow delay (in silence)
  uint64_t decodeErrors = 0;
};

class Playout {
 public:
  /** outRate: 8000 or 16000. */
  Playout(int outRate, const JitterConfig& jb);

  /** Main codec and its payload type; static PT 0/8 stay decodable while the main codec is G.711. Resets on a clock change. */
  void setCodec(Codec c, int pt);
  Codec codec() const { return codec_; }
  /** Accepts the payload types this stream can decode; false if it cannot. */
  bool accepts(uint8_t pt) const;
  JitterBuffer::PutResult put(const RtpPacket& p, int64_t arrivalNs);
  /**
   * Produce one 20 ms frame (outRate/50 samples) for the playout instant
   * `nowNs`. Returns false when the stream has not started (nothing to deliver);
   * after it started, gaps come out concealed, then as silence.
   */
  bool tick(int64_t nowNs, int16_t* out) { return tick(nowNs, out, true, nullptr); }
  /**
   * tick() for the media thread. `out` (outRate/50 samples) is written unless the playout runs
   * G.711 below the delivery rate and `needOut` is false; `*pcm8` (when given) points to the
   * frame at 8 kHz if the playout has it (G.711: its own frame; valid until the next tick),
   * else nullptr.
   */
  bool tick(int64_t nowNs, int16_t* out, bool needOut, const int16_t** pcm8);
  int outRate() const { return outRate_; }
  size_t frameSamples() const { return static_cast<size_t>(outRate_ / 50); }
  PlayoutStats stats() const {
    PlayoutStats s = stats_;
    s.jb = jb_.stats();
    return s;
  }
  const JitterBuffer& jitterBuffer() const { return jb_; }
  int clockRate() const { return clockRate_; }

 private:
  bool tickWork(int64_t nowNs, int16_t* out);
  bool fill(int64_t nowNs, size_t want, bool* sawPacket);
  void decodeInto(const JitterBuffer::Unit& u);
  void concealInto(uint32_t durTs, const uint8_t* next, size_t nextLen);
  void appendG711(int16_t* pcm8k, size_t n);
  static bool quiet(const int16_t* x, size_t n);

  static constexpr size_t kStash = 2 * 2880;  // > 120 ms at 16 kHz + one frame
  int outRate_;
  int workRate_ = 8000;  // the stash's rate: 8000 for G.711, outRate_ for Opus
  Codec codec_ = Codec::PCMU;
  int pt_ = 0;
  int clockRate_ = 8000;
  JitterBuffer jb_;
  G711Plc plc_;
  OpusDec opus_;
  Resampler up_;  // G.711 8 kHz → 16 kHz when outRate is 16 kHz (per output frame)
  int16_t work_[160];  // G.711 frame at 8 kHz when the delivery rate is 16 kHz
  int16_t stash_[kStash];
  size_t stashLen_ = 0;
  int16_t tmp_[kStash];
  int16_t last_[320];
  bool lastQuiet_ = true;
  int excessTicks_ = 0;
  PlayoutStats stats_;
};

}  // namespace voice
