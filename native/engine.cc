#include "engine.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "rtp.h"

namespace voice {
namespace {
constexpr uint64_t kWakeTag = 0;                // session ids start at 1
constexpr uint64_t kTimerTag = UINT64_MAX;
constexpr uint64_t kSocketsTag = UINT64_MAX - 1;  // the inner epoll of all session sockets is readable
constexpr uint64_t kRtcpTag = uint64_t{1} << 32;  // tag = session id | kRtcpTag for the RTCP socket
constexpr int kRxBatch = 16;                    // datagrams per recvmmsg
constexpr int kRxRounds = 4;                    // recvmmsg calls per readiness event (fairness)
constexpr size_t kRxMtu = 2048;
constexpr int kMaxEvents = 64;
}  // namespace

struct Engine::RxBuffers {
  uint8_t data[kRxBatch][kRxMtu];
  sockaddr_storage from[kRxBatch];
  iovec iov[kRxBatch];
  mmsghdr msgs[kRxBatch];
};

Engine::Engine(const EngineOptions& opts, std::shared_ptr<BatchPool> pool, Sink sink)
    : bind_(), ports_(SockAddr(), 0, 0), ports6_(SockAddr(), 0, 0), pool_(std::move(pool)), sink_(std::move(sink)), rx_(new RxBuffers()) {
  std::string err;
  if (!parseAddress(opts.bindAddress, 0, &bind_, &err)) throw std::runtime_error("bindAddress: " + err);
  if (opts.portMin < 1 || opts.portMax > 65535 || opts.portMin > opts.portMax)
    throw std::runtime_error("invalid RTP port range " + std::to_string(opts.portMin) + "-" + std::to_string(opts.portMax));
  ports_ = PortAllocator(bind_, opts.portMin, opts.portMax);
  if (!opts.bindAddress6.empty()) {
    SockAddr b6;
    if (!parseAddress(opts.bindAddress6, 0, &b6, &err)) throw std::runtime_error("bindAddress6: " + err);
    if (b6.ss.ss_family != AF_INET6) throw std::runtime_error("bindAddress6: not an IPv6 address: '" + opts.bindAddress6 + "'");
    ports6_ = PortAllocator(b6, opts.portMin, opts.portMax, /*v6only=*/true);
    have6_ = true;
  }
  rtPriority_ = opts.rtPriority;
  if (opts.idFirst < 1 || opts.idStride < 1) throw std::runtime_error("idFirst and idStride must be >= 1");
  nextId_ = opts.idFirst;
  idStride_ = opts.idStride;

  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  sockEpfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epfd_ < 0 || sockEpfd_ < 0 || wakefd_ < 0 || timerfd_ < 0) {
    const std::string e = std::strerror(errno);
    stop();
    throw std::runtime_error("media engine: cannot create epoll/eventfd/timerfd: " + e);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
  ev.data.u64 = kTimerTag;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, timerfd_, &ev);
  ev.data.u64 = kSocketsTag;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, sockEpfd_, &ev);  // removed while batching reads (updateReadBatching)

  for (int i = 0; i < kRxBatch; ++i) {
    rx_->iov[i].iov_base = rx_->data[i];
    rx_->iov[i].iov_len = kRxMtu;
    std::memset(&rx_->msgs[i], 0, sizeof(mmsghdr));
    rx_->msgs[i].msg_hdr.msg_iov = &rx_->iov[i];
    rx_->msgs[i].msg_hdr.msg_iovlen = 1;
    rx_->msgs[i].msg_hdr.msg_name = &rx_->from[i];
  }
  for (auto& s : slots_) s.reserve(64);
  vadTick_.ids.reserve(256);
  vadTick_.windows.reserve(256 * vad::kVadWindow);
  vadTick_.lagging.reserve(256);
  vadTimers_.reserve(256);
  work_.reserve(64);
  cmds_.reserve(64);

  epoch_ = monoNs();
  vadEpoch_ = epoch_ + static_cast<int64_t>((opts.idFirst - 1) % opts.idStride) * kVadTickNs / opts.idStride;
  cursorNs_ = epoch_;
  nextBatchNs_ = epoch_ + kEventBatchNs;
  running_ = true;
  thread_ = std::thread([this] { run(); });
  std::unique_lock<std::mutex> lk(startMu_);
  startCv_.wait(lk, [this] { return started_; });
}

Engine::~Engine() { stop(); }

void Engine::stop() {
  if (thread_.joinable()) {
    submit(Command{Command::Stop, nullptr, nullptr, nullptr});
    thread_.join();
  }
  running_ = false;
  // The media thread is gone: the JS thread now owns everything.
  if (pending_) {
    pool_->give(pending_);
    pending_ = nullptr;
  }
  live_.clear();
  for (auto& s : slots_) s.clear();
  for (auto& kv : sessions_) kv.second->closeFd();
  sessions_.clear();
  for (int* fd : {&epfd_, &sockEpfd_, &wakefd_, &timerfd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void Engine::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(wakefd_, &one, sizeof one);
  (void)r;  // EAGAIN means a wake-up is already pending
}

uint64_t Engine::submit(Command c) {
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lk(cmdMu_);
    cmds_.push_back(std::move(c));
    seq = ++submitted_;
  }
  wake();
  return seq;
}

void Engine::waitDone(uint64_t seq) {
  std::unique_lock<std::mutex> lk(cmdMu_);
  cmdCv_.wait(lk, [&] { return done_ >= seq || exited_; });
}

bool Engine::serves(int family) const {
  const int f = bind_.ss.ss_family;
  if (family == 6) return have6_ || f == AF_INET6;
  if (family == 4) return f == AF_INET || ports_.dualStack();
  return true;
}

std::shared_ptr<Session> Engine::createSession(Codec codec, uint8_t pt, int tePt, const SockAddr* remoteIn, std::string* err,
                                              const SessionConfig& cfg, int family, const SrtpKeys* srtp) {
  if (!running_) {
    if (err) *err = "media engine is closed";
    return nullptr;
  }
  if (!serves(family)) {
    if (err) *err = family == 6 ? "no IPv6 media address configured" : "no IPv4 media address configured";
    return nullptr;
  }
  PortAllocator& ports = family == 6 && have6_ ? ports6_ : ports_;
  SockAddr remote;
  if (remoteIn) {
    remote = *remoteIn;
    if (!adaptRemote(ports.bindAddress(), ports.dualStack(), &remote, err)) return nullptr;
  }
  SockAddr local;
  int rtcpFd = -1;
  const int fd = ports.openPair(&local, &rtcpFd, err);
  if (fd < 0) return nullptr;
  std::shared_ptr<Session> s;
  try {
    s = std::make_shared<Session>(nextId_, fd, local, codec, pt, tePt, cfg, rtcpFd);
    nextId_ += idStride_;
    if (srtp) s->initSrtp(srtp->suite, srtp->local, srtp->remote);  // before the media thread can see it
  } catch (const std::exception& e) {
    if (s) {
      s.reset();  // the session owns the sockets now: its destructor closes them
    } else {
      ::close(fd);
      if (rtcpFd >= 0) ::close(rtcpFd);
    }
    if (err) *err = e.what();
    return nullptr;
  }
  s->dualStack = ports.dualStack();
  if (remoteIn) s->setRemote(remote);
  sessions_[s->id] = s;
  submit(Command{Command::Add, s, nullptr, nullptr});
  return s;
}

bool Engine::closeSession(uint32_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  std::shared_ptr<Session> s = it->second;
  sessions_.erase(it);
  if (s->bridgedWithJs) {
    auto peer = find(s->bridgedWithJs);
    if (peer) peer->bridgedWithJs = 0;
  }
  if (thread_.joinable()) waitDone(submit(Command{Command::Remove, s, nullptr, nullptr}));
  s->closeFd();  // media thread no longer polls it: the port is free again now
  if (s->recorderJs) {
    s->recorderJs->stop();  // the media thread has dropped its reference: finish the file here
    s->recorderJs.reset();
  }
  return true;
}

bool Engine::bridge(uint32_t a, uint32_t b, std::string* err) {
  auto sa = find(a), sb = find(b);
  if (!sa || !sb) {
    if (err) *err = "no such media session";
    return false;
  }
  if (a == b) {
    if (err) *err = "cannot bridge a session with itself";
    return false;
  }
  if (sa->bridgedWithJs || sb->bridgedWithJs) {
    if (err) *err = "session is already bridged";
    return false;
  }
  sa->bridgedWithJs = b;
  sb->bridgedWithJs = a;
  if (thread_.joinable()) waitDone(submit(Command{Command::Bridge, sa, sb, nullptr}));
  return true;
}

bool Engine::unbridge(uint32_t a) {
  auto sa = find(a);
  if (!sa || !sa->bridgedWithJs) return false;
  auto sb = find(sa->bridgedWithJs);
  if (sb) sb->bridgedWithJs = 0;
  sa->bridgedWithJs = 0;
  if (thread_.joinable()) waitDone(submit(Command{Command::Unbridge, sa, nullptr, nullptr}));
  return true;
}

void Engine::setRecorder(uint32_t id, std::shared_ptr<Recorder> rec) {
  auto s = find(id);
  if (!s) return;
  if (thread_.joinable()) waitDone(submit(Command{Command::SetRecorder, s, nullptr, rec}));
}

std::shared_ptr<Session> Engine::find(uint32_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

// ------------------------------------------------------------------ media thread

bool Engine::processCommands() {
  uint64_t drained = 0;
  {
    std::lock_guard<std::mutex> lk(cmdMu_);
    work_.swap(cmds_);
    drained = submitted_;
  }
  bool keepRunning = true;
  const int64_t now = monoNs();
  for (Command& c : work_) {
    if (c.kind == Command::Stop) {
      keepRunning = false;
    } else if (c.kind == Command::Add) {
      Session* s = c.session.get();
      if (live_.empty()) {
        // Idle engine: restart the slot cursor at the current instant.
        tick_ = (now - epoch_) / kTickNs;
        cursorSlot_ = 0;
        cursorNs_ = epoch_ + tick_ * kTickNs;
      }
      int best = 0;
      for (int i = 1; i < kSlots; ++i)
        if (slots_[i].size() < slots_[best].size()) best = i;
      s->slot = best;
      s->startNs = now + kStartDelayNs;
      slots_[best].push_back(s);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = s->id;
      epoll_ctl(sockEpfd_, EPOLL_CTL_ADD, s->fd(), &ev);
      if (s->rtcpFd() >= 0) {
        ev.data.u64 = s->id | kRtcpTag;
        epoll_ctl(sockEpfd_, EPOLL_CTL_ADD, s->rtcpFd(), &ev);
      }
      live_.emplace(s->id, c.session);
    } else if (c.kind == Command::Bridge) {
      if (live_.count(c.session->id) && live_.count(c.other->id)) {
        c.session->setPeer(c.other.get());
        c.other->setPeer(c.session.get());
      }
    } else if (c.kind == Command::Unbridge) {
      Session* s = c.session.get();
      if (s->peer()) s->peer()->setPeer(nullptr);
      s->setPeer(nullptr);
    } else if (c.kind == Command::VadResults) {
      applyVad(c.ids, c.probs);
    } else if (c.kind == Command::SetRecorder) {
      c.session->setRecorder(std::move(c.recorder));
    } else {
      Session* s = c.session.get();
      auto it = live_.find(s->id);
      if (it != live_.end()) {
        epoll_ctl(sockEpfd_, EPOLL_CTL_DEL, s->fd(), nullptr);
        if (s->rtcpFd() >= 0) epoll_ctl(sockEpfd_, EPOLL_CTL_DEL, s->rtcpFd(), nullptr);
        if (s->peer()) s->peer()->setPeer(nullptr);
        s->setPeer(nullptr);
        s->setRecorder(nullptr);
        auto& v = slots_[s->slot];
        for (size_t i = 0; i < v.size(); ++i)
          if (v[i] == s) { v[i] = v.back(); v.pop_back(); break; }
        s->clearPending();
        live_.erase(it);
      }
    }
    c.session.reset();
    c.other.reset();
    c.recorder.reset();
  }
  work_.clear();
  updateReadBatching();
  {
    std::lock_guard<std::mutex> lk(cmdMu_);
    done_ = drained;
  }
  cmdCv_.notify_all();
  return keepRunning;
}

void Engine::updateReadBatching() {
  // Batched reads pay once every slot has a session: the clock then wakes the thread every
  // kSlotNs anyway, and reading all sockets at those wake-ups replaces one wake-up (context
  // switch + epoll_wait) per inbound packet. A packet waits at most one slot (1 ms) to be read.
  bool all = !live_.empty();
  for (const auto& v : slots_) all = all && !v.empty();
  if (all == batchReads_) return;
  if (all) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, sockEpfd_, nullptr);
  } else {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kSocketsTag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, sockEpfd_, &ev);
  }
  batchReads_ = all;
}

void Engine::readSockets() {
  epoll_event evs[kMaxEvents];
  // Level-triggered: a socket left unread (more rounds than this) is reported again next time.
  for (int round = 0; round < 8; ++round) {
    const int n = epoll_wait(sockEpfd_, evs, kMaxEvents, 0);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = evs[i].data.u64;
      auto it = live_.find(static_cast<uint32_t>(tag));
      if (it == live_.end()) continue;
      if (tag & kRtcpTag) readRtcp(it->second.get());
      else readSession(it->second.get());
    }
    if (n < kMaxEvents) return;
  }
}

int64_t Engine::nextSlotDeadline() const {
  if (live_.empty()) return INT64_MAX;
  int64_t t = cursorNs_;
  int slot = cursorSlot_;
  for (int i = 0; i < kSlots; ++i) {
    if (!slots_[slot].empty()) return t;
    t += kSlotNs;
    if (++slot == kSlots) slot = 0;
  }
  return INT64_MAX;
}

void Engine::runDueSlots(int64_t now) {
  if (live_.empty()) return;
  if (now - cursorNs_ > kMaxLagNs) {
    // Stalled (suspend, debugger, overload): jump to the current slot instead of bursting.
    const int64_t slotsBehind = (now - cursorNs_) / kSlotNs;
    const int64_t pos = tick_ * kSlots + cursorSlot_ + slotsBehind;
    tick_ = pos / kSlots;
    cursorSlot_ = static_cast<int>(pos % kSlots);
    cursorNs_ += slotsBehind * kSlotNs;
  }
  while (cursorNs_ <= now) {
    for (Session* s : slots_[cursorSlot_]) sendTick(s, tick_, cursorNs_);
    cursorNs_ += kSlotNs;
    if (++cursorSlot_ == kSlots) {
      cursorSlot_ = 0;
      ++tick_;
    }
  }
}

void Engine::sendTick(Session* s, int64_t tick, int64_t deadline) {
  if (deadline < s->startNs) return;
  uint8_t pkt[kMaxRtpPacket + kSrtpTrailer];
  SockAddr dest;
  bool playoutDone = false;
  size_t len = s->buildPacket(pkt, kMaxRtpPacket, tick, &dest, &playoutDone);
  if (len) len = s->sealRtp(pkt, len, sizeof pkt);  // SRTP: protect on the paced path (no-op without)
  if (len) {
    const int64_t t = monoNs();
    const ssize_t r = ::sendto(s->fd(), pkt, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&dest.ss), dest.len);
    pacing_.record(t - deadline);
    s->onSent(len, r == static_cast<ssize_t>(len));
  }
  if (playoutDone) {
    newEvent(EventType::PlayoutDone, s->id);
    urgent_ = true;
  }
  // Inbound playout runs after the deadline-bound send: JB → decode → PCM, bridge, recorder.
  const int64_t now = monoNs();
  s->playoutTick(now, &vadTick_, now - deadline > kTickNs / 2);  // late: a catch-up tick
  emitDtmf(s);
  if (s->rtcpFd() >= 0) {
    size_t n = s->buildRtcp(pkt, kMaxRtpPacket, now, &dest);
    if (n) n = s->sealRtcp(pkt, n, sizeof pkt);
    if (n) ::sendto(s->rtcpFd(), pkt, n, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&dest.ss), dest.len);
  }
}

void Engine::vadResults(std::vector<uint32_t> ids, std::vector<float> probs) {
  if (!thread_.joinable()) return;
  Command c(Command::VadResults, nullptr, nullptr, nullptr);
  c.ids = std::move(ids);
  c.probs = std::move(probs);
  submit(std::move(c));
}

void Engine::applyVad(const std::vector<uint32_t>& ids, const std::vector<float>& probs) {
  const size_t n = std::min(ids.size(), probs.size());
  for (size_t i = 0; i < n; ++i) {
    auto it = live_.find(ids[i]);
    if (it == live_.end() || !it->second->vadEnabled()) continue;  // closed meanwhile
    Session* s = it->second.get();
    emitTurn(s, s->vadPush(probs[i]));
    if (s->vadEndpointAt() > 0 && !s->vadTimerListed) {
      s->vadTimerListed = true;
      vadTimers_.push_back(s->id);
    }
  }
}

void Engine::emitTurn(Session* s, const vad::TurnOutput& o) {
  if (!o.events && !o.pause && !o.resume) return;
  const uint32_t voiced = static_cast<uint32_t>(o.voicedMs);
  if (o.pause) newEvent(EventType::Pause, s->id).durationMs = voiced;
  // Firing order: SpeechStart before BargeIn; the end of a turn last.
  if (o.events & vad::kEvSpeechStart) newEvent(EventType::SpeechStart, s->id).durationMs = voiced;
  if (o.events & vad::kEvBargeIn) newEvent(EventType::BargeIn, s->id).durationMs = voiced;
  if (o.events & vad::kEvBackchannel) newEvent(EventType::Backchannel, s->id).durationMs = voiced;
  if (o.events & vad::kEvFalseInterruption) newEvent(EventType::FalseInterruption, s->id).durationMs = voiced;
  if (o.resume) newEvent(EventType::Resume, s->id).durationMs = voiced;
  if (o.events & vad::kEvSpeechEnd) {
    Event& e = newEvent(EventType::SpeechEnd, s->id);
    e.durationMs = voiced;
    e.streamMs = s->vadTurnEndMs();
    e.pcmLen = s->copyUtterance(o.startFrame, o.endFrame, e.pcm);
  }
  urgent_ = true;
}

int64_t Engine::nextVadTimer() const {
  int64_t t = INT64_MAX;
  for (const uint32_t id : vadTimers_) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    const int64_t at = it->second->vadEndpointAt();
    if (at > 0 && at < t) t = at;
  }
  return t;
}

void Engine::runVadTimers(int64_t now) {
  size_t keep = 0;
  for (const uint32_t id : vadTimers_) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    Session* s = it->second.get();
    if (s->vadEndpointAt() > 0 && now >= s->vadEndpointAt()) emitTurn(s, s->vadEndpointDue(now));
    if (s->vadEndpointAt() > 0) vadTimers_[keep++] = id;
    else s->vadTimerListed = false;
  }
  vadTimers_.resize(keep);
}

void Engine::shipVad(int64_t now) {
  nextVadNs_ = now < vadEpoch_ ? vadEpoch_ : vadEpoch_ + ((now - vadEpoch_) / kVadTickNs + 1) * kVadTickNs;
  // Sessions holding windows back put the oldest in (closed ones drop out of the list).
  size_t keep = 0;
  for (const uint32_t id : vadTick_.lagging) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    if (it->second->vadTopUp(&vadTick_)) vadTick_.lagging[keep++] = id;
  }
  vadTick_.lagging.resize(keep);
  if (vadTick_.ids.empty()) return;
  Batch* b = pool_->take();
  Event& e = b->add();
  e.type = EventType::Vad;
  e.sessionId = 0;
  e.pcmLen = 0;
  // Swap buffers with the pooled event: capacity circulates, nothing is allocated once warm.
  e.ids.swap(vadTick_.ids);
  e.f32.swap(vadTick_.windows);
  vadTick_.ids.clear();
  vadTick_.windows.clear();
  ++vadTick_.seq;
  {
    std::lock_guard<std::mutex> lk(vadSinkMu_);
    if (vadSink_ && vadSink_(b)) return;  // a VAD worker takes it; else the JS thread (below)
  }
  if (!sink_(b)) pool_->give(b);
}

void Engine::setVadSink(Sink sink) {
  std::lock_guard<std::mutex> lk(vadSinkMu_);
  vadSink_ = std::move(sink);
}

void Engine::emitDtmf(Session* s) {
  for (int i = 0; i < s->dtmfOutCount; ++i) {
    const DtmfReceiver::Out& o = s->dtmfOut[i];
    Event& e = newEvent(o.kind == DtmfReceiver::Out::End ? EventType::Dtmf : EventType::DtmfStart, s->id);
    e.digit = o.digit;
    e.durationMs = static_cast<uint32_t>(static_cast<uint64_t>(o.durationTs) * 1000 / s->rxClock());
    urgent_ = true;
  }
  s->dtmfOutCount = 0;
}

void Engine::readRtcp(Session* s) {
  uint8_t buf[1500];
  for (int i = 0; i < 8; ++i) {
    SockAddr src;
    src.len = sizeof(sockaddr_storage);
    const ssize_t n = ::recvfrom(s->rtcpFd(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&src.ss), &src.len);
    if (n <= 0) return;
    s->onRtcp(buf, static_cast<size_t>(n), src, monoNs());
  }
}

void Engine::readSession(Session* s) {
  RxBuffers& rx = *rx_;
  for (int round = 0; round < kRxRounds; ++round) {
    for (int i = 0; i < kRxBatch; ++i) rx.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    const int n = recvmmsg(s->fd(), rx.msgs, kRxBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    const int64_t now = monoNs();
    for (int i = 0; i < n; ++i) {
      SockAddr src;
      std::memcpy(&src.ss, &rx.from[i], rx.msgs[i].msg_hdr.msg_namelen);
      src.len = rx.msgs[i].msg_hdr.msg_namelen;
      if (s->onDatagram(rx.data[i], rx.msgs[i].msg_len, src, now, &vadTick_) == Session::RxResult::Latched) {
        newEvent(EventType::Latched, s->id).addr = src;
        urgent_ = true;
      }
      if (s->dtmfOutCount) emitDtmf(s);
    }
    if (n < kRxBatch) return;
  }
}

Event& Engine::newEvent(EventType t, uint32_t id) {
  if (!pending_) pending_ = pool_->take();
  Event& e = pending_->add();
  e.type = t;
  e.sessionId = id;
  e.pcmLen = 0;
  return e;
}

void Engine::flushEvents() {
  for (auto& kv : live_) {
    Session* s = kv.second.get();
    const size_t n = s->pendingLen();
    if (n == 0) continue;
    if (!s->audioEvents()) {  // turned off after these samples were queued: nobody listens
      s->clearPending();
      continue;
    }
    Event& e = newEvent(EventType::Audio, s->id);
    if (e.pcm.size() < n) e.pcm.resize(std::max<size_t>(n, 640));  // grows only until the pool is warm
    std::memcpy(e.pcm.data(), s->pendingPcm(), n * sizeof(int16_t));
    e.pcmLen = n;
    s->clearPending();
  }
  urgent_ = false;
  if (pending_ && pending_->count > 0) {
    Batch* b = pending_;
    pending_ = nullptr;
    if (!sink_(b)) pool_->give(b);
  }
}

void Engine::armTimer(int64_t deadline) {
  if (deadline == armedNs_) return;
  itimerspec its{};
  if (deadline != INT64_MAX) {
    its.it_value.tv_sec = deadline / 1'000'000'000LL;
    its.it_value.tv_nsec = deadline % 1'000'000'000LL;
  }
  timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &its, nullptr);
  armedNs_ = deadline;
}

void Engine::run() {
  pthread_setname_np(pthread_self(), "voice-media");
  // Default timer slack is 50 µs; the pacing target needs the wake-up on time.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  // Pacing needs the thread to run when its timer fires, also while flite or
  // the JS thread keep both cores busy: ask for SCHED_FIFO, else a better nice.
  if (rtPriority_ > 0) {
    sched_param sp{};
    sp.sched_priority = std::min(rtPriority_, 99);
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0) sched_ = "fifo";
    else if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), -10) == 0) sched_ = "nice";
  }
  {
    std::lock_guard<std::mutex> lk(startMu_);
    started_ = true;
  }
  startCv_.notify_all();
  epoll_event evs[kMaxEvents];
  // Diagnostics (VOICE_MEDIA_PROFILE=1): per-section worst durations of the loop, printed every 5 s.
  const bool prof = std::getenv("VOICE_MEDIA_PROFILE") != nullptr;
  enum { P_WAKE, P_SLOTS, P_CMD, P_READ, P_SHIP, P_FLUSH, P_N };
  static const char* const kProfName[P_N] = {"wakeLate", "slots", "cmds", "read", "ship", "flush"};
  int64_t profMax[P_N] = {}, profOver1[P_N] = {};
  int64_t profNext = monoNs() + 5'000'000'000LL;
  auto profAdd = [&](int k, int64_t d) {
    if (d > profMax[k]) profMax[k] = d;
    if (d > 1'000'000) ++profOver1[k];
  };
  for (;;) {
    int64_t now = monoNs();
    if (prof && now >= profNext) {
      std::fprintf(stderr, "media-profile:");
      for (int k = 0; k < P_N; ++k) std::fprintf(stderr, " %s max %.2fms >1ms %lld;", kProfName[k], profMax[k] / 1e6, (long long)profOver1[k]);
      std::fprintf(stderr, "\n");
      for (int k = 0; k < P_N; ++k) profMax[k] = profOver1[k] = 0;
      profNext = now + 5'000'000'000LL;
    }
    runDueSlots(now);
    int64_t deadline = nextSlotDeadline();
    const bool haveAudio = !live_.empty();
    if (haveAudio && nextBatchNs_ < deadline) deadline = nextBatchNs_;
    if ((!vadTick_.ids.empty() || !vadTick_.lagging.empty()) && nextVadNs_ < deadline) deadline = nextVadNs_;
    if (!vadTimers_.empty()) deadline = std::min(deadline, nextVadTimer());
    armTimer(deadline);
    const int64_t armedAt = armedNs_;
    const int n = epoll_wait(epfd_, evs, kMaxEvents, -1);
    if (n < 0 && errno != EINTR) break;
    loops_.fetch_add(1, std::memory_order_relaxed);
    now = monoNs();
    if (prof && armedAt > 0 && armedAt != INT64_MAX && now >= armedAt) profAdd(P_WAKE, now - armedAt);
    runDueSlots(now);  // sending first: it is the deadline-bound work
    if (prof) profAdd(P_SLOTS, monoNs() - now);
    bool stopping = false;
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = evs[i].data.u64;
      const int64_t t0 = prof ? monoNs() : 0;
      if (tag == kWakeTag) {
        uint64_t v;
        ssize_t r = ::read(wakefd_, &v, sizeof v);
        (void)r;
        if (!processCommands()) stopping = true;
        if (prof) profAdd(P_CMD, monoNs() - t0);
      } else if (tag == kTimerTag) {
        uint64_t v;
        ssize_t r = ::read(timerfd_, &v, sizeof v);
        (void)r;
        armedNs_ = -1;
      } else if (tag == kSocketsTag) {
        readSockets();
        if (prof) profAdd(P_READ, monoNs() - t0);
      }
    }
    if (stopping) break;
    if (batchReads_) {
      // Every socket once per wake-up (the clock's, at most kSlotNs apart), after the sends.
      const int64_t t0 = prof ? monoNs() : 0;
      readSockets();
      if (prof) profAdd(P_READ, monoNs() - t0);
    }
    now = monoNs();
    if (!vadTimers_.empty()) runVadTimers(now);
    if ((!vadTick_.ids.empty() || !vadTick_.lagging.empty()) && now >= nextVadNs_) {
      shipVad(now);
      if (prof) profAdd(P_SHIP, monoNs() - now);
    }
    const int64_t tf = prof ? monoNs() : 0;
    if (now >= nextBatchNs_) {
      flushEvents();
      nextBatchNs_ += kEventBatchNs;
      if (nextBatchNs_ <= now) nextBatchNs_ = now + kEventBatchNs;
    } else if (urgent_) {
      flushEvents();
    }
    if (prof) profAdd(P_FLUSH, monoNs() - tf);
  }
  // Mark everything processed so no JS caller waits forever.
  std::lock_guard<std::mutex> lk(cmdMu_);
  done_ = submitted_;
  exited_ = true;
  cmdCv_.notify_all();
}

}  // namespace voice
