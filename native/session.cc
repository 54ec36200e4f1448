#include "session.h"

#include <cmath>

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "rtcp.h"
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

namespace {
int clockOf(Codec c) { return c == Codec::Opus ? 48000 : 8000; }
JitterConfig withClock(JitterConfig j, Codec c) {
  j.clockRate = clockOf(c);
  return j;
}
int64_t rtcpDelayNs(int intervalMs) {
  // RFC 3550 §6.3.1: randomise to 0.5..1.5 of the interval so reports of many sessions do not synchronise.
  const double f = 0.5 + (random32() % 1000) / 1000.0;
  return static_cast<int64_t>(intervalMs * f * 1e6);
}
}  // namespace

Session::Session(uint32_t id_, int fd, const SockAddr& local_, Codec codec, uint8_t pt, int tePt,
                 const SessionConfig& cfg, int rtcpFd)
    : id(id_), local(local_), fd_(fd), rtcpFd_(rtcpFd), cfg_(cfg), codec_(codec), pt_(pt), tePt_(tePt),
      opusParams_(cfg.opus), ssrc_(random32()), seq_(static_cast<uint16_t>(random32())), ts_(random32()),
      inPcm_(kInboundCapacity), playout_(cfg.rate, withClock(cfg.jitter, codec)), rxCodec_(codec), rxPt_(pt), rxTePt_(tePt) {
  if (cfg_.rate != 16000) cfg_.rate = 8000;
  seqOut_.store(static_cast<uint16_t>(seq_ - 1), std::memory_order_relaxed);
  playout_.setCodec(codec, pt);
  if (codec == Codec::Opus) enc_ = std::make_unique<OpusEnc>(8000);
  if (cfg_.rate == 16000) down_ = std::make_unique<Resampler>(16000, 8000, 320);
  if (cfg_.vad) vad_ = std::make_unique<VadState>(cfg_.turn);
  dtmfDurMs_ = cfg_.dtmfDurationMs;
  dtmfGapMs_ = cfg_.dtmfGapMs;
  std::memset(inFrame_, 0, sizeof inFrame_);
  std::memset(outFrame_, 0, sizeof outFrame_);
}

Session::~Session() { closeFd(); }

void Session::closeFd() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (rtcpFd_ >= 0) {
    ::close(rtcpFd_);
    rtcpFd_ = -1;
  }
}

void Session::initSrtp(SrtpSuite suite, const uint8_t localKey[kSrtpKeySaltLen], const uint8_t remoteKey[kSrtpKeySaltLen]) {
  srtp_ = std::make_unique<SrtpContext>(suite, localKey, remoteKey, ssrc_);
  srtpSuite_ = static_cast<int>(suite);
}

bool Session::setSrtpRemote(SrtpSuite suite, const uint8_t remoteKey[kSrtpKeySaltLen], std::string* err) {
  if (srtpSuite_ < 0) {
    if (err) *err = "the session has no SRTP";
    return false;
  }
  if (static_cast<int>(suite) != srtpSuite_) {
    if (err) *err = std::string("the session runs ") + srtpSuiteName(static_cast<SrtpSuite>(srtpSuite_)) + "; a suite change needs a new session";
    return false;
  }
  std::unique_ptr<SrtpContext> fresh;
  try {
    fresh = std::make_unique<SrtpContext>(suite, nullptr, remoteKey, 0);
  } catch (const std::exception& e) {
    if (err) *err = e.what();
    return false;
  }
  std::unique_ptr<SrtpContext> old;
  {
    std::lock_guard<std::mutex> lk(mu_);
    old = std::move(pendingSrtpRx_);  // a re-key the media thread has not taken yet is superseded
    pendingSrtpRx_ = std::move(fresh);
    srtpRekey_.store(true, std::memory_order_release);
  }
  return true;
}

void Session::setRemote(const SockAddr& remote, uint16_t rtcpPort) {
  std::lock_guard<std::mutex> lk(mu_);
  signalled_ = remote;
  signalledRtcpPort_ = rtcpPort;
  latched_ = false;
  rtcpSource_ = SockAddr();
}

bool Session::setCodec(Codec codec, uint8_t pt, std::string* err) {
  std::unique_ptr<OpusEnc> fresh;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (codec == Codec::Opus && !enc_) {
      try {
        fresh = std::make_unique<OpusEnc>(8000);
      } catch (const std::exception& e) {
        if (err) *err = e.what();
        return false;
      }
      enc_ = std::move(fresh);
    }
    codec_ = codec;
    pt_ = pt;
  }
  return true;
}

void Session::setOpusParams(const OpusParams& p) {
  std::lock_guard<std::mutex> lk(mu_);
  opusParams_ = p;
  ++opusParamsVer_;
}

void Session::setTelephoneEventPt(int pt) {
  std::lock_guard<std::mutex> lk(mu_);
  tePt_ = pt;
}

void Session::setDirection(bool send, bool recv) {
  std::lock_guard<std::mutex> lk(mu_);
  sendEnabled_ = send;
  recvEnabled_ = recv;
}

bool Session::sending() const {
  std::lock_guard<std::mutex> lk(mu_);
  return sendEnabled_;
}

bool Session::play(const int16_t* pcm, size_t n, std::string* err, bool uninterruptible) {
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
  enqTotal_ += n;
  if (uninterruptible) unintEnd_ = enqTotal_;
  playing_ = true;
  return true;
}

void Session::flush() {
  std::lock_guard<std::mutex> lk(mu_);
  head_ = 0;
  size_ = 0;
  playing_ = false;
  deqTotal_ = enqTotal_;
  vadPaused_ = false;
  vadDuckDb_ = 0;
}

bool Session::setTurnTunables(const vad::TurnTunables& t, std::string* err) {
  if (const char* e = vad::validateTunables(t)) {
    if (err) *err = e;
    return false;
  }
  std::lock_guard<std::mutex> lk(mu_);
  pendingTunables_ = t;
  tunablesDirty_ = true;
  return true;
}

size_t Session::queuedSamples() const {
  std::lock_guard<std::mutex> lk(mu_);
  return size_;
}

bool Session::sendDtmf(const std::string& digits, int durationMs, int gapMs, std::string* err) {
  for (char c : digits) {
    if (dtmfEvent(c) < 0) {
      if (err) *err = std::string("invalid DTMF digit '") + c + "' (0-9 * # A-D)";
      return false;
    }
  }
  std::lock_guard<std::mutex> lk(mu_);
  if (tePt_ < 0) {
    if (err) *err = "telephone-event was not negotiated for this session";
    return false;
  }
  if (dtmfQueue_.size() + digits.size() > 64) {
    if (err) *err = "too many DTMF digits queued";
    return false;
  }
  dtmfQueue_ += digits;
  dtmfDurMs_ = std::clamp(durationMs, 40, 5000);
  dtmfGapMs_ = std::clamp(gapMs, 20, 5000);
  return true;
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
  s.dtmfIn = dtmfIn_.load(std::memory_order_relaxed);
  s.dtmfOut = dtmfOut_.load(std::memory_order_relaxed);
  const int64_t last = lastRxNs_.load(std::memory_order_relaxed);
  s.lastRxAgoMs = last == 0 ? -1 : std::max<int64_t>(0, (nowNs - last) / 1'000'000);
  s.ssrcOut = ssrc_;
  s.srtpSuite = srtpSuite_;
  s.srtpAuthFail = srtpAuthFail_.load(std::memory_order_relaxed);
  s.srtpReplay = srtpReplay_.load(std::memory_order_relaxed);
  s.srtpInvalid = srtpInvalid_.load(std::memory_order_relaxed);
  s.srtpProtectFail = srtpProtectFail_.load(std::memory_order_relaxed);
  s.seqOut = seqOut_.load(std::memory_order_relaxed);
  if (recorderJs) {
    s.recording = true;
    s.recordedFrames = recorderJs->framesWritten();
    s.recordDropped = recorderJs->framesDropped();
  }
  {
    std::lock_guard<std::mutex> lk(statsMu_);
    s.playout = playoutSnap_;
    s.rtcp = rtcpSnap_;
    s.bridged = bridgedSnap_;
  }
  std::lock_guard<std::mutex> lk(mu_);
  s.latched = latched_;
  s.sending = sendEnabled_;
  s.inbandDtmf = inbandSnap_.load(std::memory_order_relaxed);
  if (latched_) { s.remote = latchedAddr_; s.haveRemote = true; }
  else if (signalled_.valid()) { s.remote = signalled_; s.haveRemote = true; }
  return s;
}

// ------------------------------------------------------------------ media thread

void Session::publishStats() {
  std::lock_guard<std::mutex> lk(statsMu_);
  playoutSnap_ = playout_.stats();
  rtcpSnap_ = rtcp_;
  bridgedSnap_ = peer_ != nullptr;
}

void Session::setPeer(Session* peer) {
  peer_ = peer;
  bridgeLen_ = 0;
  publishStats();
}

void Session::bridgePush(const int16_t* pcm8k, size_t n) {
  n = std::min(n, kBridgeCapacity);
  if (bridgeLen_ + n > kBridgeCapacity) {
    const size_t drop = bridgeLen_ + n - kBridgeCapacity;  // oldest first: keep latency bounded
    std::memmove(bridgeBuf_, bridgeBuf_ + drop, (bridgeLen_ - drop) * sizeof(int16_t));
    bridgeLen_ -= drop;
  }
  std::memcpy(bridgeBuf_ + bridgeLen_, pcm8k, n * sizeof(int16_t));
  bridgeLen_ += n;
}

void Session::syncCodec() {
  Codec c;
  uint8_t pt;
  {
    std::lock_guard<std::mutex> lk(mu_);
    c = codec_;
    pt = pt_;
    rxTePt_ = tePt_;
  }
  if (c != rxCodec_ || pt != rxPt_) {
    rxCodec_ = c;
    rxPt_ = pt;
    playout_.setCodec(c, pt);
  }
}

size_t Session::buildPacket(uint8_t* buf, size_t cap, int64_t tick, SockAddr* dest, bool* playoutDone) {
  *playoutDone = false;
  haveOutFrame_ = false;
  Codec codec;
  uint8_t pt;
  int tePt;
  {
    std::lock_guard<std::mutex> lk(mu_);
    codec = codec_;
  }
  const uint32_t frameTs = static_cast<uint32_t>(clockOf(codec) / 50);
  // The RTP clock follows wall time: ts advances one frame per 20 ms tick even
  // over ticks that sent nothing (no destination yet, or a stalled thread).
  if (lastTick_ >= 0) ts_ += static_cast<uint32_t>(frameTs * static_cast<uint64_t>(tick - lastTick_));
  lastTick_ = tick;

  int16_t frame[kFrameSamples];
  size_t got = 0;
  OpusEnc* enc = nullptr;
  bool applyOpus = false;
  OpusParams op;
  float duckDb = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    duckDb = vadDuckDb_;
    if (latched_) dest->assign(latchedAddr_);
    else if (signalled_.valid()) dest->assign(signalled_);
    else return 0;  // keep the queue until we know where to send
    if (!sendEnabled_) {
      // On hold (sendonly/inactive offer or c=0.0.0.0 from the peer): send nothing,
      // not even keep-alive silence; queued audio and digits wait.
      paused_ = true;
      return 0;
    }
    codec = codec_;
    pt = pt_;
    tePt = tePt_;
    enc = enc_.get();
    if (enc && appliedOpusVer_ != opusParamsVer_) {
      applyOpus = true;
      op = opusParams_;
      appliedOpusVer_ = opusParamsVer_;
    }
    if (dtmfTx_.idle() && !dtmfQueue_.empty() && tePt >= 0) {
      dtmfTx_.start(static_cast<uint8_t>(dtmfEvent(dtmfQueue_[0])), ts_, dtmfDurMs_, dtmfGapMs_, clockOf(codec));
      dtmfQueue_.erase(0, 1);
    }
    if (!dtmfTx_.active()) {
      // Voice flows only when no digit is being sent (and not between digits still queued).
      const bool moreDigits = dtmfTx_.inGap() || !dtmfQueue_.empty();
      if (!moreDigits && !vadPaused_) {
        got = std::min(size_, kFrameSamples);
        deqTotal_ += got;
        const size_t rcap = ring_.size();
        if (got) {
          // At most two runs of the ring (no division per sample).
          const size_t first = std::min(got, rcap - head_);
          std::memcpy(frame, &ring_[head_], first * sizeof(int16_t));
          if (first < got) std::memcpy(frame + first, &ring_[0], (got - first) * sizeof(int16_t));
          head_ = (head_ + got) % rcap;
          size_ -= got;
          if (size_ == 0 && playing_) {
            playing_ = false;
            *playoutDone = true;
          }
        }
      }
    }
  }
  if (applyOpus) enc->apply(op);
  duck_.setTargetDb(duckDb);
  if (got) duck_.apply(frame, got, 8000, vad::kDuckRampMs);  // pause-first duck (queue audio only, not the bridge)

  if (dtmfTx_.active()) {
    // A digit's event packet (RFC 4733 §2.5, see DtmfSender); voice stays paused meanwhile.
    if (cap < kRtpHeaderSize + 4) return 0;
    const DtmfSender::Packet d = dtmfTx_.next(frameTs);
    if (d.digitDone) dtmfOut_.fetch_add(1, std::memory_order_relaxed);
    writeRtpHeader(buf, d.first || paused_, static_cast<uint8_t>(tePt), seq_, d.ts, ssrc_);
    paused_ = false;
    writeTelephoneEvent(buf + kRtpHeaderSize, d.event);
    inSpurt_ = false;  // the next voice packet starts a talkspurt
    sentAny_ = true;
    std::memset(outFrame_, 0, sizeof outFrame_);
    haveOutFrame_ = true;
    seqOut_.store(seq_, std::memory_order_relaxed);
    ++seq_;
    return kRtpHeaderSize + 4;
  }
  dtmfTx_.tick();  // the gap after a digit runs out

  for (size_t i = got; i < kFrameSamples; ++i) frame[i] = 0;
  bool bridged = false;
  if (peer_ && bridgeLen_ >= kFrameSamples) {
    // Mix the bridged party with anything JS queued (announcements, whisper).
    for (size_t i = 0; i < kFrameSamples; ++i)
      frame[i] = static_cast<int16_t>(std::clamp(frame[i] + bridgeBuf_[i], -32768, 32767));
    bridgeLen_ -= kFrameSamples;
    std::memmove(bridgeBuf_, bridgeBuf_ + kFrameSamples, bridgeLen_ * sizeof(int16_t));
    bridged = true;
  }
  const bool hasAudio = got > 0 || bridged;
  // Marker: first packet of the stream, first audio after the queue ran dry, and the
  // first packet after a hold (the far end's jitter buffer re-syncs on it).
  const bool marker = !sentAny_ || paused_ || (hasAudio && !inSpurt_);
  paused_ = false;
  inSpurt_ = hasAudio;
  sentAny_ = true;
  std::memcpy(outFrame_, frame, sizeof outFrame_);
  haveOutFrame_ = true;
  writeRtpHeader(buf, marker, pt, seq_, ts_, ssrc_);
  uint8_t* payload = buf + kRtpHeaderSize;
  size_t plen = kFrameSamples;
  if (codec == Codec::Opus && enc) {
    const int n = enc->encode(frame, static_cast<int>(kFrameSamples), payload,
                              static_cast<int>(std::min<size_t>(cap - kRtpHeaderSize, 1275)));
    if (n <= 0) return 0;
    plen = static_cast<size_t>(n);
  } else {
    if (cap < kRtpHeaderSize + kFrameSamples) return 0;
    if (codec == Codec::Opus) codec = Codec::PCMU;  // unreachable: setCodec creates the encoder first
    if (hasAudio) {
      g711Encode(codec, frame, kFrameSamples, payload);
    } else {
      // Comfort keep-alive: G.711 digital silence keeps NAT bindings and the
      // carrier's RTP-inactivity timers alive while nothing is queued.
      std::memset(payload, g711Silence(codec), kFrameSamples);
    }
  }
  seqOut_.store(seq_, std::memory_order_relaxed);
  ++seq_;
  ++packetsSinceReport_;
  return kRtpHeaderSize + plen;
}

size_t Session::sealRtp(uint8_t* buf, size_t len, size_t cap) {
  if (!srtp_ || len == 0) return len;
  srtpTakeRekey();
  if (!srtp_->protectRtp(buf, &len, cap)) {
    srtpProtectFail_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  return len;
}

size_t Session::sealRtcp(uint8_t* buf, size_t len, size_t cap) {
  if (!srtp_ || len == 0) return len;
  if (!srtp_->protectRtcp(buf, &len, cap)) {
    srtpProtectFail_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  return len;
}

void Session::srtpTakeRekey() {
  if (!srtpRekey_.load(std::memory_order_acquire)) return;
  std::unique_ptr<SrtpContext> fresh;
  {
    std::lock_guard<std::mutex> lk(mu_);
    fresh = std::move(pendingSrtpRx_);
    srtpRekey_.store(false, std::memory_order_relaxed);
  }
  if (fresh) srtp_->adoptRemote(*fresh);  // the old inbound context leaves with `fresh` (freed here, once per re-key)
}

bool Session::srtpRxOk(SrtpContext::Rx r) {
  switch (r) {
    case SrtpContext::Rx::Ok: return true;
    case SrtpContext::Rx::AuthFail: srtpAuthFail_.fetch_add(1, std::memory_order_relaxed); break;
    case SrtpContext::Rx::Replay: srtpReplay_.fetch_add(1, std::memory_order_relaxed); break;
    case SrtpContext::Rx::Invalid: srtpInvalid_.fetch_add(1, std::memory_order_relaxed); break;
  }
  return false;
}

void Session::onSent(size_t bytes, bool ok) {
  if (!ok) {
    sendErrors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  packetsOut_.fetch_add(1, std::memory_order_relaxed);
  bytesOut_.fetch_add(bytes, std::memory_order_relaxed);
}

void Session::playoutTick(int64_t nowNs, VadTick* vt, bool late) {
  syncCodec();
  // In-band DTMF runs while no telephone-event is negotiated; a re-INVITE that adds one ends a key in progress.
  const bool inband = cfg_.inbandDtmf && rxTePt_ < 0;
  if (inband != inbandOn_) {
    DtmfReceiver::Out o;
    if (!inband && inband_.finish(&o)) inbandOut(o);
    inbandOn_ = inband;
    inbandSnap_.store(inband, std::memory_order_relaxed);
  }
  // The 16 kHz frame is made only for someone who takes it: JS ('audio' events), the recorder,
  // or a 16 kHz model fed from the playout. G.711 comes with its own 8 kHz frame either way.
  const bool aheadVad = vad_ && vadAheadMode();
  const bool audioOut = audioEvents_.load(std::memory_order_relaxed);
  const bool needOut = audioOut || rec_ || (vad_ && !aheadVad && vad_->cutter.rate() == 16000);
  const int16_t* p8 = nullptr;
  haveInFrame_ = playout_.tick(nowNs, inFrame_, needOut, &p8);
  const bool inFrameValid = haveInFrame_ && (needOut || !p8);
  const size_t n = playout_.frameSamples();
  if (haveInFrame_) {
    if (audioOut) {
      size_t k = n;
      if (inLen_ + k > inPcm_.size()) {
        inDropped_.fetch_add(k, std::memory_order_relaxed);
        k = inPcm_.size() - inLen_;
      }
      std::memcpy(inPcm_.data() + inLen_, inFrame_, k * sizeof(int16_t));
      inLen_ += k;
    }
    // One 8 kHz copy of the frame for the bridge peer, the VAD utterance ring and the DTMF detector:
    // G.711's own 8 kHz playout frame, or the 16 kHz Opus playout brought down.
    int16_t tmp[kFrameSamples + 8];
    const int16_t* f8 = inFrame_;
    size_t n8 = n;
    if (p8) {
      f8 = p8;
      n8 = kFrameSamples;
    } else if (down_ && (peer_ || vad_ || inband)) {
      n8 = down_->process(inFrame_, n, tmp, kFrameSamples + 8);
      f8 = tmp;
    }
    if (inband) {
      DtmfReceiver::Out o[2];
      const int k = inband_.process(f8, n8, o, 2);
      for (int i = 0; i < k; ++i) inbandOut(o[i]);
    }
    if (peer_) peer_->bridgePush(f8, n8);
    if (vad_ && !aheadVad) {
      vad_->tickNs = nowNs;
      vadFeed(f8, n8, cfg_.rate == 16000 && inFrameValid ? inFrame_ : nullptr, n, vt);
    }
  }
  if (aheadVad && !late) {
    // Read-ahead: conceal gaps that waited long enough, keep time running through stalls. Not on
    // a late (catch-up) tick: the packets it would give up on may be waiting in the socket, and
    // filling then feeds the VAD faster than real time exactly when the thread is behind.
    VadState& v = *vad_;
    v.tickNs = nowNs;
    v.feedTick = vt;
    v.ahead.onTick(nowNs, &Session::aheadSink, this);
    v.feedTick = nullptr;
  }
  DtmfReceiver::Out o;
  if (dtmfOutCount < 8 && dtmfRx_.poll(nowNs, &o)) {
    dtmfOut[dtmfOutCount++] = o;
    dtmfIn_.fetch_add(1, std::memory_order_relaxed);
  }
  if (rec_) rec_->push(inFrameValid ? inFrame_ : nullptr, n, haveOutFrame_ ? outFrame_ : nullptr, kFrameSamples);
  haveOutFrame_ = false;
  publishStats();
}

void Session::inbandOut(DtmfReceiver::Out o) {
  if (dtmfOutCount >= 8) return;
  o.durationTs *= static_cast<uint32_t>(rxClock() / 8000);  // 8 kHz samples → the stream's RTP clock, like RFC 4733 durations
  dtmfOut[dtmfOutCount++] = o;
  if (o.kind == DtmfReceiver::Out::End) dtmfIn_.fetch_add(1, std::memory_order_relaxed);
}

Session::RxResult Session::onDatagram(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs, VadTick* vt) {
  // SRTP: authenticate and decrypt a copy (libsrtp works in place) before anything reads it.
  uint8_t clear[kMaxSrtpDatagram];
  if (srtp_) {
    if (looksLikeRtcp(data, len)) {
      onRtcp(data, len, src, nowNs);  // SRTCP multiplexed on the RTP port (RFC 5761)
      return RxResult::Ignored;
    }
    if (len > sizeof clear) {
      invalidIn_.fetch_add(1, std::memory_order_relaxed);
      return RxResult::Ignored;
    }
    srtpTakeRekey();
    std::memcpy(clear, data, len);
    if (!srtpRxOk(srtp_->unprotectRtp(clear, &len))) return RxResult::Ignored;
    data = clear;
  }
  RtpPacket p;
  const RtpStatus st = parseRtp(data, len, &p);
  if (st == RtpStatus::Rtcp) {
    // RTCP multiplexed on the RTP port (RFC 5761); with SRTP it was recognised above, so this
    // is a decrypted packet that only looks like one.
    if (srtp_) invalidIn_.fetch_add(1, std::memory_order_relaxed);
    else onRtcp(data, len, src, nowNs);
    return RxResult::Ignored;
  }
  if (st != RtpStatus::Ok) {
    invalidIn_.fetch_add(1, std::memory_order_relaxed);
    return RxResult::Ignored;
  }
  syncCodec();
  bool newlyLatched = false;
  bool isTe = false;
  int teClock = 8000;
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
    teClock = clockOf(codec_);
  }
  (void)teClock;
  if (!isTe && !playout_.accepts(p.payloadType)) {
    invalidIn_.fetch_add(1, std::memory_order_relaxed);
    return newlyLatched ? RxResult::Latched : RxResult::Ignored;
  }
  packetsIn_.fetch_add(1, std::memory_order_relaxed);
  bytesIn_.fetch_add(len, std::memory_order_relaxed);
  lastRxNs_.store(nowNs, std::memory_order_relaxed);
  if (isTe) {
    teIn_.fetch_add(1, std::memory_order_relaxed);
    DtmfReceiver::Out out[3];
    const int n = dtmfRx_.onPacket(p.timestamp, p.payload, p.payloadLen, nowNs, out);
    for (int i = 0; i < n && dtmfOutCount < 8; ++i) {
      dtmfOut[dtmfOutCount++] = out[i];
      if (out[i].kind == DtmfReceiver::Out::End) dtmfIn_.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    const JitterBuffer::PutResult put = playout_.put(p, nowNs);
    if (vad_ && vadAheadMode() && put != JitterBuffer::PutResult::TooBig) {
      VadState& v = *vad_;
      if (put == JitterBuffer::PutResult::Reset) v.ahead.reset();  // new source / clock: re-anchor
      int16_t pcm[vad::ReadAhead::kMaxPacket];
      const size_t n = std::min(p.payloadLen, vad::ReadAhead::kMaxPacket);
      g711Decode(p.payloadType == 8 ? Codec::PCMA : p.payloadType == 0 ? Codec::PCMU : rxCodec_, p.payload, n, pcm);
      v.tickNs = nowNs;
      v.feedTick = vt;
      v.ahead.onPacket(p.timestamp, pcm, n, nowNs, &Session::aheadSink, this);
      v.feedTick = nullptr;
    }
  }
  return newlyLatched ? RxResult::Latched : RxResult::Accepted;
}

void Session::onRtcp(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs) {
  if (!srtp_) {
    rtcpPlain(data, len, src, nowNs);
    return;
  }
  uint8_t clear[kMaxSrtpDatagram];
  if (len > sizeof clear) {
    ++rtcp_.invalidIn;
    return;
  }
  srtpTakeRekey();
  std::memcpy(clear, data, len);
  if (!srtpRxOk(srtp_->unprotectRtcp(clear, &len))) return;
  rtcpPlain(clear, len, src, nowNs);
}

void Session::rtcpPlain(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs) {
  RtcpParsed r;
  if (parseRtcp(data, len, ssrc_, &r) != RtcpStatus::Ok) {
    ++rtcp_.invalidIn;
    return;
  }
  ++rtcp_.packetsIn;
  {
    std::lock_guard<std::mutex> lk(mu_);
    rtcpSource_ = src;
  }
  if (r.haveSr) {
    rtcp_.haveSr = true;
    lastSrMiddle_ = ntpMiddle(r.ntp);
    lastSrArrivalNs_ = nowNs;
  }
  if (r.haveBlock) {
    rtcp_.haveRemoteReport = true;
    rtcp_.remoteFractionLost = r.block.fractionLost / 256.0;
    rtcp_.remoteCumulativeLost = r.block.cumulativeLost;
    rtcp_.remoteJitterMs = r.block.jitter * 1000.0 / clockOf(rxCodec_);
    if (r.block.lsr != 0) {
      const uint32_t a = ntpMiddle(ntpNow());
      const uint32_t rtt = a - r.block.lsr - r.block.dlsr;
      if (rtt < 0x80000000u) rtcp_.rttMs = rtt * 1000.0 / 65536.0;
    }
  }
}

size_t Session::buildRtcp(uint8_t* buf, size_t cap, int64_t nowNs, SockAddr* dest) {
  if (cfg_.rtcpIntervalMs <= 0 || rtcpFd_ < 0) return 0;
  if (nextRtcpNs_ == 0) {
    nextRtcpNs_ = nowNs + rtcpDelayNs(cfg_.rtcpIntervalMs / 2);  // first report after half an interval
    return 0;
  }
  if (nowNs < nextRtcpNs_) return 0;
  nextRtcpNs_ = nowNs + rtcpDelayNs(cfg_.rtcpIntervalMs);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (rtcpSource_.valid()) {
      *dest = rtcpSource_;
    } else {
      const SockAddr* rtp = latched_ ? &latchedAddr_ : signalled_.valid() ? &signalled_ : nullptr;
      if (!rtp) return 0;
      *dest = *rtp;
      const uint16_t port = !latched_ && signalledRtcpPort_ ? signalledRtcpPort_ : static_cast<uint16_t>(rtp->port() + 1);
      if (dest->ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&dest->ss)->sin_port = htons(port);
      else reinterpret_cast<sockaddr_in6*>(&dest->ss)->sin6_port = htons(port);
    }
  }
  RtcpReportInput in;
  in.ssrc = ssrc_;
  in.sender = packetsSinceReport_ > 0;
  packetsSinceReport_ = 0;
  in.ntp = ntpNow();
  in.rtpTs = ts_;
  in.packetsSent = static_cast<uint32_t>(packetsOut_.load(std::memory_order_relaxed));
  in.octetsSent = static_cast<uint32_t>(bytesOut_.load(std::memory_order_relaxed) - 12 * packetsOut_.load(std::memory_order_relaxed));
  const JitterBuffer& jb = playout_.jitterBuffer();
  if (jb.haveSource()) {
    const JitterStats& js = jb.stats();
    in.haveBlock = true;
    RtcpReportBlock& b = in.block;
    b.ssrc = jb.ssrc();
    const uint64_t expInt = js.expected - std::min(prevExpected_, js.expected);
    const uint64_t recInt = js.received - std::min(prevReceived_, js.received);
    prevExpected_ = js.expected;
    prevReceived_ = js.received;
    const int64_t lostInt = static_cast<int64_t>(expInt) - static_cast<int64_t>(recInt);
    b.fractionLost = expInt == 0 || lostInt <= 0 ? 0 : static_cast<uint8_t>(std::min<int64_t>(255, (lostInt << 8) / static_cast<int64_t>(expInt)));
    b.cumulativeLost = static_cast<int32_t>(std::clamp<int64_t>(js.lost, -0x800000, 0x7FFFFF));
    b.extHighestSeq = jb.extHighestSeq();
    b.jitter = jb.jitterTs();
    if (lastSrMiddle_) {
      b.lsr = lastSrMiddle_;
      b.dlsr = static_cast<uint32_t>((nowNs - lastSrArrivalNs_) * 65536 / 1'000'000'000LL);
    }
  }
  char cname[32];
  std::snprintf(cname, sizeof cname, "voice-%08x", ssrc_);
  in.cname = cname;
  const size_t n = writeRtcpReport(in, buf, cap);
  if (n) ++rtcp_.packetsOut;
  return n;
}

}  // namespace voice
