#include "dtmf_inband.h"

#include <algorithm>
#include <cmath>

namespace voice {
namespace {
constexpr double kPi = 3.14159265358979323846;
constexpr double kRate = 8000.0;
constexpr double kFreqs[8] = {697, 770, 852, 941, 1209, 1336, 1477, 1633};
constexpr char kKeys[4][4] = {{'1', '2', '3', 'A'}, {'4', '5', '6', 'B'}, {'7', '8', '9', 'C'}, {'*', '0', '#', 'D'}};

double dbToPower(double db) { return std::pow(10.0, db / 10.0); }

// Samples are scaled to [-1, 1). A sine of amplitude a over N samples gives a normalised
// Goertzel power (2|X|^2 / N) of a^2 N / 2, the same as its energy sum(x^2).
// 0 dBm0 = a sine 3.17 dB below G.711's full-scale sine (amplitude ~0.996).
const float kMinTone = static_cast<float>(
    std::pow(0.996 * std::pow(10.0, (InbandDtmf::kMinToneDbm0 - 3.17) / 20.0), 2) * InbandDtmf::kWindow / 2.0);
const float kMinHoldTone = kMinTone * 0.25f;  // 6 dB below: a key fading out still holds
const float kHighOverLow = static_cast<float>(dbToPower(InbandDtmf::kMaxHighOverLowDb));
const float kLowOverHigh = static_cast<float>(dbToPower(InbandDtmf::kMaxLowOverHighDb));
const float kPeak = static_cast<float>(dbToPower(InbandDtmf::kMinPeakOverOthersDb));

int strongest(const float p[4]) {
  int best = 0;
  for (int i = 1; i < 4; ++i)
    if (p[i] > p[best]) best = i;
  return best;
}

bool standsOut(const float p[4], int best) {
  for (int i = 0; i < 4; ++i)
    if (i != best && p[i] * kPeak > p[best]) return false;
  return true;
}

bool keyPosition(char key, int* row, int* col) {
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c)
      if (kKeys[r][c] == key) {
        *row = r;
        *col = c;
        return true;
      }
  return false;
}
}  // namespace

InbandDtmf::InbandDtmf() {
  for (int i = 0; i < 8; ++i) coef_[i] = static_cast<float>(2.0 * std::cos(2.0 * kPi * kFreqs[i] / kRate));
  for (float& v : ring_) v = 0;
}

InbandDtmf::WindowResult InbandDtmf::classify(const float rows[4], const float cols[4], float energy, char key) {
  WindowResult res;
  if (!(energy > 0)) return res;  // also NaN
  const int r = strongest(rows), c = strongest(cols);
  const float lo = rows[r], hi = cols[c];
  if (lo >= kMinTone && hi >= kMinTone && hi <= lo * kHighOverLow && lo <= hi * kLowOverHigh &&
      standsOut(rows, r) && standsOut(cols, c) && lo + hi >= static_cast<float>(kStartToneFraction) * energy) {
    res.key = kKeys[r][c];
  }
  int kr, kc;
  if (key && keyPosition(key, &kr, &kc)) {
    res.holds = kr == r && kc == c && lo >= kMinHoldTone && hi >= kMinHoldTone &&
                lo + hi >= static_cast<float>(kHoldToneFraction) * energy;
  }
  return res;
}

void InbandDtmf::window(float energy, DtmfReceiver::Out* out, int maxOut, int* n) {
  WindowResult w;
  // Below this no tone can reach even the hold level (a bin's normalised power is at most
  // twice the window's energy): skip the filters. Silence and quiet lines cost ~nothing.
  if (energy >= 0.5f * kMinHoldTone) {
    float s1[8] = {}, s2[8] = {};
    auto run = [&](const float* x, int len) {
      for (int k = 0; k < len; ++k) {
        for (int i = 0; i < 8; ++i) {
          const float v = x[k] + coef_[i] * s1[i] - s2[i];
          s2[i] = s1[i];
          s1[i] = v;
        }
      }
    };
    run(ring_ + pos_, kWindow - pos_);  // oldest sample first
    run(ring_, pos_);
    float rows[4], cols[4];
    for (int i = 0; i < 8; ++i) {
      const float p = s1[i] * s1[i] + s2[i] * s2[i] - coef_[i] * s1[i] * s2[i];
      (i < 4 ? rows[i] : cols[i - 4]) = p * (2.0f / kWindow);
    }
    w = classify(rows, cols, energy, active_);
  }

  // Runs of windows naming the same key; a run may start a key only after a quiet gap. One
  // window naming none inside a run is forgiven (codec artefacts: Opus, a lost packet).
  if (w.key) {
    if (w.key == cand_) {
      ++candRun_;
    } else {
      cand_ = w.key;
      candRun_ = 1;
      idleRun_ = quietRun_;
    }
    candMiss_ = 0;
  } else if (cand_ && ++candMiss_ > 1) {
    cand_ = 0;
    candRun_ = 0;
  }
  quietRun_ = !w.key && !(active_ && w.holds) ? quietRun_ + 1 : 0;

  if (active_) {
    if (w.holds) {
      holdWindows_ += 1 + missRun_;
      missRun_ = 0;
    } else if (++missRun_ >= kEndWindows) {
      if (*n < maxOut) out[(*n)++] = DtmfReceiver::Out{DtmfReceiver::Out::End, active_, static_cast<uint32_t>(holdWindows_ * kHop)};
      active_ = 0;
      holdWindows_ = 0;
      cand_ = 0;  // a key that ended on windows of another key: that one needs its own gap first
      candRun_ = candMiss_ = 0;
    }
    return;
  }
  if (cand_ && candRun_ >= kStartWindows && idleRun_ >= kEndWindows) {
    active_ = cand_;
    holdWindows_ = candRun_;
    missRun_ = 0;
    if (*n < maxOut) out[(*n)++] = DtmfReceiver::Out{DtmfReceiver::Out::Start, active_, 0};
  }
}

int InbandDtmf::process(const int16_t* pcm, size_t len, DtmfReceiver::Out* out, int maxOut) {
  int n = 0;
  size_t k = 0;
  while (k < len) {
    // Up to the end of the current hop in a tight loop (locals: no aliasing with ring_).
    const size_t m = std::min(len - k, static_cast<size_t>(kHop - sinceHop_));
    int pos = pos_;
    float e = halfEnergy_;
    for (size_t j = 0; j < m; ++j) {
      const float x = pcm[k + j] * (1.0f / 32768.0f);
      ring_[pos] = x;
      pos = pos + 1 == kWindow ? 0 : pos + 1;
      e += x * x;
    }
    pos_ = pos;
    halfEnergy_ = e;
    sinceHop_ += static_cast<int>(m);
    k += m;
    if (sinceHop_ == kHop) {
      // A window (the last kWindow samples) ends every kHop samples.
      window(prevHalfEnergy_ + halfEnergy_, out, maxOut, &n);
      prevHalfEnergy_ = halfEnergy_;
      halfEnergy_ = 0;
      sinceHop_ = 0;
    }
  }
  return n;
}

bool InbandDtmf::finish(DtmfReceiver::Out* out) {
  const char key = active_;
  const uint32_t dur = static_cast<uint32_t>(holdWindows_ * kHop);
  for (float& v : ring_) v = 0;
  pos_ = sinceHop_ = 0;
  halfEnergy_ = prevHalfEnergy_ = 0;
  cand_ = active_ = 0;
  candRun_ = candMiss_ = holdWindows_ = missRun_ = 0;
  quietRun_ = idleRun_ = kEndWindows;
  if (!key) return false;
  *out = DtmfReceiver::Out{DtmfReceiver::Out::End, key, dur};
  return true;
}

}  // namespace voice
