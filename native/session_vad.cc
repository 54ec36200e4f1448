// Session, part 2: the VAD glue (media thread only). The inbound audio of a
// session with SessionConfig::vad goes to VadState: from arrival through the
// read-ahead (G.711) or from the playout frames (Opus) into the utterance ring,
// the live sound check and the frame cutter; cut windows go into the engine's
// hand-over (VadTick), one per session per hand-over, the rest held back; the
// model's results come back through vadPush into the turn state machine, whose
// outputs pause, resume or drop the outbound queue (under mu_); the endpoint
// timer ends a turn between frames. The rest of Session is in session.cc.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "session.h"

namespace voice {

void Session::vadFeed(const int16_t* pcm8k, size_t n8, const int16_t* pcm16k, size_t n16, VadTick* vt) {
  VadState& v = *vad_;
  {
    // The utterance ring in at most two runs (no division per sample: this runs for every call's
    // every packet).
    const size_t cap = v.ring.size();
    const size_t take = std::min(n8, cap);
    const int16_t* src = pcm8k + (n8 - take);
    const size_t at = static_cast<size_t>((v.total + (n8 - take)) % cap);
    const size_t first = std::min(take, cap - at);
    std::memcpy(&v.ring[at], src, first * sizeof(int16_t));
    if (first < take) std::memcpy(&v.ring[0], src + first, (take - first) * sizeof(int16_t));
  }
  v.total += n8;
  // The model's input: the 8 kHz audio itself (model at 8 kHz), or 16 kHz — the playout's
  // (16 kHz sessions) or upsampled here.
  const int rate = v.cutter.rate();
  const int16_t* pm = pcm8k;
  size_t nm = n8;
  size_t filterDelay = 0;  // samples (model rate) the audio fed lags its arrival by a filter
  int16_t up[2 * kFrameSamples + 8];
  if (rate == 16000) {
    if (!pcm16k) {
      n16 = v.up.process(pcm8k, n8, up, sizeof up / sizeof up[0]);
      pcm16k = up;
    }
    pm = pcm16k;
    nm = n16;
    filterDelay = rxCodec_ == Codec::Opus ? 0 : v.up.delayOut();
  }
  const size_t W = v.cutter.windowSize(), F = v.cutter.frameSize(), C = v.cutter.contextSize();
  v.fedNs = v.tickNs;
  {
    // Live sound check per 8 ms sub-block of the stream (the blocks measureLevels sees), for the
    // endpoint timer: the newest audio is known before its window's result comes back.
    const float thr = v.turn.soundThresholdDb();
    const int sub = static_cast<int>(F / 4);
    for (size_t i = 0; i < nm; ++i) {
      const float x = pm[i] / 32768.0f;
      v.subAcc += x * x;
      if (++v.subN == sub) {
        const float db = vad::energyDbfs(v.subAcc, static_cast<size_t>(v.subN));
        v.fed16 += v.subN;
        if (db >= thr) v.soundEnd16 = v.fed16;
        v.subAcc = 0;
        v.subN = 0;
      }
    }
  }
  while (nm > 0) {
    const size_t k = v.cutter.write(pm, nm);
    pm += k;
    nm -= k;
    if (v.cutter.ready()) {
      if (vt) {
        const float* w = v.cutter.window();
        VadState::WindowInfo& wi = v.info[v.cut++ % VadState::kInfoSlots];
        wi.levels = vad::measureLevels(w + C, F);
        // The window's last sample came in a chunk that carried nm more after it (packetization):
        // it was there that much before the chunk arrived; and an 8 → 16 kHz filter (ours, or
        // the playout's for G.711) delays what comes out by its group delay (4 ms).
        const size_t late = nm + filterDelay;
        wi.cutNs = v.tickNs - static_cast<int64_t>(late) * 1'000'000'000LL / rate;
        wi.jbMs = v.aheadActive ? 0.f : static_cast<float>(std::max(0.0, playout_.jitterBuffer().stats().bufferDelayMs));
        if (v.lastSeq < vt->seq && v.heldCount == 0) {
          v.lastSeq = vt->seq;  // this hand-over's window of this session
          vt->ids.push_back(id);
          vt->windows.insert(vt->windows.end(), w, w + W);
        } else if (v.heldCount < VadState::kHeld) {
          // Already one here (or older ones waiting): held back, in order, for the next hand-overs.
          std::memcpy(v.held[(v.heldHead + v.heldCount) % VadState::kHeld], w, sizeof(float) * W);
          ++v.heldCount;
          if (!v.lagging) {
            v.lagging = true;
            vt->lagging.push_back(id);
          }
        } else {
          // Far behind (a long stall of the media thread): flush the oldest held window into this
          // hand-over as an extra run, keeping the order; nothing is lost.
          v.lastSeq = vt->seq;
          const float* o = v.held[v.heldHead];
          vt->ids.push_back(id);
          vt->windows.insert(vt->windows.end(), o, o + W);
          std::memcpy(v.held[v.heldHead], w, sizeof(float) * W);
          v.heldHead = (v.heldHead + 1) % VadState::kHeld;
        }
      }
      v.cutter.next();
    }
  }
}

bool Session::vadTopUp(VadTick* vt) {
  if (!vad_) return false;
  VadState& v = *vad_;
  int give = v.lastSeq < vt->seq ? 1 : 0;     // not in this hand-over yet: its oldest goes now
  if (v.heldCount - give >= 2) ++give;        // still two or more behind: catch up by one more
  if (give > v.heldCount) give = v.heldCount;
  const size_t W = v.cutter.windowSize();
  for (int k = 0; k < give; ++k) {
    const float* w = v.held[v.heldHead];
    vt->ids.push_back(id);
    vt->windows.insert(vt->windows.end(), w, w + W);
    v.heldHead = (v.heldHead + 1) % VadState::kHeld;
    --v.heldCount;
  }
  if (give > 0) v.lastSeq = vt->seq;
  v.lagging = v.heldCount > 0;
  return v.lagging;
}

vad::TurnOutput Session::vadPush(float prob) {
  VadState& v = *vad_;
  bool agent = false, unint = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (tunablesDirty_) {
      v.turn.setTunables(pendingTunables_);
      tunablesDirty_ = false;
    }
    agent = playing_ && sendEnabled_;
    unint = deqTotal_ < unintEnd_;
  }
  v.turn.setDigitsPending(digitsPending_.load(std::memory_order_relaxed));
  // The n-th result belongs to the n-th window cut (hand-overs and runs keep the order).
  const uint64_t n = v.answered++;
  const bool haveInfo = n < v.cut && v.cut - n <= VadState::kInfoSlots;
  const VadState::WindowInfo* wi = haveInfo ? &v.info[n % VadState::kInfoSlots] : nullptr;
  {
    // Receive-path delay for endpointing (TurnTunables::latencyCompensationMs): what the window's
    // last sample waited in the jitter buffer (playout-fed windows only) + from its arrival or
    // playout to this result (hand-over, held back, model run). TurnState adds Silero's tail
    // when it has no levels to measure the end of sound.
    double total = 0;
    if (wi) {
      const int64_t now = monoNs();
      const double sinceMs = wi->cutNs > 0 && now > wi->cutNs ? (now - wi->cutNs) / 1e6 : 0.0;
      total = wi->jbMs + (sinceMs < 500 ? sinceMs : 0);
    }
    v.turn.setPipelineDelayMs(static_cast<int>(total));
  }
  // Fed from arrival, the audio after the last result is seen as it comes: an endpoint timer
  // decides between frames, and the frames only once the whole silence has passed.
  v.turn.setExactEndpoint(v.aheadActive);
  vad::TurnOutput o = v.turn.push(prob, agent, unint, wi ? &wi->levels : nullptr);
  vadSettle(o);
  vadApply(o);
  if (o.events & vad::kEvSpeechEnd) v.turnEndAt = v.answered * v.cutter.frameSize();  // end of the deciding frame
  v.endpointAtNs = 0;
  if (v.aheadActive && wi) {
    const int rest = v.turn.endpointRemainingMs();
    if (rest > 0) {
      v.endpointAtNs = monoNs() + static_cast<int64_t>(rest) * 1'000'000;
      v.timerFrom16 = v.answered * v.cutter.frameSize();  // stream position the last result reaches
      v.timerAt16 = v.timerFrom16 + static_cast<uint64_t>(rest) * v.cutter.rate() / 1000;  // and where the silence is whole
    }
  }
  return o;
}

void Session::vadApply(const vad::TurnOutput& o) {
  if (o.events & (vad::kEvBargeIn | vad::kEvSpeechEnd | vad::kEvFalseInterruption) || o.pause || o.resume || o.stop) {
    // With the pause-first duck (pauseDuckDb > 0) the prompt is lowered at the onset and at the
    // barge-in, and stopped only once the barged-in turn is confirmed (TurnOutput::stop); with
    // pauseDuckDb 0 it is silenced at the onset and at the barge-in.
    const float duckDb = vad_->turn.tunables().pauseDuckDb;
    std::lock_guard<std::mutex> lk(mu_);
    if (o.pause) {
      if (duckDb > 0) vadDuckDb_ = duckDb;
      else vadPaused_ = true;  // stop the agent at the onset; a barge-in or a resume follows
    } else if (o.resume) {
      vadPaused_ = false;  // the onset died (backchannel, cough): the prompt goes on (where it stopped)
      vadDuckDb_ = 0;
    }
    if (o.events & vad::kEvBargeIn) {
      if (duckDb > 0) vadDuckDb_ = duckDb;
      else vadPaused_ = true;  // stop the agent now; the queue waits for the turn's outcome
    }
    if (o.stop && duckDb > 0) vadPaused_ = true;  // a confirmed interruption: the queue waits for the turn's end
    if (o.events & vad::kEvFalseInterruption) {
      vadPaused_ = false;  // resume where it stopped (or at full level)
      vadDuckDb_ = 0;
    } else if ((o.events & vad::kEvSpeechEnd) && vadPaused_) {
      // A real turn barged in: the rest of the interrupted prompt is obsolete.
      head_ = 0;
      size_ = 0;
      playing_ = false;
      deqTotal_ = enqTotal_;
      vadPaused_ = false;
    }
    if (o.events & vad::kEvSpeechEnd) vadDuckDb_ = 0;
  }
  if (o.events & (vad::kEvSpeechEnd | vad::kEvFalseInterruption)) digitsPending_.store(false, std::memory_order_relaxed);
}

vad::TurnOutput Session::vadEndpointDue(int64_t nowNs) {
  if (!vad_) return vad::TurnOutput();
  VadState& v = *vad_;
  if (v.endpointAtNs == 0 || nowNs < v.endpointAtNs) return vad::TurnOutput();
  if (v.soundEnd16 > v.timerFrom16 || !v.aheadActive) {
    v.endpointAtNs = 0;  // sound after the last result (or the feed changed): the frames decide
    return vad::TurnOutput();
  }
  if (nowNs - v.fedNs > kEndpointFeedGapNs) {
    // Nothing fed lately (packets late): the silence up to now is not seen yet; look again soon.
    v.endpointAtNs = nowNs + kEndpointRecheckNs;
    return vad::TurnOutput();
  }
  v.endpointAtNs = 0;
  vad::TurnOutput o = v.turn.endNow();
  vadSettle(o);
  vadApply(o);
  if (o.events & vad::kEvSpeechEnd) v.turnEndAt = v.timerAt16;  // the stream instant the timer stood for
  return o;
}

void Session::vadSettle(vad::TurnOutput& o) {
  if (!(o.events & vad::kEvFalseInterruption)) return;
  std::lock_guard<std::mutex> lk(mu_);
  // A short turn over the agent is a false interruption only if there is a prompt to go back
  // to; with the queue empty (the prompt ended meanwhile) the caller's words are a turn.
  if (size_ == 0) o.events = (o.events & ~vad::kEvFalseInterruption) | vad::kEvSpeechEnd;
}

size_t Session::copyUtterance(int64_t startFrame, int64_t endFrame, std::vector<int16_t>& dst) const {
  if (!vad_ || startFrame < 0 || endFrame < startFrame) return 0;
  const VadState& v = *vad_;
  const uint64_t cap = v.ring.size();
  uint64_t from = static_cast<uint64_t>(startFrame) * kVadFrame8k;
  const uint64_t extra = preRoll8k_.load(std::memory_order_relaxed);
  from = from > extra ? from - extra : 0;  // the extra pre-roll (setUtterancePreRoll)
  uint64_t to = static_cast<uint64_t>(endFrame + 2) * kVadFrame8k;  // last voiced frame + one frame post-roll
  to = std::min(to, v.total);
  if (v.total > cap) from = std::max(from, v.total - cap);
  if (from >= to) return 0;
  const size_t n = static_cast<size_t>(to - from);
  if (dst.size() < n) dst.resize(n);
  for (size_t i = 0; i < n; ++i) dst[i] = v.ring[(from + i) % cap];
  return n;
}

bool Session::vadAheadMode() {
  VadState& v = *vad_;
  // Read-ahead is on by default; VOICE_VAD_READAHEAD=0 feeds the VAD from the playout frames
  // instead (the jitter buffer's delay then adds to barge-in and endpointing).
  static const bool kAhead = [] {
    const char* e = std::getenv("VOICE_VAD_READAHEAD");
    return !(e && e[0] == '0');
  }();
  const bool g711 = kAhead && rxCodec_ != Codec::Opus;
  if (g711 != v.aheadActive) {
    v.ahead.reset();  // codec switch: the other feed takes over from here
    v.aheadActive = g711;
  }
  return g711;
}

void Session::aheadSink(void* ctx, const int16_t* pcm, size_t n) {
  Session* s = static_cast<Session*>(ctx);
  s->vadFeed(pcm, n, nullptr, 0, s->vad_->feedTick);
}

}  // namespace voice
