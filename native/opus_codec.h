// Opus (RFC 6716 / RFC 7587) through Debian's libopus. The RTP clock is always
// 48 kHz; libopus itself encodes from and decodes to 8/12/16/24/48 kHz, so the
// session's internal 8 or 16 kHz PCM needs no extra resampling stage.
// Both classes allocate only in their constructors.
#pragma once
#include <cstddef>
#include <cstdint>

struct OpusEncoder;
struct OpusDecoder;

namespace voice {

/** Encoder settings derived from the peer's fmtp (RFC 7587 §7). */
struct OpusParams {
  /** maxaveragebitrate, bit/s; 0 = libopus default for the bandwidth. */
  int bitrate = 0;
  /** useinbandfec=1 from the peer: it can use in-band FEC, so we send it. */
  bool fec = false;
  /** Expected loss for the FEC tuning, percent. */
  int lossPercent = 10;
  /** maxplaybackrate, Hz: caps the coded bandwidth. */
  int maxPlaybackRate = 48000;
  /** usedtx=1 from the peer. */
  bool dtx = false;
  bool operator==(const OpusParams& o) const {
    return bitrate == o.bitrate && fec == o.fec && lossPercent == o.lossPercent &&
           maxPlaybackRate == o.maxPlaybackRate && dtx == o.dtx;
  }
  bool operator!=(const OpusParams& o) const { return !(*this == o); }
};

class OpusEnc {
 public:
  /** inRate: 8000, 12000, 16000, 24000 or 48000. Throws std::runtime_error on failure. */
  explicit OpusEnc(int inRate);
  ~OpusEnc();
  OpusEnc(const OpusEnc&) = delete;
  OpusEnc& operator=(const OpusEnc&) = delete;
  void apply(const OpusParams& p);
  /** Encode one frame (n = 2.5..60 ms at inRate); returns bytes written or < 0. */
  int encode(const int16_t* pcm, int n, uint8_t* out, int cap);
  int inRate() const { return rate_; }

 private:
  OpusEncoder* enc_ = nullptr;
  int rate_;
};

class OpusDec {
 public:
  explicit OpusDec(int outRate);
  ~OpusDec();
  OpusDec(const OpusDec&) = delete;
  OpusDec& operator=(const OpusDec&) = delete;
  /** Decode a packet; returns samples written (at outRate) or < 0. */
  int decode(const uint8_t* data, size_t len, int16_t* out, int maxSamples);
  /** Decoder PLC for n samples (n a multiple of 2.5 ms). */
  int conceal(int16_t* out, int n);
  /** Recover the n samples before `next` from its in-band FEC (falls back to PLC inside libopus). */
  int decodeFec(const uint8_t* next, size_t len, int16_t* out, int n);
  void reset();
  int outRate() const { return rate_; }

 private:
  OpusDecoder* dec_ = nullptr;
  int rate_;
};

/** Duration of an Opus packet in 48 kHz samples, or < 0 when malformed. */
int opusPacketSamples48k(const uint8_t* data, size_t len);
/** True when the packet carries SILK LBRR (in-band FEC) data for the previous frame. */
bool opusPacketHasFec(const uint8_t* data, size_t len);

}  // namespace voice
