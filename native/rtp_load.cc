#include "rtp_load.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "rtp.h"

namespace voice {

namespace {
constexpr int64_t kFrameNs = 20'000'000;
constexpr int64_t kStepNs = 1'000'000;
constexpr size_t kPayload = 160;
constexpr size_t kPacket = 12 + kPayload;
constexpr int kBatch = 256;

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}
int64_t threadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}
}  // namespace

void RtpLoad::Hist::add(double us) {
  const double v = std::max(0.0, std::round(us));
  if (v < 10000) ++fine[static_cast<size_t>(v)];
  else ++coarse[std::min<size_t>(9999, static_cast<size_t>(v / 100))];
  ++count;
  if (v > max) max = v;
}

double RtpLoad::Hist::pct(double p) const {
  if (count == 0) return 0;
  const uint64_t want = static_cast<uint64_t>(std::ceil(p / 100 * static_cast<double>(count)));
  uint64_t seen = 0;
  for (size_t i = 0; i < fine.size(); ++i) {
    seen += fine[i];
    if (seen >= want) return static_cast<double>(i);
  }
  for (size_t i = 100; i < coarse.size(); ++i) {
    seen += coarse[i];
    if (seen >= want) return static_cast<double>(i * 100);
  }
  return max;
}

void RtpLoad::Hist::clear() {
  std::fill(fine.begin(), fine.end(), 0);
  std::fill(coarse.begin(), coarse.end(), 0);
  count = 0;
  max = 0;
}

RtpLoad::RtpLoad(RtpLoadConfig cfg) : cfg_(std::move(cfg)), byPort_(65536, -1), rng_(cfg_.seed * 2654435761u + 1) {
  if (cfg_.voices.empty()) throw std::runtime_error("RtpLoad: no voices");
  for (const auto& v : cfg_.voices)
    if (v.size() < kPayload || v.size() % kPayload != 0) throw std::runtime_error("RtpLoad: a voice must be whole 160-byte frames");
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("RtpLoad: socket: ") + std::strerror(errno));
  const int buf = 8 << 20, on = 1;
  // Room for a few hundred ms of every caller's packets; past net.core.[rw]mem_max only as root.
  if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) != 0) setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    close(fd_);
    throw std::runtime_error(std::string("RtpLoad: bind: ") + std::strerror(e));
  }
  socklen_t len = sizeof a;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
}

RtpLoad::~RtpLoad() {
  stop();
  if (fd_ >= 0) close(fd_);
}

uint64_t RtpLoad::next() {
  rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
  return rng_;
}

double RtpLoad::uniform() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }

double RtpLoad::jitterNs() { return (uniform() * 2 - 1) * cfg_.jitterMs * 1e6; }

void RtpLoad::start(const std::vector<int>& targets) {
  if (running_.load() || thread_.joinable()) throw std::runtime_error("RtpLoad: already started");
  for (const int p : targets)
    if (p < 1 || p > 65535) throw std::runtime_error("RtpLoad: target port out of range");
  targets_ = targets;
  streams_.assign(targets.size(), Stream{});
  for (size_t i = 0; i < streams_.size(); ++i) {
    byPort_[static_cast<size_t>(targets[i])] = static_cast<int32_t>(i);
    Stream& s = streams_[i];
    const uint64_t r = next();
    s.ssrc = static_cast<uint32_t>(r >> 32) ^ static_cast<uint32_t>(i);
    s.seq = static_cast<uint16_t>(r >> 16);
    s.ts = static_cast<uint32_t>(r);
    s.frame = static_cast<size_t>(r >> 50) % 100;
  }
  const int64_t t0 = nowNs() + 5'000'000;
  for (Stream& s : streams_) {
    s.idealNs = t0 + static_cast<int64_t>(uniform() * kFrameNs);  // phases spread over the 20 ms
    s.dueNs = s.idealNs + static_cast<int64_t>(std::fabs(jitterNs()));
  }
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void RtpLoad::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

void RtpLoad::mark() {
  std::lock_guard<std::mutex> lk(mu_);
  measuring_ = true;
  markNs_ = nowNs();
  markCpuNs_ = threadCpuNs_.load();
  sent_ = dropped_ = sendErrors_ = rxPackets_ = rxGaps_ = rxUnknown_ = 0;
  rx_.clear();
  late_.clear();
}

RtpLoadReport RtpLoad::report() {
  std::lock_guard<std::mutex> lk(mu_);
  RtpLoadReport r;
  r.seconds = static_cast<double>(nowNs() - markNs_) / 1e9;
  r.sent = sent_;
  r.dropped = dropped_;
  r.sendErrors = sendErrors_;
  r.rxPackets = rxPackets_;
  r.rxIntervals = rx_.count;
  r.rxGaps = rxGaps_;
  r.rxUnknown = rxUnknown_;
  r.rxP50Us = rx_.pct(50);
  r.rxP99Us = rx_.pct(99);
  r.rxMaxUs = rx_.max;
  r.sendLateP50Us = late_.pct(50);
  r.sendLateP99Us = late_.pct(99);
  r.cpuPct = r.seconds > 0 ? static_cast<double>(threadCpuNs_.load() - markCpuNs_) / 1e9 / r.seconds * 100 : 0;
  return r;
}

void RtpLoad::run() {
  std::vector<uint8_t> out(static_cast<size_t>(kBatch) * kPacket);
  std::vector<sockaddr_in> to(kBatch);
  std::vector<iovec> txIov(kBatch);
  std::vector<mmsghdr> txMsg(kBatch);
  std::vector<double> lateUs;
  lateUs.reserve(kBatch);
  std::vector<uint8_t> in(static_cast<size_t>(kBatch) * 2048);
  std::vector<iovec> rxIov(kBatch);
  std::vector<mmsghdr> rxMsg(kBatch);
  std::vector<sockaddr_in> from(kBatch);
  std::vector<char> ctl(static_cast<size_t>(kBatch) * 64);
  struct RxRec { int32_t stream; int seq; int64_t atNs; };
  std::vector<RxRec> got;
  got.reserve(kBatch);
  int64_t step = nowNs();
  while (running_.load(std::memory_order_relaxed)) {
    step += kStepNs;
    timespec ts{static_cast<time_t>(step / 1'000'000'000LL), static_cast<long>(step % 1'000'000'000LL)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    const int64_t now = nowNs();
    if (now - step > 100 * kStepNs) step = now;  // far behind (stopped, suspended): do not replay the past step by step
    uint64_t sent = 0, dropped = 0, errors = 0;
    lateUs.clear();
    // Send what is due, in batches of kBatch.
    int n = 0;
    auto flush = [&]() {
      int off = 0;
      while (off < n) {
        const int k = sendmmsg(fd_, txMsg.data() + off, static_cast<unsigned>(n - off), 0);
        if (k <= 0) {
          errors += static_cast<uint64_t>(n - off);
          break;
        }
        off += k;
      }
      n = 0;
    };
    for (size_t i = 0; i < streams_.size(); ++i) {
      Stream& s = streams_[i];
      // at most a few per step: a late step catches up without an unbounded burst
      for (int k = 0; k < 3 && s.dueNs <= now; ++k) {
        const std::vector<uint8_t>& voice = cfg_.voices[i % cfg_.voices.size()];
        const size_t frames = voice.size() / kPayload;
        const uint8_t* payload = voice.data() + (s.frame++ % frames) * kPayload;
        if (uniform() * 100 >= cfg_.lossPct) {
          uint8_t* p = out.data() + static_cast<size_t>(n) * kPacket;
          writeRtpHeader(p, false, 0, s.seq, s.ts, s.ssrc);
          std::memcpy(p + 12, payload, kPayload);
          sockaddr_in& d = to[static_cast<size_t>(n)];
          d = sockaddr_in{};
          d.sin_family = AF_INET;
          d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          d.sin_port = htons(static_cast<uint16_t>(targets_[i]));
          txIov[static_cast<size_t>(n)] = iovec{p, kPacket};
          mmsghdr& m = txMsg[static_cast<size_t>(n)];
          m = mmsghdr{};
          m.msg_hdr.msg_name = &d;
          m.msg_hdr.msg_namelen = sizeof d;
          m.msg_hdr.msg_iov = &txIov[static_cast<size_t>(n)];
          m.msg_hdr.msg_iovlen = 1;
          ++sent;
          lateUs.push_back(static_cast<double>(std::max<int64_t>(0, now - s.dueNs)) / 1e3);
          if (++n == kBatch) flush();
        } else {
          ++dropped;
        }
        ++s.seq;
        s.ts += kPayload;
        s.idealNs += kFrameNs;
        s.dueNs = std::max(s.dueNs, s.idealNs + static_cast<int64_t>(jitterNs()));
      }
    }
    flush();
    // Drain what came back.
    got.clear();
    uint64_t unknown = 0;
    for (;;) {
      for (int i = 0; i < kBatch; ++i) {
        rxIov[static_cast<size_t>(i)] = iovec{in.data() + static_cast<size_t>(i) * 2048, 2048};
        mmsghdr& m = rxMsg[static_cast<size_t>(i)];
        m = mmsghdr{};
        m.msg_hdr.msg_name = &from[static_cast<size_t>(i)];
        m.msg_hdr.msg_namelen = sizeof(sockaddr_in);
        m.msg_hdr.msg_iov = &rxIov[static_cast<size_t>(i)];
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_control = ctl.data() + static_cast<size_t>(i) * 64;
        m.msg_hdr.msg_controllen = 64;
      }
      const int k = recvmmsg(fd_, rxMsg.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (k <= 0) break;
      const int64_t fallback = nowNs();
      // The kernel stamps CLOCK_REALTIME: its offset to the monotonic clock, once per batch.
      timespec rt;
      clock_gettime(CLOCK_REALTIME, &rt);
      const int64_t realToMono = static_cast<int64_t>(rt.tv_sec) * 1'000'000'000LL + rt.tv_nsec - nowNs();
      for (int i = 0; i < k; ++i) {
        const mmsghdr& m = rxMsg[static_cast<size_t>(i)];
        const int32_t idx = byPort_[ntohs(from[static_cast<size_t>(i)].sin_port)];
        RtpPacket pkt;
        if (idx < 0 || parseRtp(in.data() + static_cast<size_t>(i) * 2048, m.msg_len, &pkt) != RtpStatus::Ok) {
          ++unknown;
          continue;
        }
        int64_t at = fallback;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
            timespec t;
            std::memcpy(&t, CMSG_DATA(c), sizeof t);
            at = static_cast<int64_t>(t.tv_sec) * 1'000'000'000LL + t.tv_nsec - realToMono;
          }
        }
        got.push_back(RxRec{idx, pkt.seq, at});
      }
      if (k < kBatch) break;
    }
    threadCpuNs_.store(threadCpuNs(), std::memory_order_relaxed);
    std::lock_guard<std::mutex> lk(mu_);
    rxUnknown_ += unknown;
    for (const RxRec& r : got) {
      Stream& s = streams_[static_cast<size_t>(r.stream)];
      if (measuring_) {
        ++rxPackets_;
        if (s.lastRxSeq >= 0 && r.seq == ((s.lastRxSeq + 1) & 0xffff)) {
          const double d = static_cast<double>(r.atNs - s.lastRxNs) / 1e6;
          if (d > 60) ++rxGaps_;
          else rx_.add(std::fabs(d - 20) * 1000);
        }
      }
      s.lastRxSeq = r.seq;
      s.lastRxNs = r.atNs;
    }
    if (measuring_) {
      sent_ += sent;
      dropped_ += dropped;
      sendErrors_ += errors;
      for (const double l : lateUs) late_.add(l);
    }
  }
}

}  // namespace voice
