// Test driver for native/vad (not part of the addon). Built into
// build/vad-test/vad_test by ensureVadTool() in test/audio/pipeline.ts (used by
// test/unit/vad-native.test.ts and the VAD tests/benches) with
// g++ -std=c++17 -Wall -Wextra -Werror -Inative/vad.
//
//   vad_test selftest             unit tests of FrameCutter, ReadAhead and TurnState; prints
//                                 "ok N name" / "not ok N name", exit 1 on failure
//   vad_test cut IN.s16 OUT.f32   cut 16 kHz s16le PCM into 576-float windows
//                                 (fed in odd-sized chunks, like RTP datagrams)
//   vad_test turn [key=value...]  stdin: one frame per line "prob agent uninterruptible digits"
//                                 (agent/uninterruptible/digits are 0/1); stdout: one line per
//                                 frame "events startFrame endFrame voicedMs phase pause resume stop"
//                                 keys: the TurnTunables field names
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../native/duck.h"
#include "frame_cutter.h"
#include "read_ahead.h"
#include "turn_state.h"

using namespace voice::vad;

namespace {

int gTest = 0, gFailed = 0;
void check(bool ok, const std::string& name) {
  ++gTest;
  if (!ok) ++gFailed;
  std::printf("%s %d %s\n", ok ? "ok" : "not ok", gTest, name.c_str());
}

// Feed `n` samples in chunks of `chunk`, collect every window.
std::vector<std::vector<float>> cutAll(FrameCutter& c, const std::vector<int16_t>& pcm, size_t chunk) {
  std::vector<std::vector<float>> out;
  size_t off = 0;
  while (off < pcm.size()) {
    size_t len = std::min(chunk, pcm.size() - off);
    const int16_t* p = pcm.data() + off;
    size_t n = len;
    while (n > 0) {
      size_t k = c.write(p, n);
      p += k;
      n -= k;
      if (c.ready()) {
        out.emplace_back(c.window(), c.window() + kVadWindow);
        c.next();
      }
    }
    off += len;
  }
  return out;
}

void testCutter() {
  std::vector<int16_t> pcm(512 * 5 + 100);
  for (size_t i = 0; i < pcm.size(); i++) pcm[i] = static_cast<int16_t>((i * 37) % 65536 - 32768);
  for (size_t chunk : {size_t(1), size_t(160), size_t(320), size_t(511), size_t(512), size_t(513), size_t(4000)}) {
    FrameCutter c;
    auto w = cutAll(c, pcm, chunk);
    bool ok = w.size() == 5 && c.pending() == 100 && c.frames() == 5;
    for (size_t k = 0; ok && k < w.size(); k++) {
      for (size_t i = 0; i < kVadWindow; i++) {
        long src = static_cast<long>(k * kVadFrame + i) - static_cast<long>(kVadContext);
        float want = src < 0 ? 0.0f : static_cast<float>(pcm[static_cast<size_t>(src)]) / 32768.0f;
        if (w[k][i] != want) { ok = false; break; }
      }
    }
    check(ok, "cutter: 5 windows with 64-sample context, chunk=" + std::to_string(chunk));
  }
  FrameCutter c;
  int16_t x[600];
  for (auto& v : x) v = 1000;
  size_t k = c.write(x, 600);
  check(k == 512 && c.ready(), "cutter: write stops at a full window");
  check(c.write(x, 10) == 0, "cutter: no input accepted while a window waits");
  c.next();
  check(!c.ready() && c.window()[0] == 1000.0f / 32768.0f, "cutter: context carried after next()");
  c.reset();
  check(c.pending() == 0 && c.window()[0] == 0.0f && c.frames() == 0, "cutter: reset zeroes context");
  check(c.write(nullptr, 5) == 0 && c.write(x, 0) == 0, "cutter: null/empty input");
  int16_t ext[2] = {-32768, 32767};
  c.write(ext, 2);
  check(c.window()[kVadContext] == -1.0f && c.window()[kVadContext + 1] < 1.0f, "cutter: scaling to [-1, 1)");
}

struct Run {
  std::vector<TurnOutput> outs;
  uint32_t all = 0;
  int first(uint32_t ev) const {
    for (size_t i = 0; i < outs.size(); i++)
      if (outs[i].events & ev) return static_cast<int>(i);
    return -1;
  }
  int count(uint32_t ev) const {
    int n = 0;
    for (auto& o : outs) n += (o.events & ev) ? 1 : 0;
    return n;
  }
};

// Frames of speech (prob p) or silence, with agent/uninterruptible flags.
struct Seg {
  int frames;
  float prob;
  bool agent = false;
  bool unint = false;
};

Run drive(TurnState& s, const std::vector<Seg>& segs) {
  Run r;
  for (auto& g : segs)
    for (int i = 0; i < g.frames; i++) {
      r.outs.push_back(s.push(g.prob, g.agent, g.unint));
      r.all |= r.outs.back().events;
    }
  return r;
}

void testTurn() {
  const TurnTunables d;
  check(validateTunables(d) == nullptr, "turn: defaults are valid");
  check(msToFrames(250) == 8 && msToFrames(700) == 22 && msToFrames(300) == 10 && msToFrames(1500) == 47,
        "turn: ms to frames rounds up");
  {
    TurnState s;
    Run r = drive(s, {{10, 0.02f}, {40, 0.9f}, {30, 0.05f}});
    // onset at frame 10, SpeechStart when 4 voiced frames (128 ms) → frame 13; end after 22 silent frames → 50+21=71
    check(r.first(kEvSpeechStart) == 13 && r.count(kEvSpeechStart) == 1, "turn: speech start after minSpeechMs");
    check(r.first(kEvSpeechEnd) == 71 && r.count(kEvSpeechEnd) == 1, "turn: speech end after endpointSilenceMs");
    auto& e = r.outs[71];
    check(e.startFrame == 8 && e.endFrame == 49 && e.voicedMs == 40 * 32, "turn: utterance bounds incl. pre-roll");
    check(!(r.all & (kEvBargeIn | kEvFalseInterruption | kEvBackchannel)), "turn: no barge-in while agent silent");
  }
  {
    // receive-path delay 100 ms (+ Silero's 40 ms tail, no levels): endpointing counts 560 ms of
    // frames (18, nearest) instead of 700 (22)
    TurnState s;
    s.setPipelineDelayMs(100);
    Run r = drive(s, {{10, 0.02f}, {40, 0.9f}, {30, 0.05f}});
    check(r.first(kEvSpeechEnd) == 67, "turn: endpointing takes the pipeline delay off the silence");
    TurnState big;
    big.setPipelineDelayMs(900);  // capped at latencyCompensationMs (160): 540 ms → 17 frames (nearest)
    Run rb = drive(big, {{10, 0.02f}, {40, 0.9f}, {30, 0.05f}});
    check(rb.first(kEvSpeechEnd) == 66, "turn: compensation capped at latencyCompensationMs");
    TurnTunables off;
    off.latencyCompensationMs = 0;
    TurnState so(off);
    so.setPipelineDelayMs(100);
    Run ro = drive(so, {{10, 0.02f}, {40, 0.9f}, {30, 0.05f}});
    check(ro.first(kEvSpeechEnd) == 71, "turn: latencyCompensationMs=0 counts the full silence");
  }
  {
    TurnState s;
    Run r = drive(s, {{3, 0.9f}, {10, 0.05f}});
    check(r.all == kEvNone && s.phase() == TurnPhase::Idle, "turn: 96 ms blip is not a turn");
    // A short answer ("No." in noise: 4-5 voiced frames) with the agent silent is a turn.
    TurnState w;
    Run rw = drive(w, {{10, 0.02f}, {2, 0.3f}, {4, 0.6f}, {2, 0.3f}, {30, 0.02f}});
    check(rw.count(kEvSpeechStart) == 1 && rw.count(kEvSpeechEnd) == 1, "turn: a 128 ms word with the agent silent is a turn");
    TurnTunables old;
    old.minSpeechMs = 250;
    TurnState wo(old);
    Run ro = drive(wo, {{10, 0.02f}, {2, 0.3f}, {4, 0.6f}, {2, 0.3f}, {30, 0.02f}});
    check(ro.all == kEvNone, "turn: ... and is not with minSpeechMs 250");
  }
  {
    // Hysteresis: dips to 0.4 (>= 0.35) keep the turn alive; single frame drops below 0.35 don't end it.
    TurnState s;
    std::vector<Seg> segs{{10, 0.9f}};
    for (int i = 0; i < 10; i++) { segs.push_back({3, 0.4f}); segs.push_back({1, 0.1f}); segs.push_back({2, 0.8f}); }
    segs.push_back({30, 0.0f});
    Run r = drive(s, segs);
    check(r.count(kEvSpeechStart) == 1 && r.count(kEvSpeechEnd) == 1, "turn: hysteresis keeps one turn");
  }
  {
    // Activation needs 0.5: 0.45 alone never starts anything.
    TurnState s;
    Run r = drive(s, {{50, 0.45f}});
    check(r.all == kEvNone, "turn: probability under activation threshold never starts a turn");
  }
  {
    // Barge-in over an interruptible prompt after minInterruptionMs (10 frames).
    TurnState s;
    Run r = drive(s, {{5, 0.0f, true}, {40, 0.9f, true}, {30, 0.0f, false}});
    int b = r.first(kEvBargeIn);
    check(b == 14 && (r.outs[b].events & kEvSpeechStart) && r.count(kEvBargeIn) == 1,
          "turn: barge-in + speech start together after minInterruptionMs");
    check(r.count(kEvSpeechEnd) == 1 && r.count(kEvFalseInterruption) == 0, "turn: long barge-in ends as a turn");
  }
  {
    // Backchannel: 9 voiced frames (288 ms) over the agent: no barge-in, Backchannel reported.
    TurnState s;
    Run r = drive(s, {{5, 0.0f, true}, {9, 0.9f, true}, {20, 0.0f, true}});
    check(r.count(kEvBargeIn) == 0 && r.count(kEvSpeechStart) == 0 && r.count(kEvBackchannel) == 1,
          "turn: backchannel shorter than minInterruptionMs does not barge in");
  }
  {
    // Same 9 frames with the agent silent: that is a turn (minSpeech 8 frames).
    TurnState s;
    Run r = drive(s, {{9, 0.9f}, {30, 0.0f}});
    check(r.count(kEvSpeechStart) == 1 && r.count(kEvSpeechEnd) == 1, "turn: same sound with agent silent is a turn");
  }
  {
    // Uninterruptible prompt: never barge in; turn tracked normally.
    TurnState s;
    Run r = drive(s, {{40, 0.9f, true, true}, {30, 0.0f, true, true}});
    check(r.count(kEvBargeIn) == 0 && r.count(kEvSpeechStart) == 1 && r.count(kEvSpeechEnd) == 1,
          "turn: uninterruptible prompt never barges in");
  }
  {
    // False interruption: 12 voiced frames (384 ms < 500 ms) over the agent → barge-in, then FalseInterruption.
    TurnState s;
    Run r = drive(s, {{12, 0.9f, true}, {30, 0.0f, false}});
    check(r.count(kEvBargeIn) == 1 && r.count(kEvFalseInterruption) == 1 && r.count(kEvSpeechEnd) == 0,
          "turn: short barge-in ends as false interruption");
    TurnTunables t;
    t.falseInterruptionMinSpeechMs = 0;
    TurnState s2(t);
    Run r2 = drive(s2, {{12, 0.9f, true}, {30, 0.0f, false}});
    check(r2.count(kEvFalseInterruption) == 0 && r2.count(kEvSpeechEnd) == 1, "turn: falseInterruptionMinSpeechMs=0 disables it");
  }
  {
    // Pause-first: a 4-frame sound over the agent pauses at its first frame (32 ms), dies as a
    // backchannel (onsetMaxGapMs = 3 frames later) and resumes after pauseHoldMs (22 frames) of silence.
    TurnState s;
    int pauseAt = -1, resumeAt = -1, i = 0;
    Run r;
    for (const Seg& g : std::vector<Seg>{{4, 0.9f, true}, {40, 0.0f, true}})
      for (int k = 0; k < g.frames; ++k, ++i) {
        const TurnOutput o = s.push(g.prob, g.agent, g.unint);
        r.all |= o.events;
        r.outs.push_back(o);
        if (o.pause) pauseAt = i;
        if (o.resume) resumeAt = i;
      }
    check(pauseAt == 0 && r.count(kEvBargeIn) == 0 && r.count(kEvBackchannel) == 1, "turn: pause-first pauses a short onset, no barge-in");
    check(resumeAt == r.first(kEvBackchannel) + 22, "turn: pause-first resumes after pauseHoldMs of silence");
    // A real interruption: pause at 96 ms, then the barge-in takes over (no resume).
    TurnState s2;
    bool resumed = false, paused = false;
    for (int k = 0; k < 40; ++k) {
      const TurnOutput o = s2.push(k < 15 ? 0.9f : 0.0f, true, false);
      paused |= o.pause;
      resumed |= o.resume;
    }
    check(paused && !resumed && !s2.pausedFirst(), "turn: pause-first then barge-in never resumes");
    // Uninterruptible prompts and pauseOnsetMs = 0: no pause.
    TurnState s3;
    TurnTunables t0;
    t0.pauseOnsetMs = 0;
    TurnState s4(t0);
    bool p3 = false, p4 = false;
    for (int k = 0; k < 6; ++k) {
      p3 |= s3.push(0.9f, true, true).pause;
      p4 |= s4.push(0.9f, true, false).pause;
    }
    check(!p3 && !p4, "turn: no pause over an uninterruptible prompt or with pauseOnsetMs=0");
  }
  {
    // Agent starts talking over a turn already in progress → barge-in once.
    TurnState s;
    Run r = drive(s, {{20, 0.9f}, {10, 0.9f, true}, {30, 0.0f, true}});
    check(r.first(kEvBargeIn) == 20 && r.count(kEvBargeIn) == 1, "turn: agent talking over an ongoing turn is flushed");
  }
  {
    // Digits: a 1 s pause ends a turn normally, but not with digits pending; 1.6 s does.
    TurnState s;
    Run r1 = drive(s, {{20, 0.9f}, {32, 0.0f}});
    check(r1.count(kEvSpeechEnd) == 1, "turn: 1 s pause ends the turn without digits");
    TurnState s2;
    Run a = drive(s2, {{20, 0.9f}});
    s2.setDigitsPending(true);
    Run b = drive(s2, {{32, 0.0f}, {20, 0.9f}, {32, 0.0f}});
    check(a.count(kEvSpeechEnd) + b.count(kEvSpeechEnd) == 0, "turn: digits pending extends endpointing past 1 s pauses");
    Run c = drive(s2, {{20, 0.0f}});
    check(c.count(kEvSpeechEnd) == 1 && !s2.digitsPending(), "turn: digits endpoint fires at 1.5 s and clears the flag");
  }
  {
    TurnTunables bad;
    bad.deactivationThreshold = 0.8f;
    check(validateTunables(bad) != nullptr, "turn: deactivation above activation is rejected");
    TurnState s;
    check(!s.setTunables(bad) && s.tunables().deactivationThreshold == 0.35f, "turn: invalid tunables leave state unchanged");
    bad = TurnTunables();
    bad.digitsEndpointSilenceMs = 100;
    check(validateTunables(bad) != nullptr, "turn: digits endpoint shorter than endpoint is rejected");
    TurnState s2(bad);
    check(s2.tunables().digitsEndpointSilenceMs == 1500, "turn: constructor falls back to defaults");
  }
  {
    TurnState s;
    Run r = drive(s, {{30, std::nanf("")}});
    check(r.all == kEvNone, "turn: NaN probability counts as silence");
    drive(s, {{20, 0.9f}});
    s.reset();
    check(s.phase() == TurnPhase::Idle && s.frameIndex() == 50, "turn: reset keeps the frame counter");
  }
}

// ---- ReadAhead ----
struct Collected {
  std::vector<int16_t> pcm;
  size_t maxChunk = 0;
  static void sink(void* ctx, const int16_t* p, size_t n) {
    auto* c = static_cast<Collected*>(ctx);
    c->pcm.insert(c->pcm.end(), p, p + n);
    if (n > c->maxChunk) c->maxChunk = n;
  }
};

// 20 ms packet k: 160 samples all equal to k + 1 (so order and gaps are visible).
std::vector<int16_t> packet(int k) { return std::vector<int16_t>(160, static_cast<int16_t>(k + 1)); }

void testReadAhead() {
  const int64_t ms = 1'000'000;
  const uint32_t ts0 = 0xFFFFFF00u;  // wraps during the test
  {
    // In order: emitted on arrival, untouched.
    ReadAhead ra;
    Collected c;
    for (int k = 0; k < 5; ++k) ra.onPacket(ts0 + 160u * k, packet(k).data(), 160, 1000 * ms + k * 20 * ms, &Collected::sink, &c);
    bool ok = c.pcm.size() == 800;
    for (int k = 0; k < 5 && ok; ++k) ok = c.pcm[k * 160] == k + 1 && c.pcm[k * 160 + 159] == k + 1;
    check(ok && c.maxChunk <= ReadAhead::kChunk, "read-ahead: in-order packets are emitted at once, in order (ts wrap)");
  }
  {
    // Reordered 0 2 1 3: 2 waits in the stash until 1 arrives; nothing concealed.
    ReadAhead ra;
    Collected c;
    const int order[] = {0, 2, 1, 3};
    int64_t t = 1000 * ms;
    for (int k : order) {
      ra.onPacket(ts0 + 160u * k, packet(k).data(), 160, t, &Collected::sink, &c);
      t += 10 * ms;
      ra.onTick(t, &Collected::sink, &c);
    }
    bool ok = c.pcm.size() == 640 && ra.stats().concealedSamples == 0 && ra.stats().reordered == 1;
    for (int k = 0; k < 4 && ok; ++k) ok = c.pcm[k * 160 + 80] == k + 1;
    check(ok, "read-ahead: a reordered packet is put back in order without concealment");
  }
  {
    // Lost packet 1: after reorderMs the gap is concealed (last frame at half level), 2 follows; a late 1 is dropped.
    ReadAhead ra;
    Collected c;
    ra.onPacket(ts0, packet(0).data(), 160, 1000 * ms, &Collected::sink, &c);
    ra.onPacket(ts0 + 320, packet(2).data(), 160, 1040 * ms, &Collected::sink, &c);
    const size_t before = c.pcm.size();
    ra.onTick(1060 * ms, &Collected::sink, &c);
    ra.onTick(1081 * ms, &Collected::sink, &c);
    ra.onPacket(ts0 + 160, packet(1).data(), 160, 1090 * ms, &Collected::sink, &c);
    check(before == 160 && c.pcm.size() == 480 && c.pcm[160] == 0 /* 1/2 rounds to 0 */ && c.pcm[320] == 3 &&
              ra.stats().concealedSamples == 160 && ra.stats().late == 1,
          "read-ahead: a lost packet is concealed after reorderMs and its late copy dropped");
  }
  {
    // A stalled stream: silence at the wall-clock rate after stallMs; a sender that resumes where it
    // stopped is emitted after the fill, one whose clock moved on gets only the uncovered part.
    ReadAhead ra;
    Collected c;
    ra.onPacket(ts0, packet(0).data(), 160, 1000 * ms, &Collected::sink, &c);
    for (int64_t t = 1020; t <= 1200; t += 20) ra.onTick(t * ms, &Collected::sink, &c);
    // stall fill starts once 60 + 20 ms passed: ticks 1080..1200 → 7 frames
    const size_t filled = c.pcm.size() - 160;
    ra.onPacket(ts0 + 160, packet(1).data(), 160, 1210 * ms, &Collected::sink, &c);
    const bool resumed = c.pcm.size() == 160 + filled + 160 && c.pcm.back() == 2;
    for (int64_t t = 1230; t <= 1400; t += 20) ra.onTick(t * ms, &Collected::sink, &c);
    const size_t filled2 = c.pcm.size() - (320 + filled);
    // silence suppression: the sender skips 400 ms of timestamps (more than the fill covered)
    ra.onPacket(ts0 + 320 + 3200, packet(9).data(), 160, 1420 * ms, &Collected::sink, &c);
    const size_t extra = c.pcm.size() - (320 + filled + filled2) - 160;
    check(filled == 7 * 160 && resumed && extra == 3200 - filled2 && c.pcm.back() == 10,
          "read-ahead: stalls are filled at the wall-clock rate and not emitted twice");
  }
  {
    // A new source (timestamp jump beyond jumpMs) re-anchors instead of emitting seconds of silence.
    ReadAhead ra;
    Collected c;
    ra.onPacket(1000, packet(0).data(), 160, 1000 * ms, &Collected::sink, &c);
    ra.onPacket(1000 + 8000 * 5, packet(1).data(), 160, 1020 * ms, &Collected::sink, &c);
    check(c.pcm.size() == 320 && ra.stats().reanchors == 1, "read-ahead: a timestamp jump re-anchors the stream");
  }
  {
    // Stash full: the oldest gap is concealed rather than dropping audio.
    ReadAhead ra;
    Collected c;
    ra.onPacket(0, packet(0).data(), 160, 1000 * ms, &Collected::sink, &c);
    for (int k = 2; k < 2 + ReadAhead::kStashSlots + 1; ++k) ra.onPacket(160u * k, packet(k).data(), 160, 1001 * ms, &Collected::sink, &c);
    check(c.pcm.size() >= 160u * (2 + ReadAhead::kStashSlots) && c.pcm.back() != 0, "read-ahead: a full stash conceals its oldest gap");
  }
}

// ---- TurnState level cue ----
FrameLevels flat(float db) {
  FrameLevels l;
  l.frameDb = db;
  for (float& x : l.subDb) x = db;
  return l;
}
TurnOutput pushAt(TurnState& s, float p, float db, bool agent = true) {
  const FrameLevels l = flat(db);
  return s.push(p, agent, false, &l);
}

void testLevelCue() {
  // Agent speaking; a quiet, aspirated onset: probabilities 0.2-0.45 (below activation) at -40 dBFS
  // over a -75 dBFS line, then the vowel 6 frames later.
  auto run = [](TurnTunables t, float onsetLevel) {
    TurnState s(t);
    int pauseAt = -1, bargeAt = -1, resumes = 0;
    int f = 0;
    auto push = [&](float p, float db) {
      TurnOutput o = pushAt(s, p, db);
      if (o.pause && pauseAt < 0) pauseAt = f;
      if (o.resume) ++resumes;
      if ((o.events & kEvBargeIn) && bargeAt < 0) bargeAt = f;
      ++f;
    };
    for (int i = 0; i < 40; ++i) push(0.01f, -75.0f);
    const float onset[] = {0.2f, 0.45f, 0.3f, 0.1f, 0.1f, 0.1f};
    for (float p : onset) push(p, onsetLevel);
    for (int i = 0; i < 20; ++i) push(0.95f, -20.0f);
    return std::vector<int>{pauseAt, bargeAt, resumes};
  };
  TurnTunables t;
  auto cued = run(t, -40.0f);
  // pauseOnsetMs 32: one cue frame is enough (the first, frame 40); without the cue the vowel (46)
  check(cued[0] == 40 && cued[1] > 46 && cued[2] == 0, "turn: the level cue pauses a quiet onset before Silero believes it");
  auto quiet = run(t, -60.0f);
  check(quiet[0] == 46, "turn: no level cue below -50 dBFS (residual echo level): pause at the vowel");
  TurnTunables off;
  off.pauseCueProb = 0.0f;
  auto disabled = run(off, -40.0f);
  check(disabled[0] == 46, "turn: pauseCueProb 0 disables the level cue");
  {
    // Stationary loud sound Silero half-believes (music): one pause, one resume, not a stutter.
    TurnState s(t);
    int pauses = 0, resumes = 0, turns = 0;
    for (int i = 0; i < 40; ++i) pushAt(s, 0.01f, -75.0f);
    for (int i = 0; i < 200; ++i) {
      TurnOutput o = pushAt(s, 0.25f, -30.0f);
      pauses += o.pause;
      resumes += o.resume;
      if (o.events & (kEvSpeechStart | kEvBargeIn)) ++turns;
    }
    check(pauses == 1 && resumes == 1 && turns == 0, "turn: a sound that keeps the level cue up pauses once, resumes, and never takes the turn");
    check(s.noiseFloorDb() == -30.0f, "turn: the noise floor follows a stationary sound within a second");
  }
  {
    // The cue needs the floor: the same level on a line whose floor is already that loud is no cue.
    TurnState s(t);
    int pauses = 0;
    for (int i = 0; i < 40; ++i) pushAt(s, 0.01f, -42.0f);
    for (int i = 0; i < 6; ++i) pauses += pushAt(s, 0.3f, -40.0f).pause;
    check(pauses == 0, "turn: no level cue without pauseCueSnrDb over the noise floor");
  }
  {
    // Unknown level (NaN): cue off, floor untouched.
    TurnState s(t);
    int pauses = 0;
    for (int i = 0; i < 6; ++i) pauses += s.push(0.3f, true, false).pause;
    check(pauses == 0 && s.noiseFloorDb() == kSilenceDbfs, "turn: no level → no cue");
  }
}

// ---- TurnState end-of-speech refinement ----
void testSoundEnd() {
  // A turn (agent silent): 20 frames of sound, then digital silence while Silero's tail stays
  // voiced for `tail` more frames. With levels, SpeechEnd comes endpointSilenceMs after the last
  // sound whatever the tail; without, the tail adds to it.
  auto endAfterSound = [](int tail, bool levels, int lastSub) {
    TurnTunables t;
    t.latencyCompensationMs = 0;
    TurnState s(t);
    for (int i = 0; i < 10; ++i) {
      const FrameLevels l = flat(-90.0f);
      s.push(0.01f, false, false, levels ? &l : nullptr);
    }
    int64_t soundEndMs = 0;
    for (int i = 0; i < 20; ++i) {
      FrameLevels l = flat(-25.0f);
      if (i == 19) for (int j = lastSub + 1; j < 4; ++j) l.subDb[j] = -90.0f;  // sound ends inside the frame
      soundEndMs = s.frameIndex() * kVadFrameMs + (i == 19 ? (lastSub + 1) * 8 : 32);
      s.push(0.95f, false, false, levels ? &l : nullptr);
    }
    for (int i = 0; i < 60; ++i) {
      const FrameLevels l = flat(-90.0f);
      const int64_t f = s.frameIndex();
      const TurnOutput o = s.push(i < tail ? 0.8f : 0.05f, false, false, levels ? &l : nullptr);
      if (o.events & kEvSpeechEnd) return static_cast<int>((f + 1) * kVadFrameMs - soundEndMs);
    }
    return -1;
  };
  const int a = endAfterSound(1, true, 3), b = endAfterSound(4, true, 3), c = endAfterSound(4, false, 3);
  check(a >= 684 && a <= 716 && b >= 684 && b <= 716, "turn: with levels the silence counts from the last sound (" +
        std::to_string(a) + ", " + std::to_string(b) + " ms for tails of 1 and 4 frames)");
  check(c >= 700 + 4 * 32, "turn: without levels Silero's tail adds to the silence (" + std::to_string(c) + " ms)");
  const int d = endAfterSound(2, true, 0);
  check(d >= 684 && d <= 716, "turn: the last sound is found to the 8 ms sub-block (" + std::to_string(d) + " ms)");
  // A quiet speaker: Silero voiced for 10 frames below the sound threshold → frames as before.
  const int e = endAfterSound(10, true, 3);
  check(e >= 700 + 10 * 32, "turn: a long model tail (quiet speech) is endpointed from Silero's frames (" + std::to_string(e) + " ms)");
}

void testEndpointTimer() {
  // Exact endpoint with a timer: the frames fire only once the whole silence has passed, and
  // endpointRemainingMs says how much of it is still to come after the last pushed frame.
  TurnTunables t;
  t.latencyCompensationMs = 0;
  TurnState s(t);
  s.setExactEndpoint(true);
  for (int i = 0; i < 10; ++i) {
    const FrameLevels l = flat(-90.0f);
    s.push(0.01f, false, false, &l);
  }
  check(s.endpointRemainingMs() == -1, "timer: nothing pending before a turn");
  for (int i = 0; i < 20; ++i) {
    FrameLevels l = flat(-25.0f);
    if (i == 19) l.subDb[2] = l.subDb[3] = -90.0f;  // the sound ends 16 ms into the last frame
    s.push(0.95f, false, false, &l);
  }
  const int64_t soundEndMs = (s.frameIndex() - 1) * kVadFrameMs + 16;
  check(s.endpointRemainingMs() == -1, "timer: nothing pending while the model says speech");
  int endedAt = -1, remAfter3 = -2;
  for (int i = 0; i < 40 && endedAt < 0; ++i) {
    const FrameLevels l = flat(-90.0f);
    const int64_t f = s.frameIndex();
    const TurnOutput o = s.push(0.05f, false, false, &l);
    if (o.events & kEvSpeechEnd) endedAt = static_cast<int>((f + 1) * kVadFrameMs - soundEndMs);
    if (i == 2) remAfter3 = s.endpointRemainingMs();
  }
  const int expect3 = 700 - static_cast<int>((20 + 10 + 3) * kVadFrameMs - soundEndMs);
  check(remAfter3 == expect3, "timer: remaining silence after 3 quiet frames is " + std::to_string(expect3) + " ms (" +
        std::to_string(remAfter3) + ")");
  check(endedAt >= 700 && endedAt < 700 + kVadFrameMs, "timer: exact frames fire once the whole 700 ms passed (" +
        std::to_string(endedAt) + " ms)");
  // endNow ends a trailing turn at once (the timer expired between frames), and nothing else.
  TurnState u(t);
  check(u.endNow().events == 0, "timer: endNow is a no-op when idle");
  for (int i = 0; i < 20; ++i) {
    const FrameLevels l = flat(-25.0f);
    u.push(0.95f, false, false, &l);
  }
  check(u.endNow().events == 0, "timer: endNow is a no-op during speech");
  const FrameLevels q = flat(-90.0f);
  u.push(0.05f, false, false, &q);
  const TurnOutput e = u.endNow();
  check((e.events & kEvSpeechEnd) && e.startFrame >= 0 && e.endFrame == 19 && u.phase() == TurnPhase::Idle,
        "timer: endNow while trailing ends the turn with its frames");
}

void testShortOnsetKept() {
  // "Yes, that is correct": the "Yes" (7 frames, under minSpeechMs 250) and its comma's pause (8
  // frames) do not start a turn, but the turn that "that is correct" starts includes it. (The
  // default minSpeechMs, 128, makes a 7-frame "Yes" a turn of its own; a tenant's longer one
  // still relies on this.)
  TurnTunables t;
  t.minSpeechMs = 250;
  TurnState s(t);
  for (int i = 0; i < 10; ++i) s.push(0.01f, false, false);
  const int64_t yesAt = s.frameIndex();
  for (int i = 0; i < 7; ++i) s.push(0.95f, false, false);
  for (int i = 0; i < 8; ++i) s.push(0.02f, false, false);
  TurnOutput end;
  bool started = false;
  for (int i = 0; i < 12; ++i) started |= (s.push(0.95f, false, false).events & kEvSpeechStart) != 0;
  for (int i = 0; i < 40 && !(end.events & kEvSpeechEnd); ++i) end = s.push(0.02f, false, false);
  check(started && (end.events & kEvSpeechEnd) && end.startFrame <= yesAt,
        "turn: a short onset just before a turn is part of its utterance (start " + std::to_string(end.startFrame) +
            " <= " + std::to_string(yesAt) + ")");
  // Far apart (more than the endpointing silence), the short onset stays forgotten.
  TurnState w(t);
  for (int i = 0; i < 7; ++i) w.push(0.95f, false, false);
  for (int i = 0; i < 40; ++i) w.push(0.02f, false, false);
  const int64_t laterAt = w.frameIndex();
  for (int i = 0; i < 12; ++i) w.push(0.95f, false, false);
  end = TurnOutput();
  for (int i = 0; i < 40 && !(end.events & kEvSpeechEnd); ++i) end = w.push(0.02f, false, false);
  check((end.events & kEvSpeechEnd) && end.startFrame >= laterAt - t.preRollFrames,
        "turn: a short onset long before is not (start " + std::to_string(end.startFrame) + ")");
  // NaN frames (no result under overload) inside an onset neither count nor break it.
  TurnState n(t);
  bool st = false;
  for (int i = 0; i < 4; ++i) st |= (n.push(0.95f, false, false).events & kEvSpeechStart) != 0;
  for (int i = 0; i < 4; ++i) st |= (n.push(std::nanf(""), false, false).events & kEvSpeechStart) != 0;
  check(!st && n.phase() == TurnPhase::Onset, "turn: NaN frames hold an onset");
  for (int i = 0; i < 4; ++i) st |= (n.push(0.95f, false, false).events & kEvSpeechStart) != 0;
  check(st, "turn: and the onset still becomes a turn after them");
}

// Pause-first as a duck: TurnOutput::stop marks the frame at which a barged-in turn is
// confirmed (falseInterruptionMinSpeechMs of voiced time), and OutboundDuck ramps the
// prompt's level down and back up without a step.
void testDuck() {
  TurnTunables t;  // minInterruptionMs 300 (10 frames), falseInterruptionMinSpeechMs 700 (22 frames)
  {
    // "okay" over the prompt: 12 voiced frames barge in (frame 9) but never reach 22: no stop,
    // and the turn ends as a false interruption (the ducked prompt goes on at full level).
    TurnState s(t);
    int stops = 0, barge = -1, fi = 0;
    for (int k = 0; k < 50; ++k) {
      const TurnOutput o = s.push(k < 12 ? 0.9f : 0.0f, true, false);
      stops += o.stop;
      if (o.events & kEvBargeIn) barge = k;
      fi += (o.events & kEvFalseInterruption) != 0;
    }
    check(barge == 9 && stops == 0 && fi == 1, "duck: a short barged-in turn is never confirmed (no stop), ends as a false interruption");
  }
  {
    // A real interruption: barge-in at frame 9, stop once at frame 21 (22 voiced), SpeechEnd after.
    TurnState s(t);
    int stopAt = -1, stops = 0, ends = 0;
    for (int k = 0; k < 80; ++k) {
      const TurnOutput o = s.push(k < 40 ? 0.9f : 0.0f, true, false);
      if (o.stop) stopAt = k;
      stops += o.stop;
      ends += (o.events & kEvSpeechEnd) != 0;
    }
    check(stopAt == 21 && stops == 1 && ends == 1, "duck: a real interruption is confirmed (stop) at falseInterruptionMinSpeechMs, once");
    // falseInterruptionMinSpeechMs 0 (no false interruptions): confirmed at the barge-in itself.
    TurnTunables t0 = t;
    t0.falseInterruptionMinSpeechMs = 0;
    TurnState s0(t0);
    int stop0 = -1, barge0 = -1;
    for (int k = 0; k < 30; ++k) {
      const TurnOutput o = s0.push(0.9f, true, false);
      if (o.stop && stop0 < 0) stop0 = k;
      if (o.events & kEvBargeIn) barge0 = k;
    }
    check(stop0 == 9 && barge0 == 9, "duck: without false interruptions the barge-in is the stop");
    // Agent silent: turns are never 'stopped'.
    TurnState q(t);
    bool any = false;
    for (int k = 0; k < 60; ++k) any |= q.push(k < 40 ? 0.9f : 0.0f, false, false).stop;
    check(!any, "duck: no stop without a barge-in");
  }
  {
    TurnTunables bad = t;
    bad.pauseDuckDb = -1;
    check(validateTunables(bad) != nullptr, "duck: negative pauseDuckDb is rejected");
    bad.pauseDuckDb = 61;
    check(validateTunables(bad) != nullptr, "duck: pauseDuckDb above 60 is rejected");
    check(t.pauseDuckDb == 15.0f, "duck: default pauseDuckDb 15 dB");
  }
  {
    // OutboundDuck at 8 kHz, 5 ms ramp = 40 samples: a constant 10000 goes to 10000 * 10^(-15/20)
    // (1778) within 40 samples, each step at most 1/40 of full scale, then back up.
    voice::OutboundDuck d;
    std::vector<int16_t> x(160, 10000);
    d.apply(x.data(), x.size(), 8000, kDuckRampMs);
    check(x[0] == 10000 && x[159] == 10000 && d.atFullLevel(), "duck: full level passes audio unchanged");
    d.setTargetDb(15.0f);
    std::fill(x.begin(), x.end(), 10000);
    d.apply(x.data(), x.size(), 8000, kDuckRampMs);
    int maxStep = 0;
    for (size_t i = 1; i < x.size(); ++i) maxStep = std::max(maxStep, std::abs(x[i] - x[i - 1]));
    const int target = static_cast<int>(std::lround(10000 * std::pow(10.0, -15.0 / 20)));
    check(x[0] < 10000 && x[0] > 9000 && std::abs(x[40] - target) <= 1 && std::abs(x[159] - target) <= 1 && maxStep <= 251,
          "duck: ramps down to -15 dB over 5 ms without a step (x[40] " + std::to_string(x[40]) + ", max step " +
              std::to_string(maxStep) + ")");
    d.setTargetDb(0.0f);
    std::fill(x.begin(), x.end(), 10000);
    d.apply(x.data(), x.size(), 8000, kDuckRampMs);
    check(x[0] < 2100 && x[40] == 10000 && x[159] == 10000 && d.atFullLevel(), "duck: ramps back up to full level over 5 ms");
    d.setTargetDb(15.0f);
    d.apply(x.data(), 8, 8000, kDuckRampMs);
    d.reset();
    check(d.atFullLevel() && d.gain() == 1.0f, "duck: reset jumps to full level");
    std::vector<int16_t> loud(40, 32767);
    voice::OutboundDuck e;
    e.setTargetDb(0.5f);
    e.apply(loud.data(), loud.size(), 8000, kDuckRampMs);
    check(loud[39] < 32767 && loud[39] > 30000, "duck: full-scale input stays in range");
  }
}

bool setTunable(TurnTunables& t, const std::string& kv) {
  auto eq = kv.find('=');
  if (eq == std::string::npos) return false;
  std::string k = kv.substr(0, eq);
  double v = std::atof(kv.c_str() + eq + 1);
  if (k == "activationThreshold") t.activationThreshold = static_cast<float>(v);
  else if (k == "deactivationThreshold") t.deactivationThreshold = static_cast<float>(v);
  else if (k == "minSpeechMs") t.minSpeechMs = static_cast<int>(v);
  else if (k == "onsetMaxGapMs") t.onsetMaxGapMs = static_cast<int>(v);
  else if (k == "endpointSilenceMs") t.endpointSilenceMs = static_cast<int>(v);
  else if (k == "digitsEndpointSilenceMs") t.digitsEndpointSilenceMs = static_cast<int>(v);
  else if (k == "minInterruptionMs") t.minInterruptionMs = static_cast<int>(v);
  else if (k == "falseInterruptionMinSpeechMs") t.falseInterruptionMinSpeechMs = static_cast<int>(v);
  else if (k == "preRollFrames") t.preRollFrames = static_cast<int>(v);
  else if (k == "pauseOnsetMs") t.pauseOnsetMs = static_cast<int>(v);
  else if (k == "pauseHoldMs") t.pauseHoldMs = static_cast<int>(v);
  else if (k == "latencyCompensationMs") t.latencyCompensationMs = static_cast<int>(v);
  else if (k == "pauseCueProb") t.pauseCueProb = static_cast<float>(v);
  else if (k == "pauseCueSnrDb") t.pauseCueSnrDb = static_cast<float>(v);
  else if (k == "pauseDuckDb") t.pauseDuckDb = static_cast<float>(v);
  else return false;
  return true;
}

int cmdCut(const char* in, const char* out) {
  FILE* f = std::fopen(in, "rb");
  if (!f) { std::perror(in); return 2; }
  std::vector<int16_t> pcm;
  int16_t buf[4096];
  size_t n;
  while ((n = std::fread(buf, sizeof(int16_t), 4096, f)) > 0) pcm.insert(pcm.end(), buf, buf + n);
  std::fclose(f);
  FILE* o = std::fopen(out, "wb");
  if (!o) { std::perror(out); return 2; }
  FrameCutter c;
  // Odd chunk sizes, as datagrams of varying length would arrive.
  static const size_t chunks[] = {320, 160, 480, 333, 640};
  size_t off = 0, ci = 0;
  while (off < pcm.size()) {
    size_t len = std::min(chunks[ci++ % 5], pcm.size() - off);
    const int16_t* p = pcm.data() + off;
    size_t left = len;
    while (left > 0) {
      size_t k = c.write(p, left);
      p += k;
      left -= k;
      if (c.ready()) {
        std::fwrite(c.window(), sizeof(float), kVadWindow, o);
        c.next();
      }
    }
    off += len;
  }
  std::fclose(o);
  std::printf("%llu\n", static_cast<unsigned long long>(c.frames()));
  return 0;
}

int cmdTurn(int argc, char** argv) {
  TurnTunables t;
  for (int i = 0; i < argc; i++)
    if (!setTunable(t, argv[i])) { std::fprintf(stderr, "bad tunable %s\n", argv[i]); return 2; }
  if (const char* err = validateTunables(t)) { std::fprintf(stderr, "%s\n", err); return 2; }
  TurnState s(t);
  double prob;
  int agent, unint, digits;
  while (std::scanf("%lf %d %d %d", &prob, &agent, &unint, &digits) == 4) {
    s.setDigitsPending(digits != 0);  // as the STT layer does on every partial
    TurnOutput o = s.push(static_cast<float>(prob), agent != 0, unint != 0);
    std::printf("%u %lld %lld %d %d %d %d %d\n", o.events, static_cast<long long>(o.startFrame),
                static_cast<long long>(o.endFrame), o.voicedMs, static_cast<int>(s.phase()), o.pause ? 1 : 0,
                o.resume ? 1 : 0, o.stop ? 1 : 0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "selftest") == 0) {
    testCutter();
    testTurn();
    testReadAhead();
    testLevelCue();
    testSoundEnd();
    testEndpointTimer();
    testShortOnsetKept();
    testDuck();
    std::printf("1..%d\n# %d failed\n", gTest, gFailed);
    return gFailed == 0 ? 0 : 1;
  }
  if (argc == 4 && std::strcmp(argv[1], "cut") == 0) return cmdCut(argv[2], argv[3]);
  if (argc >= 2 && std::strcmp(argv[1], "turn") == 0) return cmdTurn(argc - 2, argv + 2);
  std::fprintf(stderr, "usage: vad_test selftest | cut IN.s16 OUT.f32 | turn [key=value...]\n");
  return 2;
}
