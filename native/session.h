// One RTP endpoint of a call: its socket, outbound PCM queue and RTP sender
// state, symmetric-RTP latching and the inbound decode buffer.
//
// Threading: members under "JS thread API" may be called from the JS thread at
// any time and take `mu_`; members under "media thread" are called only by the
// engine's media thread. Counters are atomics so stats() needs no lock for them.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "g711.h"
#include "media_socket.h"

namespace voice {

/** Samples per 20 ms frame at 8 kHz. */
constexpr size_t kFrameSamples = 160;
/** Largest outbound queue accepted by play(): 10 minutes of 8 kHz audio. */
constexpr size_t kMaxQueueSamples = 8000 * 600;
/** Inbound PCM held between two event batches (2 s); older audio is dropped beyond it. */
constexpr size_t kInboundCapacity = 16000;
/**
 * After latching, packets from another source are ignored unless the latched
 * source has been silent this long (media moved without re-INVITE, e.g. SBC
 * fail-over). Guards against RTP injection while the real stream flows.
 */
constexpr int64_t kRelatchIdleNs = 2'000'000'000LL;

struct SessionStats {
  uint64_t packetsIn = 0, packetsOut = 0, bytesIn = 0, bytesOut = 0, invalidIn = 0;
  uint64_t telephoneEventsIn = 0, sendErrors = 0, inboundDropped = 0;
  int64_t lastRxAgoMs = -1;  // -1: nothing received yet
  bool haveRemote = false;
  SockAddr remote;
  bool latched = false;
  uint32_t ssrcOut = 0;
  uint16_t seqOut = 0;  // sequence number of the last packet sent
};

class Session {
 public:
  Session(uint32_t id, int fd, const SockAddr& local, Codec codec, uint8_t pt, int tePt);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const uint32_t id;
  const SockAddr local;
  int fd() const { return fd_; }
  /** Close the socket; only after the media thread has dropped the session. */
  void closeFd();

  // ---- JS thread API (thread-safe) ----
  /** Signalled remote (SDP c=/m=); resets latching so the peer can latch again. */
  void setRemote(const SockAddr& remote);
  void setCodec(Codec codec, uint8_t pt);
  /** Append 8 kHz PCM to the outbound queue; false (with err) if the queue would exceed kMaxQueueSamples. */
  bool play(const int16_t* pcm, size_t n, std::string* err);
  /** Drop everything queued; no 'playoutDone' follows. */
  void flush();
  size_t queuedSamples() const;
  SessionStats stats(int64_t nowNs) const;

  // ---- media thread ----
  /**
   * Build the packet for 20 ms tick `tick` into buf (>= 12 + 160 bytes).
   * Returns 0 when there is no destination yet. Sets *playoutDone when this
   * packet carried the last queued audio.
   */
  size_t buildPacket(uint8_t* buf, int64_t tick, SockAddr* dest, bool* playoutDone);
  void onSent(size_t bytes, bool ok);
  enum class RxResult { Accepted, Latched, Ignored };
  /** Validate, latch, decode one datagram. */
  RxResult onDatagram(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs);
  size_t pendingLen() const { return inLen_; }
  const int16_t* pendingPcm() const { return inPcm_.data(); }
  void clearPending() { inLen_ = 0; }

  // Scheduling state owned by the media thread.
  int slot = -1;
  int64_t startNs = 0;

 private:
  int fd_;
  // -- guarded by mu_ --
  mutable std::mutex mu_;
  Codec codec_;
  uint8_t pt_;
  int tePt_;
  SockAddr signalled_;
  SockAddr latchedAddr_;
  bool latched_ = false;
  int64_t latchedLastRxNs_ = 0;
  std::vector<int16_t> ring_;  // outbound queue (ring buffer, grown by play())
  size_t head_ = 0, size_ = 0;
  bool playing_ = false;       // audio was queued and has not drained or been flushed

  // -- media thread only --
  uint32_t ssrc_;
  uint16_t seq_;
  uint32_t ts_;
  int64_t lastTick_ = -1;
  bool sentAny_ = false;
  bool inSpurt_ = false;
  std::vector<int16_t> inPcm_;
  size_t inLen_ = 0;

  // -- atomics, written by the media thread, read by stats() --
  std::atomic<uint64_t> packetsIn_{0}, packetsOut_{0}, bytesIn_{0}, bytesOut_{0}, invalidIn_{0};
  std::atomic<uint64_t> teIn_{0}, sendErrors_{0}, inDropped_{0};
  std::atomic<int64_t> lastRxNs_{0};
  std::atomic<uint16_t> seqOut_{0};
};

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t monoNs();
/** 32 random bits from the kernel (getrandom). */
uint32_t random32();

}  // namespace voice
