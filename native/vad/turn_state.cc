#include "turn_state.h"

#include <algorithm>
#include <cmath>

namespace voice {
namespace vad {

float energyDbfs(double e, size_t n) {
  if (n == 0 || e <= 0) return kSilenceDbfs;
  const float db = static_cast<float>(10.0 * std::log10(e / static_cast<double>(n)));
  return db < kSilenceDbfs ? kSilenceDbfs : db;
}

float levelDbfs(const float* x, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; ++i) e += static_cast<double>(x[i]) * x[i];
  return energyDbfs(e, n);
}

FrameLevels measureLevels(const float* frame, size_t n) {
  // One pass: each sub-block's energy, the frame's level from their sum.
  FrameLevels lv;
  const size_t kSub = n / 4;
  double total = 0;
  for (int j = 0; j < 4; ++j) {
    double e = 0;
    for (size_t i = 0; i < kSub; ++i) e += static_cast<double>(frame[j * kSub + i]) * frame[j * kSub + i];
    total += e;
    lv.subDb[j] = energyDbfs(e, kSub);
  }
  lv.frameDb = energyDbfs(total, 4 * kSub);
  return lv;
}

int msToFrames(int ms) {
  if (ms <= 0) return 0;
  return (ms + kVadFrameMs - 1) / kVadFrameMs;
}

const char* validateTunables(const TurnTunables& t) {
  if (!(t.activationThreshold > 0.0f && t.activationThreshold <= 1.0f)) return "activationThreshold must be in (0, 1]";
  if (!(t.deactivationThreshold > 0.0f && t.deactivationThreshold <= t.activationThreshold))
    return "deactivationThreshold must be in (0, activationThreshold]";
  if (t.minSpeechMs < 0 || t.minSpeechMs > 10000) return "minSpeechMs must be in [0, 10000]";
  if (t.onsetMaxGapMs < 0 || t.onsetMaxGapMs > 2000) return "onsetMaxGapMs must be in [0, 2000]";
  if (t.endpointSilenceMs < 32 || t.endpointSilenceMs > 10000) return "endpointSilenceMs must be in [32, 10000]";
  if (t.digitsEndpointSilenceMs < t.endpointSilenceMs || t.digitsEndpointSilenceMs > 20000)
    return "digitsEndpointSilenceMs must be in [endpointSilenceMs, 20000]";
  if (t.minInterruptionMs < 0 || t.minInterruptionMs > 10000) return "minInterruptionMs must be in [0, 10000]";
  if (t.falseInterruptionMinSpeechMs < 0 || t.falseInterruptionMinSpeechMs > 10000)
    return "falseInterruptionMinSpeechMs must be in [0, 10000]";
  if (t.preRollFrames < 0 || t.preRollFrames > 32) return "preRollFrames must be in [0, 32]";
  if (t.pauseOnsetMs < 0 || t.pauseOnsetMs > 10000) return "pauseOnsetMs must be in [0, 10000]";
  if (t.pauseHoldMs < 0 || t.pauseHoldMs > 10000) return "pauseHoldMs must be in [0, 10000]";
  if (t.latencyCompensationMs < 0 || t.latencyCompensationMs > 1000) return "latencyCompensationMs must be in [0, 1000]";
  if (!(t.pauseCueProb >= 0.0f && t.pauseCueProb <= 1.0f)) return "pauseCueProb must be in [0, 1]";
  if (!(t.pauseCueSnrDb >= 0.0f && t.pauseCueSnrDb <= 90.0f)) return "pauseCueSnrDb must be in [0, 90]";
  if (!(t.pauseDuckDb >= 0.0f && t.pauseDuckDb <= 60.0f)) return "pauseDuckDb must be in [0, 60]";
  return nullptr;
}

TurnState::TurnState(const TurnTunables& t) {
  if (!setTunables(t)) setTunables(TurnTunables());
}

bool TurnState::setTunables(const TurnTunables& t) {
  if (validateTunables(t) != nullptr) return false;
  t_ = t;
  recompute();
  return true;
}

void TurnState::recompute() {
  auto atLeast1 = [](int f) { return f < 1 ? 1 : f; };
  minSpeechF_ = atLeast1(msToFrames(t_.minSpeechMs));
  onsetGapF_ = atLeast1(msToFrames(t_.onsetMaxGapMs));
  endpointF_ = atLeast1(msToFrames(t_.endpointSilenceMs));
  digitsEndpointF_ = atLeast1(msToFrames(t_.digitsEndpointSilenceMs));
  minInterruptF_ = atLeast1(msToFrames(t_.minInterruptionMs));
  falseMinF_ = msToFrames(t_.falseInterruptionMinSpeechMs);
  pauseF_ = msToFrames(t_.pauseOnsetMs);
  pauseHoldF_ = atLeast1(msToFrames(t_.pauseHoldMs));
  confirmF_ = falseMinF_ > minInterruptF_ ? falseMinF_ : minInterruptF_;
}

void TurnState::confirmStep(TurnOutput& out) {
  if (bargedIn_ && !stopped_ && voiced_ >= confirmF_) {
    stopped_ = true;
    out.stop = true;
  }
}

int TurnState::endpointFrames(bool digits) const {
  const int base = digits ? digitsEndpointF_ : endpointF_;
  if (t_.latencyCompensationMs <= 0 || pipelineMs_ <= 0) return base;
  const int ms = digits ? t_.digitsEndpointSilenceMs : t_.endpointSilenceMs;
  // Counting from Silero's last voiced frame: on the live path (a pipeline delay is reported)
  // the model's typical tail past the sound is compensated too.
  const int delay = pipelineMs_ > 0 ? pipelineMs_ + kModelTailMs : 0;
  int comp = delay < t_.latencyCompensationMs ? delay : t_.latencyCompensationMs;
  if (comp > ms / 2) comp = ms / 2;
  // to the nearest frame: the caller hears the configured silence within half a frame
  const int f = (ms - comp + kVadFrameMs / 2) / kVadFrameMs;
  return f < 1 ? 1 : f;
}

void TurnState::reset() {
  phase_ = TurnPhase::Idle;
  startFrame_ = -1;
  lastVoiced_ = -1;
  voiced_ = 0;
  silence_ = 0;
  digits_ = false;
  bargedIn_ = false;
  stopped_ = false;
  overAgent_ = false;
  paused_ = false;
  resumeWait_ = 0;
  cue_ = 0;
  cueSpent_ = false;
  cueHeld_ = 0;
  haveSound_ = false;
  lastSoundMs_ = 0;
  lastSoundFrame_ = -1;
  heldStart_ = -1;
  heldUntil_ = -1;
}

float TurnState::noiseFloorDb() const {
  if (levelCount_ == 0) return kSilenceDbfs;
  float m = levels_[0];
  for (int i = 1; i < levelCount_; ++i) m = levels_[i] < m ? levels_[i] : m;
  return m;
}

bool TurnState::levelCue(float prob, float levelDb, float floor) {
  if (!(t_.pauseCueProb > 0.0f) || !(prob >= t_.pauseCueProb)) return false;
  return levelDb >= kPauseCueMinDbfs && levelDb - floor >= t_.pauseCueSnrDb;
}

void TurnState::noteLevels(float prob, float levelDb) {
  // The floor is the line without the caller: only frames the model calls non-speech enter it.
  if (!(prob < t_.deactivationThreshold) && !std::isnan(prob)) return;
  levels_[levelPos_] = levelDb;
  levelPos_ = (levelPos_ + 1) % kFloorFrames;
  if (levelCount_ < kFloorFrames) ++levelCount_;
}

void TurnState::noteSound(int64_t f, const FrameLevels& lv, float thr) {
  for (int j = 3; j >= 0; --j) {
    if (lv.subDb[j] >= thr) {
      haveSound_ = true;
      lastSoundFrame_ = f;
      lastSoundMs_ = f * kVadFrameMs + (j + 1) * (kVadFrameMs / 4);
      return;
    }
  }
}

bool TurnState::refinedEnd() const { return haveSound_ && lastVoiced_ - lastSoundFrame_ <= kMaxModelTailFrames; }

int TurnState::endpointTargetMs() const {
  const int ms = digits_ ? t_.digitsEndpointSilenceMs : t_.endpointSilenceMs;
  int comp = 0;
  if (t_.latencyCompensationMs > 0) {
    comp = pipelineMs_ < t_.latencyCompensationMs ? pipelineMs_ : t_.latencyCompensationMs;
    if (comp > ms / 2) comp = ms / 2;
  }
  return ms - comp;
}

bool TurnState::endpointReached(int64_t f) const {
  if (!refinedEnd()) return silence_ >= endpointFrames(digits_);
  // Silence since the last sound at the end of this frame; decided at the nearest frame boundary
  // (or only once it is all there, when a timer takes the instants between frames).
  const int64_t elapsed = (f + 1) * kVadFrameMs - lastSoundMs_;
  return elapsed + (exact_ ? 0 : kVadFrameMs / 2) >= endpointTargetMs();
}

int TurnState::endpointRemainingMs() const {
  if (phase_ != TurnPhase::Trailing || !refinedEnd()) return -1;
  const int64_t rest = endpointTargetMs() - (frame_ * kVadFrameMs - lastSoundMs_);
  return rest < 0 ? 0 : static_cast<int>(rest);
}

float TurnState::soundThresholdDb() const {
  const float floor = noiseFloorDb();
  return floor + kSoundOverFloorDb > kSoundMinDbfs ? floor + kSoundOverFloorDb : kSoundMinDbfs;
}

TurnOutput TurnState::endNow() {
  if (phase_ != TurnPhase::Trailing) return TurnOutput();
  const bool falseInt = bargedIn_ && falseMinF_ > 0 && voiced_ < falseMinF_;
  return finish(falseInt ? kEvFalseInterruption : kEvSpeechEnd);
}

TurnOutput TurnState::finish(uint32_t ev) {
  TurnOutput out;
  out.events = ev;
  out.startFrame = startFrame_;
  out.endFrame = lastVoiced_;
  out.voicedMs = voiced_ * kVadFrameMs;
  int64_t f = frame_;
  const int cue = cue_;
  const bool spent = cueSpent_;
  // A pause-first pause outlives an abandoned onset (it resumes after pauseHoldMs); a turn ends it.
  const bool keepPause = paused_ && ev == kEvBackchannel;
  reset();
  frame_ = f;
  paused_ = keepPause;
  cue_ = cue;
  cueSpent_ = spent;
  return out;
}

void TurnState::pauseStep(TurnOutput& out, bool interruptible, bool active, bool cue) {
  cue_ = (cue || active) ? cue_ + 1 : 0;
  if (cue_ == 0) cueSpent_ = false;
  if (bargedIn_ || (out.events & kEvBargeIn)) {
    paused_ = false;  // the barge-in owns the pause now
    return;
  }
  if (!paused_) {
    const bool onset = phase_ == TurnPhase::Onset && silence_ == 0 && voiced_ >= pauseF_;
    // One cue pause per loud stretch: a sound that keeps the cue up after its pause resumed (music,
    // a tone Silero half-believes) does not pause the prompt again until it stops.
    const bool cued = cue && !cueSpent_ && cue_ >= pauseF_ && phase_ != TurnPhase::Speech && phase_ != TurnPhase::Trailing;
    if (pauseF_ > 0 && interruptible && (onset || cued)) {
      paused_ = true;
      resumeWait_ = 0;
      cueHeld_ = 0;
      out.pause = true;
    }
    return;
  }
  if (phase_ != TurnPhase::Idle || active || (out.events & kEvBackchannel)) {
    resumeWait_ = 0;  // still (or again) someone speaking; the hold counts from the frame after the backchannel
    return;
  }
  if (cue && cueHeld_ < kMaxCueHoldFrames) {
    // Speech in noise that Silero rates 0.2-0.45 for a while before it commits: the loud,
    // possibly-speech sound holds the pause (for at most kMaxCueHoldFrames).
    ++cueHeld_;
    resumeWait_ = 0;
    return;
  }
  if (++resumeWait_ >= pauseHoldF_) {
    paused_ = false;
    resumeWait_ = 0;
    out.resume = true;
    if (cue_ > 0) cueSpent_ = true;
  }
}

TurnOutput TurnState::push(float prob, bool agentSpeaking, bool uninterruptible, const FrameLevels* levels) {
  bool cue = false;
  float soundThr = 0;
  if (levels) {
    const float floor = noiseFloorDb();  // before this frame: a loud frame is measured against the quiet ones
    cue = levelCue(prob, levels->frameDb, floor);
    soundThr = floor + kSoundOverFloorDb > kSoundMinDbfs ? floor + kSoundOverFloorDb : kSoundMinDbfs;
    noteLevels(prob, levels->frameDb);
  }
  TurnOutput out = pushCore(prob, agentSpeaking, uninterruptible, levels, soundThr);
  pauseStep(out, agentSpeaking && !uninterruptible, prob >= t_.activationThreshold, cue);
  return out;
}

TurnOutput TurnState::pushCore(float prob, bool agentSpeaking, bool uninterruptible, const FrameLevels* lv, float soundThr) {
  const int64_t f = frame_++;
  const bool interruptible = agentSpeaking && !uninterruptible;
  // NaN (no result: overload, broken model output) counts as silence, except in an onset.
  const bool active = prob >= t_.activationThreshold;
  const bool voiced = prob >= t_.deactivationThreshold;
  TurnOutput out;
  if (lv && (phase_ != TurnPhase::Idle || active)) noteSound(f, *lv, soundThr);

  switch (phase_) {
    case TurnPhase::Idle:
      if (!active) return out;
      phase_ = TurnPhase::Onset;
      startFrame_ = f - t_.preRollFrames < 0 ? 0 : f - t_.preRollFrames;
      // A short onset just before ("Yes, ..." with the comma's pause) belongs to this utterance:
      // its audio goes to STT with the rest (it does not count toward minSpeechMs).
      if (heldStart_ >= 0 && f <= heldUntil_ && !interruptible && heldStart_ < startFrame_) startFrame_ = heldStart_;
      heldStart_ = -1;
      voiced_ = 1;
      silence_ = 0;
      lastVoiced_ = f;
      bargedIn_ = false;
      overAgent_ = interruptible;
      break;

    case TurnPhase::Onset:
      if (interruptible) overAgent_ = true;
      if (std::isnan(prob)) break;  // no result for this frame (overload): neither voiced nor a gap
      if (voiced) {
        voiced_++;
        silence_ = 0;
        lastVoiced_ = f;
      } else if (++silence_ >= onsetGapF_) {
        // Too short to be a turn: forget it (tell the dialogue if it was over the agent's prompt).
        // With the agent silent, its start is kept for an onset that follows within the endpointing
        // silence.
        if (overAgent_) return finish(kEvBackchannel);
        const int64_t start = startFrame_;
        const TurnOutput o = finish(kEvNone);
        heldStart_ = start;
        heldUntil_ = f + endpointF_;
        return o;
      }
      break;

    case TurnPhase::Speech:
    case TurnPhase::Trailing:
      if (voiced) {
        voiced_++;
        silence_ = 0;
        lastVoiced_ = f;
        phase_ = TurnPhase::Speech;
        if (interruptible && !bargedIn_ && voiced_ >= minInterruptF_) {
          // The agent started talking over a caller turn in progress: stop it.
          bargedIn_ = true;
          out.events |= kEvBargeIn;
        }
        confirmStep(out);
      } else {
        phase_ = TurnPhase::Trailing;
        ++silence_;
        if (endpointReached(f)) {
          const bool falseInt = bargedIn_ && falseMinF_ > 0 && voiced_ < falseMinF_;
          return finish(falseInt ? kEvFalseInterruption : kEvSpeechEnd);
        }
      }
      out.startFrame = startFrame_;
      out.voicedMs = voiced_ * kVadFrameMs;
      return out;
  }

  // Onset: promote to a turn?
  if (phase_ == TurnPhase::Onset && silence_ == 0) {
    if (interruptible) {
      if (voiced_ >= minInterruptF_) {
        phase_ = TurnPhase::Speech;
        bargedIn_ = true;
        out.events = kEvSpeechStart | kEvBargeIn;
        confirmStep(out);
      }
    } else if (voiced_ >= minSpeechF_) {
      phase_ = TurnPhase::Speech;
      out.events = kEvSpeechStart;
    }
  }
  out.startFrame = startFrame_;
  out.voicedMs = voiced_ * kVadFrameMs;
  return out;
}

}  // namespace vad
}  // namespace voice
