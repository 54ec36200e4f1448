// Packet loss concealment for G.711 (and any codec without its own PLC):
// pitch-period repetition with a smoothed cycle, attenuation after 10 ms
// (silent after 60 ms), and cross-fades at both joins so a loss never clicks.
// Own implementation in the spirit of ITU-T G.711 Appendix I.
//
// Media thread only; no allocation (fixed arrays sized for 8 kHz).
#pragma once
#include <cstddef>
#include <cstdint>

namespace voice {

class G711Plc {
 public:
  static constexpr int kRate = 8000;
  static constexpr int kMinPitch = 20;    // 2.5 ms (400 Hz)
  static constexpr int kMaxPitch = 120;   // 15 ms (66 Hz)
  static constexpr int kCorrWin = 120;    // 15 ms correlation window
  static constexpr int kHist = 400;       // 50 ms of history
  static constexpr int kFadeStart = 80;   // full level for the first 10 ms of a loss
  static constexpr int kFadeLen = 400;    // then a linear fade to silence at 60 ms
  static constexpr int kJoinOut = 32;     // 4 ms cross-fade into the first good frame

  G711Plc();
  /** A decoded (good) frame; cross-fades its start in place when it follows a concealment. */
  void good(int16_t* pcm, size_t n);
  /** Synthesize n samples in place of lost audio. */
  void conceal(int16_t* out, size_t n);
  /** Samples concealed in the current loss (0 while audio flows). */
  int erased() const { return erased_; }
  void reset();

 private:
  void startLoss();
  float sampleAt(int k) const;  // k-th concealment sample, before attenuation
  float gainAt(int k) const;

  int16_t hist_[kHist];
  int histLen_ = 0;
  float cycle_[kMaxPitch];
  int pitch_ = 0;
  float offset_ = 0;  // DC step at the first join, ramped out over the first quarter period
  int erased_ = 0;
};

}  // namespace voice
