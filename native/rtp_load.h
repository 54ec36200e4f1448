// RtpLoad: a carrier-side RTP load for the media-capacity benchmark (test binding
// `RtpLoadTest`, never used by the engine). One thread plays N G.711 callers from ONE
// loopback UDP socket: each caller's 20 ms packets go to its own target port, sent
// jittered uniformly by ±jitterMs around the ideal instant (never before the caller's
// previous packet) with lossPct % dropped at random; what the targets send back arrives
// on the same socket, is told apart by its source port and timed by the kernel
// (SO_TIMESTAMPNS) for the inter-arrival error |Δt − 20 ms|.
//
// Why native: the same load from Node (a dgram socket per caller, a JS send and a
// 'message' event per packet) took 35-50 % of a core at 800 callers, and at a normal
// priority it was starved for up to a second by the process under test, then delivered
// that second of every caller's audio as one burst. Here sends are batched per 1 ms step
// with sendmmsg and receives drained with recvmmsg.
//
// Threads: the constructor and the accessors run on the JS thread; run() on the load
// thread. Streams, payloads and the socket are written before the thread starts and only
// read by it (the per-stream send state is the thread's alone). Stats live under mu_:
// the thread adds to them once per step, mark()/report() read or reset them.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace voice {

struct RtpLoadConfig {
  std::vector<std::vector<uint8_t>> voices;    // µ-law audio, whole 160-byte frames; caller i plays voices[i % n]
  double jitterMs = 10;
  double lossPct = 1;
  uint32_t seed = 1;
};

struct RtpLoadReport {
  double seconds = 0;
  uint64_t sent = 0, dropped = 0, sendErrors = 0;
  uint64_t rxPackets = 0, rxIntervals = 0, rxGaps = 0, rxUnknown = 0;
  double rxP50Us = 0, rxP99Us = 0, rxMaxUs = 0;
  double sendLateP50Us = 0, sendLateP99Us = 0;
  double cpuPct = 0;  // the load thread's CPU over the window, % of one core
};

class RtpLoad {
 public:
  /** Binds the socket (127.0.0.1, ephemeral port); throws std::runtime_error on failure. */
  explicit RtpLoad(RtpLoadConfig cfg);
  ~RtpLoad();
  int port() const { return port_; }
  /** Starts the load thread with one caller per target (a UDP port on 127.0.0.1); once. */
  void start(const std::vector<int>& targets);
  void stop();
  /** Start of the measured window: counters and histograms restart. */
  void mark();
  /** The window so far. */
  RtpLoadReport report();

 private:
  struct Stream {
    uint32_t ssrc, ts;
    uint16_t seq;
    size_t frame = 0;
    int64_t idealNs = 0, dueNs = 0;
    int64_t lastRxNs = -1;
    int lastRxSeq = -1;
  };
  struct Hist {
    std::vector<uint32_t> fine = std::vector<uint32_t>(10000), coarse = std::vector<uint32_t>(10000);
    uint64_t count = 0;
    double max = 0;
    void add(double us);
    double pct(double p) const;
    void clear();
  };
  void run();
  uint64_t next();    // the LCG's next state
  double uniform();   // [0, 1)
  double jitterNs();  // uniform in ±jitterMs

  RtpLoadConfig cfg_;
  std::vector<int> targets_;
  int fd_ = -1;
  int port_ = 0;
  std::vector<Stream> streams_;
  std::vector<int32_t> byPort_;  // source port → caller index (-1: none)
  uint64_t rng_;
  std::thread thread_;
  std::atomic<bool> running_{false};

  std::mutex mu_;
  bool measuring_ = false;
  int64_t markNs_ = 0, markCpuNs_ = 0;
  uint64_t sent_ = 0, dropped_ = 0, sendErrors_ = 0, rxPackets_ = 0, rxGaps_ = 0, rxUnknown_ = 0;
  Hist rx_, late_;
  std::atomic<int64_t> threadCpuNs_{0};
};

}  // namespace voice
