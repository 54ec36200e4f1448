// In-band DTMF detection: key presses sent as tones in the audio, for peers that
// offered no telephone-event (RFC 4733). Pure code, no allocation, no N-API;
// fuzzed on its own (test/fuzz/dtmf_inband_fuzz.cc).
//
// Method: 8 Goertzel filters (the four row and four column frequencies, at
// their exact frequencies) over windows of 102 samples at 8 kHz (12.75 ms; at
// this length a neighbouring row tone is 19-27 dB down) that overlap by half
// (one window ends every 51 samples, 6.4 ms), plus each window's energy. A
// window names a key when (ITU-T Q.24-style acceptance):
//   - the strongest row and the strongest column tone are each at least
//     kMinToneDbm0 (-33 dBm0);
//   - twist: the column (high) tone is at most 9 dB above the row (low) tone,
//     the row tone at most 7 dB above the column tone (8 and 6 dB, the usual
//     limits, plus 1 dB: with both tones in a 102-sample window, the weaker
//     one's measured level swings by about +-1 dB with their phases);
//   - each is 8 dB above the other tones of its group;
//   - the two tones hold at least 70 % of the window's energy (speech, music
//     and noise spread theirs; a clean dual tone through G.711 holds ~100 %).
// A key starts after 4 windows name it in a run (one window naming no key
// inside the run is forgiven: codec artefacts), the run beginning after at
// least 3 quiet windows: every tone of 31 ms or more is accepted, no tone of
// 24 ms or less ever is (Q.24: accept 40 ms, reject under ~23 ms). It ends
// after 3 consecutive windows in which it is no longer present (a looser test:
// its own two tones still the strongest of their groups, >= 30 % of the
// energy, 6 dB under the level minimum), so a dropout of 10 ms (a lost packet,
// PLC) never splits a key, and a pause of 25 ms or more (Q.24: 40 ms) always
// separates two. The duration reported is the span of the windows in which the
// key was present, less the overhang of a window (~5 ms): within one window of
// the tone's.
//
// Cost: one energy sum per sample; per window (every 51 samples) 8 Goertzel
// filters over its 102 samples — skipped when the window's energy is too low
// for any tone to pass (silence, a quiet line), so a silent caller costs
// almost nothing. No allocation.
//
// Ownership and threading: owned by `Session` and touched only by the media
// thread (fed from `Session::playoutTick` with the 8 kHz playout frames while
// no telephone-event payload type is negotiated); no locks.
#pragma once
#include <cstddef>
#include <cstdint>

#include "dtmf.h"

namespace voice {

class InbandDtmf {
 public:
  /** Samples per analysis window (8 kHz); windows overlap by half. */
  static constexpr int kWindow = 102;
  static constexpr int kHop = kWindow / 2;
  /** Windows naming the same key in a row to start it. */
  static constexpr int kStartWindows = 4;
  /** Windows without the key in a row to end it; also the quiet gap a key's run must follow. */
  static constexpr int kEndWindows = 3;
  /** Weakest tone accepted, dBm0 (0 dBm0 = a sine 3.17 dB below G.711 full scale). */
  static constexpr double kMinToneDbm0 = -33.0;
  static constexpr double kMaxHighOverLowDb = 9.0;
  static constexpr double kMaxLowOverHighDb = 7.0;
  static constexpr double kMinPeakOverOthersDb = 8.0;
  /** Share of a window's energy the two tones must hold to name a key, and to keep holding it. */
  static constexpr double kStartToneFraction = 0.70;
  static constexpr double kHoldToneFraction = 0.30;

  InbandDtmf();
  /**
   * Feed 8 kHz mono PCM. Writes key Start/End events (durationTs in 8 kHz
   * samples) into `out`, at most `maxOut`, and returns how many; further
   * events of this call are dropped (one 20 ms frame yields at most 2, so 2
   * slots per 160 samples never lose one).
   */
  int process(const int16_t* pcm, size_t n, DtmfReceiver::Out* out, int maxOut);
  /** Ends a key in progress (writes its End into *out and returns true) and clears all state. */
  bool finish(DtmfReceiver::Out* out);
  /** The key currently held (0 when none). */
  char active() const { return active_; }

  /** What one window holds: the key it names (0 = none), and whether `key` is still present in it. */
  struct WindowResult {
    char key = 0;
    bool holds = false;
  };
  /**
   * Classify one window from its 8 normalised Goertzel powers (2|X|^2/N of
   * samples scaled to [-1, 1)) and its energy (sum of x^2): a pure tone's power
   * equals its energy. Exposed for tests.
   */
  static WindowResult classify(const float rows[4], const float cols[4], float energy, char key);

 private:
  void window(float energy, DtmfReceiver::Out* out, int maxOut, int* n);

  float coef_[8];
  float ring_[kWindow];        // the last kWindow samples, scaled to [-1, 1)
  int pos_ = 0;                // next write position in ring_ (= the oldest sample)
  int sinceHop_ = 0;           // samples since the last window ended
  float halfEnergy_ = 0;       // energy of the samples since the last window ended
  float prevHalfEnergy_ = 0;   // energy of the hop before
  // state machine, in windows
  char cand_ = 0;               // key named by the latest windows
  int candRun_ = 0;             // windows naming cand_ in its run
  int candMiss_ = 0;            // windows naming no key since cand_'s last one (one is forgiven)
  int idleRun_ = 0;             // quiet windows just before cand_'s run began
  int quietRun_ = kEndWindows;  // consecutive windows naming no key and holding none (the stream starts quiet)
  char active_ = 0;             // key being held (its Start was reported)
  int holdWindows_ = 0;         // windows from the key's first to its latest present window
  int missRun_ = 0;             // consecutive windows in which the active key is absent
};

}  // namespace voice
