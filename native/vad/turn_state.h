// Per-call turn-taking state machine: turns Silero speech probabilities (one
// per 32 ms VAD frame) into speech start / speech end (end of turn), barge-in
// (flush outbound audio now) and false-interruption (resume the agent) events.
//
// Plain C++17, no N-API, no allocation, no locks: one instance per call,
// driven by one thread (the media thread, once per VAD frame, right after the
// frame's probability is known). The dialogue layer's hints (agent speaking,
// prompt uninterruptible, digits pending in the partial transcript) arrive as
// plain arguments/setters, so the owner decides how they cross threads.
//
// Phases:
//   Idle      no caller speech.
//   Onset     caller audio above the activation threshold, not yet long enough
//             to be a turn (minSpeechMs) or, while the agent speaks, a barge-in
//             (minInterruptionMs). Ends in Idle after onsetMaxGapMs of silence.
//   Speech    a confirmed turn: SpeechStart was emitted.
//   Trailing  a confirmed turn in silence; after endpointSilenceMs (or
//             digitsEndpointSilenceMs while digits are pending) it ends with
//             SpeechEnd, or FalseInterruption when the turn barged in but held
//             less than falseInterruptionMinSpeechMs of speech.
//
// While the agent speaks an interruptible prompt, an onset becomes a turn only
// by lasting minInterruptionMs of voiced frames: SpeechStart and BargeIn are
// then emitted together. Shorter sounds ("yeah", "mm-hm", a cough) end as
// Backchannel and the agent keeps talking. While the agent speaks an
// uninterruptible prompt (e.g. a recording notice) turns are tracked as if the
// agent were silent, and BargeIn is never emitted.
#pragma once
#include <cstddef>
#include <cstdint>

#include "frame_cutter.h"

namespace voice {
namespace vad {

/** Tunables; per tenant. Durations are rounded up to whole 32 ms frames. */
struct TurnTunables {
  /** Probability at or above which a silent stream counts as speech. @defaultValue 0.5 */
  float activationThreshold = 0.5f;
  /** Probability below which an ongoing utterance counts as silence (hysteresis; <= activation). @defaultValue 0.35 */
  float deactivationThreshold = 0.35f;
  /**
   * Voiced time before an utterance becomes a turn (SpeechStart) while the agent is silent.
   * A short answer in noise ("Yes." / "No." at 15 dB SNR) stays above the activation
   * threshold for only 5-7 frames (160-224 ms); 250 dropped about one in six. Noise, tones
   * and hold music never reach even this (Silero rates them < 0.1); with the agent
   * speaking minInterruptionMs applies instead. @defaultValue 128
   */
  int minSpeechMs = 128;
  /** Silence that abandons an onset not yet confirmed as a turn. @defaultValue 96 */
  int onsetMaxGapMs = 96;
  /** Silence after speech that ends the turn (SpeechEnd). @defaultValue 700 */
  int endpointSilenceMs = 700;
  /** Endpointing silence while the partial transcript ends in digits (see setDigitsPending). @defaultValue 1500 */
  int digitsEndpointSilenceMs = 1500;
  /** Voiced time over an interruptible agent prompt before BargeIn fires. @defaultValue 300 */
  int minInterruptionMs = 300;
  /**
   * A barged-in turn with less voiced time than this in total is a false
   * interruption: it ends with FalseInterruption instead of SpeechEnd and the
   * agent resumes (or repeats the cut sentence). Silero's probability stays
   * high ~100-200 ms past the end of a word, so a spoken "okay" counts about
   * 500-650 ms here while real interruptions run longer. 0 disables.
   * @defaultValue 700
   */
  int falseInterruptionMinSpeechMs = 700;
  /** Frames before the first voiced frame included in the reported utterance start (pre-roll for STT). @defaultValue 2 */
  int preRollFrames = 2;
  /**
   * Pause-first: voiced time of an onset over an interruptible prompt after
   * which the agent's audio is ducked (pauseDuckDb) or paused
   * (TurnOutput::pause) before the onset is confirmed as a barge-in; what the
   * caller hears as the agent yielding. The turn still needs minInterruptionMs
   * to barge in (take the turn); an onset that dies earlier resumes the prompt
   * (TurnOutput::resume) after pauseHoldMs of silence. One frame: a duck that
   * was wrong costs only level, and the caller hears the agent yield within
   * ~100 ms. 0 disables (yield only at barge-in).
   * @defaultValue 32
   */
  int pauseOnsetMs = 32;
  /**
   * Pause-first: silence after an abandoned onset before the ducked (or
   * paused) prompt comes back; as long as the endpointing silence, so a caller
   * who says "Hi," and goes on is not talked over at full level in between.
   * @defaultValue 700
   */
  int pauseHoldMs = 700;
  /**
   * Pause-first level cue: a frame also counts toward pauseOnsetMs when the
   * model gives it at least this probability (below the activation
   * threshold) and it is loud — pauseCueSnrDb above the line's noise floor
   * (the quietest frame of the last second) and at least kPauseCueMinDbfs.
   * This catches quiet or aspirated onsets ("wh-", "h-") that Silero only
   * believes once the vowel comes, 150-250 ms later. It only pauses: taking
   * the turn still needs minInterruptionMs of frames at the real thresholds,
   * and a cue that dies resumes the prompt after pauseHoldMs. Cue frames keep
   * a pause held for at most 1 s; a sound that keeps the cue up pauses the
   * prompt once per loud stretch. 0 disables.
   * @defaultValue 0.15
   */
  float pauseCueProb = 0.15f;
  /** Pause-first level cue: how far above the noise floor a frame must be. @defaultValue 20 */
  float pauseCueSnrDb = 20.0f;
  /**
   * Pause-first as a duck: at the pause cue (TurnOutput::pause) the prompt's
   * level is lowered by this many dB, ramped over kDuckRampMs, and it keeps
   * playing; at resume it ramps back up. Only a confirmed barge-in
   * (minInterruptionMs) stops it. A cue that was noise, a cough or a
   * backchannel then costs the caller a few hundred ms of a quieter agent
   * instead of a gap. 0 = the pause silences the prompt (queue kept, resumed
   * where it stopped). @defaultValue 15
   */
  float pauseDuckDb = 15.0f;
  /**
   * Endpointing is what the caller hears: the reply should start
   * endpointSilenceMs after they stopped talking, not that plus the receive
   * path's own delay. Up to this much of the measured pipeline delay (jitter
   * buffer + VAD hand-over + the model's tail, see setPipelineDelayMs) is taken
   * off the silence counted in frames — never more than half of it. 0 = off
   * (count the full silence in media time).
   * @defaultValue 160
   */
  int latencyCompensationMs = 160;
};

/** Ramp of a pause-first duck (down and back up), ms: short enough to be heard as the agent yielding, long enough not to click. */
constexpr int kDuckRampMs = 5;

/** Pause-first level cue: frames quieter than this never count (residual line echo sits well below). */
constexpr float kPauseCueMinDbfs = -50.0f;
/** Level of a frame with no signal (digital silence), dBFS. */
constexpr float kSilenceDbfs = -100.0f;

/** Mean-square level of n float samples in [-1, 1), dBFS (kSilenceDbfs for digital silence). */
/** Level (dBFS, floored at kSilenceDbfs) of `n` samples whose squares (full scale 1.0) sum to `e`. */
float energyDbfs(double e, size_t n);
float levelDbfs(const float* x, size_t n);

/** Levels of one VAD frame (its 512 new samples): the whole frame and four 8 ms sub-blocks, dBFS. */
struct FrameLevels {
  float frameDb = kSilenceDbfs;
  float subDb[4] = {kSilenceDbfs, kSilenceDbfs, kSilenceDbfs, kSilenceDbfs};
};
/**
 * Levels of the `n` new samples at `frame` (e.g. FrameCutter::window() + contextSize(); n =
 * kVadFrame at 16 kHz, kVadFrame8 at 8 kHz: four 8 ms sub-blocks either way).
 */
FrameLevels measureLevels(const float* frame, size_t n = kVadFrame);

// End-of-speech refinement. Silero stays above its threshold for 1-4 frames
// (30-130 ms) past the last sound of an utterance, by a different amount for
// every word. When levels are known, endpointing counts the silence from the
// last 8 ms sub-block that was sound (kSoundOverFloorDb above the noise floor
// and at least kSoundMinDbfs) instead of from Silero's last voiced frame, so
// the reply comes endpointSilenceMs after the caller's last sound, not that
// plus the model's tail. Only when the model's last voiced frame is within
// kMaxModelTailFrames of that sound: a quiet speaker Silero hears for longer
// (below the sound threshold) is endpointed from Silero's frames as before.
constexpr float kSoundOverFloorDb = 12.0f;
constexpr float kSoundMinDbfs = -60.0f;
constexpr int kMaxModelTailFrames = 6;
/** Silero's typical tail past the last sound (p50 on the flite corpus), compensated on the live path when levels are unknown. */
constexpr int kModelTailMs = 40;

/** Validate tunables; returns nullptr when fine, else a static message. */
const char* validateTunables(const TurnTunables& t);

/** Event bits in TurnOutput::events. Several can fire in one frame (SpeechStart|BargeIn). */
enum TurnEvent : uint32_t {
  kEvNone = 0,
  /** A caller turn started; TurnOutput::startFrame is its first frame (incl. pre-roll). */
  kEvSpeechStart = 1u << 0,
  /** The caller's turn is complete; startFrame..endFrame (inclusive) is the utterance. */
  kEvSpeechEnd = 1u << 1,
  /** Caller speech over an interruptible prompt passed the guards: flush outbound audio now. */
  kEvBargeIn = 1u << 2,
  /** The turn that barged in was too short: resume/repeat the interrupted sentence; no SpeechEnd follows. */
  kEvFalseInterruption = 1u << 3,
  /** A short sound over the agent's prompt was ignored (no turn, agent keeps talking). */
  kEvBackchannel = 1u << 4,
};

enum class TurnPhase : uint8_t { Idle, Onset, Speech, Trailing };

struct TurnOutput {
  uint32_t events = kEvNone;
  /** Frame index of the utterance start (valid with SpeechStart/SpeechEnd/BargeIn/FalseInterruption/Backchannel). */
  int64_t startFrame = -1;
  /** Frame index of the last voiced frame (valid with SpeechEnd/FalseInterruption/Backchannel). */
  int64_t endFrame = -1;
  /** Voiced time of the utterance so far, ms. */
  int voicedMs = 0;
  /** Pause-first: pause the agent's prompt now (queue kept); not an event bit. */
  bool pause = false;
  /** Pause-first: the onset that paused the prompt died (no barge-in): resume it now. */
  bool resume = false;
  /**
   * The turn that barged in is now long enough not to be a false interruption
   * (falseInterruptionMinSpeechMs of voiced time; at the barge-in itself when
   * that is 0 or shorter than minInterruptionMs). With the pause-first duck
   * (pauseDuckDb > 0) this, not BargeIn, stops the ducked prompt: a short
   * turn that barged in ("okay", "mm-hm") ends as FalseInterruption with the
   * prompt still playing, only quieter. Once per turn; not an event bit.
   */
  bool stop = false;
};

class TurnState {
 public:
  /** Tunables that fail validateTunables() are replaced by the defaults. */
  explicit TurnState(const TurnTunables& t = TurnTunables());

  /** Change tunables (takes effect from the next frame); false (unchanged) when invalid. */
  bool setTunables(const TurnTunables& t);
  const TurnTunables& tunables() const { return t_; }

  /**
   * The STT layer calls this on every partial: true while the partial
   * transcript ends in digits (PO, phone, account numbers), so endpointing
   * waits digitsEndpointSilenceMs instead of endpointSilenceMs. Cleared
   * automatically when the turn ends.
   */
  void setDigitsPending(bool on) { digits_ = on; }

  /**
   * The receive path's current delay between the caller's audio and this
   * state machine's decisions (ms): jitter-buffer delay + VAD hand-over + the
   * model's tail. Endpointing subtracts it (bounded by latencyCompensationMs
   * and half the silence) so the caller-perceived silence is the configured one.
   */
  void setPipelineDelayMs(int ms) { pipelineMs_ = ms < 0 ? 0 : ms; }
  bool digitsPending() const { return digits_; }

  /**
   * Feed one 32 ms frame. `agentSpeaking`: outbound agent audio is playing
   * now; `uninterruptible`: the playing prompt must not be barged into;
   * `levels`: the frame's levels (measureLevels of its 512 new samples) for
   * the noise floor, the pause-first level cue and the end-of-speech
   * refinement; nullptr when unknown (cue and refinement off).
   * Returns the events this frame produced.
   */
  TurnOutput push(float prob, bool agentSpeaking, bool uninterruptible, const FrameLevels* levels = nullptr);
  /** The line's noise floor: the quietest of the last 32 non-speech frames (kSilenceDbfs before any). */
  float noiseFloorDb() const;

  /**
   * Endpoint timer (the media thread decides between frames): while a turn is
   * trailing and its end of sound is known to the sub-block, the silence (ms)
   * still needed after the end of the last pushed frame, the pipeline delay of
   * that push already counted; -1 otherwise (no refined endpoint pending).
   */
  int endpointRemainingMs() const;
  /** What an 8 ms sub-block must reach to count as sound (noise floor + kSoundOverFloorDb, ≥ kSoundMinDbfs). */
  float soundThresholdDb() const;
  /** The endpoint timer expired with no sound since the last frame: end the turn now (empty output unless trailing). */
  TurnOutput endNow();
  /**
   * Exact endpoint: the refined rule fires only once the whole silence has
   * passed (no rounding to the nearest frame); set when a timer decides the
   * instants between frames.
   */
  void setExactEndpoint(bool on) { exact_ = on; }

  /** Back to Idle, frame counter kept (e.g. after a hold or a transfer). */
  void reset();

  TurnPhase phase() const { return phase_; }
  /** Index the next pushed frame will get. */
  int64_t frameIndex() const { return frame_; }
  /** True once BargeIn fired for the current utterance. */
  bool bargedIn() const { return bargedIn_; }
  /** A pause-first pause is in effect (an onset paused the prompt; no barge-in yet). */
  bool pausedFirst() const { return paused_; }

 private:
  void recompute();
  TurnOutput finish(uint32_t ev);
  TurnOutput pushCore(float prob, bool agentSpeaking, bool uninterruptible, const FrameLevels* lv, float soundThr);

  TurnTunables t_;
  // Tunables in frames.
  int minSpeechF_ = 0, onsetGapF_ = 0, endpointF_ = 0, digitsEndpointF_ = 0, minInterruptF_ = 0, falseMinF_ = 0;
  int pauseF_ = 0, pauseHoldF_ = 0;
  bool paused_ = false;  // pause-first pause in effect, not (yet) a barge-in
  int resumeWait_ = 0;   // silent frames since the pausing onset died
  int cue_ = 0;          // consecutive frames that pass the level cue (or the activation threshold)
  bool cueSpent_ = false;  // this loud stretch already paused (and resumed) once
  int cueHeld_ = 0;        // frames a pause was held by the level cue alone (Idle phase)
  /** Longest a pause is held by level-cue frames alone (no frame at the activation threshold): 1 s. */
  static constexpr int kMaxCueHoldFrames = 32;
  void pauseStep(TurnOutput& out, bool interruptible, bool active, bool cue);
  // Noise floor: levels of the last kFloorFrames frames (ring).
  static constexpr int kFloorFrames = 32;
  float levels_[kFloorFrames];
  int levelPos_ = 0, levelCount_ = 0;
  bool levelCue(float prob, float levelDb, float floor);
  void noteLevels(float prob, float levelDb);
  // End-of-speech refinement (see kSoundOverFloorDb).
  bool haveSound_ = false;      // the utterance had a sub-block of sound
  int64_t lastSoundMs_ = 0;     // media time (frame index × 32 + sub-block end) of its last one
  int64_t lastSoundFrame_ = -1;
  void noteSound(int64_t f, const FrameLevels& lv, float thr);
  bool endpointReached(int64_t f) const;
  bool refinedEnd() const;
  int endpointTargetMs() const;  // silence still wanted after the last sound, compensation taken off
  bool exact_ = false;
  // Start of an onset abandoned as too short while the agent was silent, kept until heldUntil_.
  int64_t heldStart_ = -1, heldUntil_ = -1;

  TurnPhase phase_ = TurnPhase::Idle;
  int64_t frame_ = 0;
  int64_t startFrame_ = -1;
  int64_t lastVoiced_ = -1;
  int voiced_ = 0;   // voiced frames in the current utterance
  int silence_ = 0;  // consecutive silent frames
  bool digits_ = false;
  int pipelineMs_ = 0;
  int endpointFrames(bool digits) const;
  bool bargedIn_ = false;
  bool stopped_ = false;    // TurnOutput::stop fired for this turn
  int confirmF_ = 1;        // voiced frames of a barged-in turn at which it is confirmed (stop)
  void confirmStep(TurnOutput& out);
  bool overAgent_ = false;  // the onset overlapped interruptible agent speech
};

/** Milliseconds to whole VAD frames, rounded up (>= 0). */
int msToFrames(int ms);

}  // namespace vad
}  // namespace voice
