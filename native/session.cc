#include "session.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "rtp.h"

namespace voice {

int64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

uint32_t random32() {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    v = static_cast<uint32_t>(monoNs() * 2654435761ULL) ^ static_cast<uint32_t>(getpid());
  }
  return v;
}

Session::Session(uint32_t id_, int fd, const SockAddr& local_, Codec codec, uint8_t pt, int tePt)
    : id(id_), local(local_), fd_(fd), codec_(codec), pt_(pt), tePt_(tePt),
      ssrc_(random32()), seq_(static_cast<uint16_t>(random32())), ts_(random32()),
      inPcm_(kInboundCapacity) {
  seqOut_.store(static_cast<uint16_t>(seq_ - 1), std::memory_order_relaxed);
}

Session::~Session() { closeFd(); }

void Session::closeFd() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void Session::setRemote(const SockAddr& remote) {
  std::lock_guard<std::mutex> lk(mu_);
  signalled_ = remote;
  latched_ = false;
}

void Session::setCodec(Codec codec, uint8_t pt) {
  std::lock_guard<std::mutex> lk(mu_);
  codec_ = codec;
  pt_ = pt;
}

bool Session::play(const int16_t* pcm, size_t n, std::string* err) {
  if (n == 0) return true;
  std::lock_guard<std::mutex> lk(mu_);
  if (size_ + n > kMaxQueueSamples) {
    if (err) *err = "outbound queue would exceed " + std::to_string(kMaxQueueSamples / 8000) + " s";
    return false;
  }
  if (size_ + n > ring_.size()) {
    // Grow on the JS thread (never on the media thread): unwrap into a bigger buffer.
    size_t cap = std::max<size_t>(ring_.size() * 2, 8000);
    while (cap < size_ + n) cap *= 2;
    std::vector<int16_t> next(cap);
    for (size_t i = 0; i < size_; ++i) next[i] = ring_[(head_ + i) % ring_.size()];
    ring_.swap(next);
    head_ = 0;
  }
  const size_t cap = ring_.size();
  size_t tail = (head_ + size_) % cap;
  size_t first = std::min(n, cap - tail);
  std::memcpy(&ring_[tail], pcm, first * sizeof(int16_t));
  if (first < n) std::memcpy(&ring_[0], pcm + first, (n - first) * sizeof(int16_t));
  size_ += n;
  playing_ = true;
  return true;
}

void Session::flush() {
  std::lock_guard<std::mutex> lk(mu_);
  head_ = 0;
  size_ = 0;
  playing_ = false;
}

size_t Session::queuedSamples() const {
  std::lock_guard<std::mutex> lk(mu_);
  return size_;
}

SessionStats Session::stats(int64_t nowNs) const {
  SessionStats s;
  s.packetsIn = packetsIn_.load(std::memory_order_relaxed);
  s.packetsOut = packetsOut_.load(std::memory_order_relaxed);
  s.bytesIn = bytesIn_.load(std::memory_order_relaxed);
  s.bytesOut = bytesOut_.load(std::memory_order_relaxed);
  s.invalidIn = invalidIn_.load(std::memory_order_relaxed);
  s.telephoneEventsIn = teIn_.load(std::memory_order_relaxed);
  s.sendErrors = sendErrors_.load(std::memory_order_relaxed);
  s.inboundDropped = inDropped_.load(std::memory_order_relaxed);
  const int64_t last = lastRxNs_.load(std::memory_order_relaxed);
  s.lastRxAgoMs = last == 0 ? -1 : std::max<int64_t>(0, (nowNs - last) / 1'000'000);
  s.ssrcOut = ssrc_;
  s.seqOut = seqOut_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lk(mu_);
  s.latched = latched_;
  if (latched_) { s.remote = latchedAddr_; s.haveRemote = true; }
  else if (signalled_.valid()) { s.remote = signalled_; s.haveRemote = true; }
  return s;
}

size_t Session::buildPacket(uint8_t* buf, int64_t tick, SockAddr* dest, bool* playoutDone) {
  *playoutDone = false;
  // The RTP clock follows wall time: ts advances 160 per 20 ms tick even over
  // ticks that sent nothing (no destination yet, or a stalled thread).
  if (lastTick_ >= 0) ts_ += static_cast<uint32_t>(kFrameSamples * static_cast<uint64_t>(tick - lastTick_));
  lastTick_ = tick;

  int16_t frame[kFrameSamples];
  size_t got = 0;
  Codec codec;
  uint8_t pt;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (latched_) *dest = latchedAddr_;
    else if (signalled_.valid()) *dest = signalled_;
    else return 0;  // keep the queue until we know where to send
    codec = codec_;
    pt = pt_;
    got = std::min(size_, kFrameSamples);
    const size_t cap = ring_.size();
    for (size_t i = 0; i < got; ++i) frame[i] = ring_[(head_ + i) % cap];
    if (got) {
      head_ = (head_ + got) % cap;
      size_ -= got;
      if (size_ == 0 && playing_) {
        playing_ = false;
        *playoutDone = true;
      }
    }
  }
  const bool hasAudio = got > 0;
  const bool marker = !sentAny_ || (hasAudio && !inSpurt_);
  inSpurt_ = hasAudio;
  sentAny_ = true;
  writeRtpHeader(buf, marker, pt, seq_, ts_, ssrc_);
  uint8_t* payload = buf + kRtpHeaderSize;
  if (hasAudio) {
    for (size_t i = got; i < kFrameSamples; ++i) frame[i] = 0;
    g711Encode(codec, frame, kFrameSamples, payload);
  } else {
    // Comfort keep-alive: G.711 digital silence keeps NAT bindings and the
    // carrier's RTP-inactivity timers alive while nothing is queued.
    std::memset(payload, g711Silence(codec), kFrameSamples);
  }
  seqOut_.store(seq_, std::memory_order_relaxed);
  ++seq_;
  return kRtpHeaderSize + kFrameSamples;
}

void Session::onSent(size_t bytes, bool ok) {
  if (!ok) {
    sendErrors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  packetsOut_.fetch_add(1, std::memory_order_relaxed);
  bytesOut_.fetch_add(bytes, std::memory_order_relaxed);
}

Session::RxResult Session::onDatagram(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs) {
  RtpPacket p;
  if (parseRtp(data, len, &p) != RtpStatus::Ok) {
    invalidIn_.fetch_add(1, std::memory_order_relaxed);
    return RxResult::Ignored;
  }
  Codec codec;
  bool newlyLatched = false;
  bool isTe = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    isTe = tePt_ >= 0 && p.payloadType == tePt_;
    const bool negotiated = p.payloadType == pt_ || isTe;
    if (latched_ && !src.sameEndpoint(latchedAddr_)) {
      // Foreign source while latched: only take over if the latched one went quiet.
      if (!negotiated || nowNs - latchedLastRxNs_ < kRelatchIdleNs) {
        invalidIn_.fetch_add(1, std::memory_order_relaxed);
        return RxResult::Ignored;
      }
      latched_ = false;
    }
    if (!latched_ && negotiated) {
      latched_ = true;
      latchedAddr_ = src;
      newlyLatched = true;
    }
    if (latched_) latchedLastRxNs_ = nowNs;
    codec = codec_;
    if (!isTe && p.payloadType != pt_) {
      // Static G.711 types are decodable even when not the negotiated one.
      if (p.payloadType == 0) codec = Codec::PCMU;
      else if (p.payloadType == 8) codec = Codec::PCMA;
      else {
        invalidIn_.fetch_add(1, std::memory_order_relaxed);
        return newlyLatched ? RxResult::Latched : RxResult::Ignored;
      }
    }
  }
  packetsIn_.fetch_add(1, std::memory_order_relaxed);
  bytesIn_.fetch_add(len, std::memory_order_relaxed);
  lastRxNs_.store(nowNs, std::memory_order_relaxed);
  if (isTe) {
    // RFC 4733 events are counted only for now; the DTMF receiver parses them.
    teIn_.fetch_add(1, std::memory_order_relaxed);
  } else {
    size_t n = p.payloadLen;
    if (inLen_ + n > inPcm_.size()) {
      inDropped_.fetch_add(n, std::memory_order_relaxed);
      n = inPcm_.size() - inLen_;
    }
    g711Decode(codec, p.payload, n, inPcm_.data() + inLen_);
    inLen_ += n;
  }
  return newlyLatched ? RxResult::Latched : RxResult::Accepted;
}

}  // namespace voice
