// The media engine: one media thread per engine that owns every RTP socket
// (epoll), the 20 ms send clock (timerfd on CLOCK_MONOTONIC, absolute
// deadlines) and the event batches sent to JS. See docs/ARCHITECTURE.md
// "Native core" for the object hierarchy, threads and locks.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "events.h"
#include "media_socket.h"
#include "pacing_stats.h"
#include "session.h"

namespace voice {

/** Length of one RTP packetisation tick. */
constexpr int64_t kTickNs = 20'000'000;
/** Sub-tick phases: sessions are spread over kSlots instants 1 ms apart so that many sessions do not all send at one instant. */
constexpr int kSlots = 20;
constexpr int64_t kSlotNs = kTickNs / kSlots;
/** Inbound audio is delivered to JS in one batch for all sessions every kEventBatchNs. */
constexpr int64_t kEventBatchNs = 40'000'000;
/** A new session sends its first packet no sooner than this after creation (lets JS queue audio first). */
constexpr int64_t kStartDelayNs = 10'000'000;
/** If the thread falls behind by more than this, skip ticks instead of bursting (RTP timestamps still advance). */
constexpr int64_t kMaxLagNs = 100'000'000;
/** VAD windows of all sessions are handed to JS together on this grid (one Silero frame). */
constexpr int64_t kVadTickNs = 32'000'000;

struct EngineOptions {
  std::string bindAddress = "127.0.0.1";
  /** Second, IPv6 bind address (IPV6_V6ONLY sockets from the same port range); empty = none. */
  std::string bindAddress6;
  int portMin = 40000;
  int portMax = 40999;
  /** SCHED_FIFO priority for the media thread (1..99); 0 = normal scheduling. Falls back to nice -10, then to normal, when not permitted. */
  int rtPriority = 20;
  /** Session ids this engine hands out: idFirst, idFirst + idStride, … (several engines in one process keep ids distinct). */
  uint32_t idFirst = 1;
  uint32_t idStride = 1;
};

class Engine {
 public:
  /** Delivers a batch to JS; returns false when it could not (the engine then recycles it). */
  using Sink = std::function<bool(Batch*)>;

  /** Throws std::runtime_error on bad options or when the thread cannot start. */
  Engine(const EngineOptions& opts, std::shared_ptr<BatchPool> pool, Sink sink);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- JS thread ----
  /**
   * `family` 4 or 6: the address family the peer's media uses (SDP c=); the session's socket
   * comes from the allocator that serves it — the IPv6 one (bindAddress6) for 6 when there is
   * one, else the main one when its family fits (an IPv6 wildcard `::` serves both). 0: the
   * main allocator. Fails (err) when no socket of that family can be had.
   */
  std::shared_ptr<Session> createSession(Codec codec, uint8_t pt, int tePt, const SockAddr* remote, std::string* err,
                                         const SessionConfig& cfg = SessionConfig(), int family = 0,
                                         const SrtpKeys* srtp = nullptr);
  /** Address families sessions can be created for (bit 4: IPv4, bit 6: IPv6). */
  bool serves(int family) const;
  /** Connect two sessions natively (each one's playout feeds the other's encoder). Waits for the media thread. */
  bool bridge(uint32_t a, uint32_t b, std::string* err);
  /** Disconnect `a` from its bridge peer (both directions). Returns false when it was not bridged. */
  bool unbridge(uint32_t a);
  /** Attach (or with null, detach) a recorder; waits until the media thread uses / no longer uses it. */
  void setRecorder(uint32_t id, std::shared_ptr<Recorder> rec);
  /** Synchronous: returns once the media thread has dropped the session and its socket is closed. */
  bool closeSession(uint32_t id);
  std::shared_ptr<Session> find(uint32_t id) const;
  /** Speech probabilities for the windows of one VAD hand-over (in order); decided on the media thread. No waiting. */
  void vadResults(std::vector<uint32_t> ids, std::vector<float> probs);
  /**
   * Any thread. Where VAD hand-overs go instead of the event sink (a VAD worker thread's own
   * thread-safe function); null = back to the event sink. A hand-over the VAD sink refuses
   * goes to the event sink. The sink is called on the media thread under vadSinkMu_, so
   * clearing it (under the same lock) guarantees it is not called afterwards.
   */
  void setVadSink(Sink sink);
  const std::shared_ptr<BatchPool>& pool() const { return pool_; }
  size_t activeSessions() const { return sessions_.size(); }
  bool running() const { return running_; }
  /** Stop and join the media thread, close every socket. Idempotent. */
  void stop();
  const SockAddr& bindAddress() const { return bind_; }
  /** Scheduling the media thread obtained: "fifo", "nice" or "normal" (valid once the thread started). */
  const char* scheduling() const { return sched_.load(); }

  // ---- any thread ----
  PacingSnapshot pacing() const { return pacing_.snapshot(); }
  PacingCumulative pacingCumulative() const { return pacing_.cumulative(); }
  void resetPacing() { pacing_.reset(); }
  /** Iterations of the media loop so far (liveness: poke(), then expect it to grow). */
  uint64_t loops() const { return loops_.load(std::memory_order_relaxed); }
  /** Wake the media loop once (it runs one iteration with no command). */
  void poke() { wake(); }

 private:
  struct Command {
    enum Kind { Add, Remove, Stop, Bridge, Unbridge, SetRecorder, VadResults } kind;
    std::shared_ptr<Session> session;
    std::shared_ptr<Session> other;     // Bridge
    std::shared_ptr<Recorder> recorder; // SetRecorder
    std::vector<uint32_t> ids;          // VadResults
    std::vector<float> probs;           // VadResults
    Command(Kind k, std::shared_ptr<Session> s, std::shared_ptr<Session> o, std::shared_ptr<Recorder> r)
        : kind(k), session(std::move(s)), other(std::move(o)), recorder(std::move(r)) {}
  };
  uint64_t submit(Command c);
  void waitDone(uint64_t seq);
  void wake();

  // ---- media thread ----
  void run();
  bool processCommands();  // false on Stop
  void runDueSlots(int64_t now);
  void sendTick(Session* s, int64_t tick, int64_t deadline);
  void readSession(Session* s);
  void readRtcp(Session* s);
  void readSockets();           // every ready session socket (inner epoll, no waiting)
  void updateReadBatching();    // after Add/Remove: batched reads on or off
  void emitDtmf(Session* s);
  void applyVad(const std::vector<uint32_t>& ids, const std::vector<float>& probs);
  void shipVad(int64_t now);
  void emitTurn(Session* s, const vad::TurnOutput& o);
  // Sessions with an endpoint timer running (Session::vadEndpointAt; a handful at a time).
  std::vector<uint32_t> vadTimers_;
  int64_t nextVadTimer() const;
  void runVadTimers(int64_t now);
  void armTimer(int64_t deadline);
  int64_t nextSlotDeadline() const;
  Event& newEvent(EventType t, uint32_t id);
  void flushEvents();

  SockAddr bind_;
  PortAllocator ports_;
  bool have6_ = false;   // a second, IPv6-only allocator (EngineOptions::bindAddress6)
  PortAllocator ports6_;
  std::shared_ptr<BatchPool> pool_;
  Sink sink_;
  std::mutex vadSinkMu_;
  Sink vadSink_;  // guarded by vadSinkMu_
  PacingStats pacing_;
  std::atomic<uint64_t> loops_{0};  // written by the media thread only
  int epfd_ = -1, wakefd_ = -1, timerfd_ = -1;
  // Every session socket (RTP and RTCP) is in this inner epoll set. It sits in epfd_ (a packet
  // wakes the thread) until every slot has a session; from then on (batchReads_) the thread
  // wakes only for its clock, commands and timers, and reads all ready sockets at each wake-up.
  int sockEpfd_ = -1;
  bool batchReads_ = false;  // media thread only
  std::thread thread_;
  bool running_ = false;
  int rtPriority_ = 0;
  std::atomic<const char*> sched_{"normal"};
  std::mutex startMu_;
  std::condition_variable startCv_;
  bool started_ = false;

  // JS thread only.
  std::unordered_map<uint32_t, std::shared_ptr<Session>> sessions_;
  uint32_t nextId_ = 1;
  uint32_t idStride_ = 1;

  // Command queue, guarded by cmdMu_.
  std::mutex cmdMu_;
  std::condition_variable cmdCv_;
  std::vector<Command> cmds_;
  uint64_t submitted_ = 0, done_ = 0;
  bool exited_ = false;  // the media thread has left run(): nothing will process commands any more

  // Media thread only.
  std::vector<Command> work_;
  std::unordered_map<uint32_t, std::shared_ptr<Session>> live_;
  std::vector<Session*> slots_[kSlots];
  int64_t epoch_ = 0;
  int64_t tick_ = 0;    // tick index of the cursor
  int cursorSlot_ = 0;  // slot index of the cursor
  int64_t cursorNs_ = 0;
  int64_t armedNs_ = -1;
  Batch* pending_ = nullptr;
  VadTick vadTick_;        // windows cut since the last hand-over
  // The VAD hand-over schedule: every kVadTickNs from here. The engines of one pool (shard k of
  // idStride) are offset by k/idStride of the period, so that their hand-overs — and their VAD
  // workers' model runs — take turns instead of all landing on the cores at one instant.
  int64_t vadEpoch_ = 0;
  int64_t nextVadNs_ = 0;
  bool urgent_ = false;
  int64_t nextBatchNs_ = 0;
  struct RxBuffers;  // recvmmsg scratch space, allocated once
  std::unique_ptr<RxBuffers> rx_;
};

}  // namespace voice
