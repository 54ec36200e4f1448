// Events from the media thread to JS. The media thread fills a Batch and hands
// it to the single ThreadSafeFunction; the JS thread turns it into JS values
// and gives it back to the pool. Batches and their PCM vectors keep their
// capacity across reuse, so steady-state delivery does not allocate on the
// media thread.
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "media_socket.h"

namespace voice {

enum class EventType : uint8_t {
  Audio, PlayoutDone, Latched, DtmfStart, Dtmf,
  Vad,  // one per 32 ms for all VAD sessions: ids + windows (sessionId 0)
  SpeechStart, SpeechEnd, BargeIn, FalseInterruption, Backchannel,  // turn-taking (TurnState)
  Pause, Resume,  // pause-first: an onset paused the prompt / the onset died and the prompt resumed
};

struct Event {
  EventType type = EventType::Audio;
  uint32_t sessionId = 0;
  std::vector<int16_t> pcm;  // Audio: mono at the session rate (8 or 16 kHz), first pcmLen samples valid
  size_t pcmLen = 0;
  SockAddr addr;             // Latched: the new remote
  char digit = 0;            // DtmfStart / Dtmf
  uint32_t durationMs = 0;   // Dtmf; voiced ms for the turn-taking events
  double streamMs = 0;       // SpeechEnd: inbound stream position (ms fed to the VAD) where the end was decided
  std::vector<uint32_t> ids; // Vad: session id per window
  std::vector<float> f32;    // Vad: ids.size() × 576 floats
};

struct Batch {
  std::vector<Event> events;  // first `count` are valid
  size_t count = 0;
  Event& add() {
    if (count == events.size()) events.emplace_back();
    return events[count++];
  }
};

/** Free list of batches, shared by the media thread (take) and the JS thread (give). Guarded by its own mutex. */
class BatchPool {
 public:
  ~BatchPool() {
    for (Batch* b : free_) delete b;
  }
  Batch* take() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!free_.empty()) {
        Batch* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return new Batch();
  }
  void give(Batch* b) {
    b->count = 0;
    std::lock_guard<std::mutex> lk(mu_);
    free_.push_back(b);
  }

 private:
  std::mutex mu_;
  std::vector<Batch*> free_;
};

}  // namespace voice
