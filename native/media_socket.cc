#include "media_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace voice {

uint16_t SockAddr::port() const {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

std::string SockAddr::host() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  return buf;
}

bool SockAddr::sameEndpoint(const SockAddr& o) const {
  if (ss.ss_family != o.ss.ss_family) return false;
  if (ss.ss_family == AF_INET) {
    auto a = reinterpret_cast<const sockaddr_in*>(&ss);
    auto b = reinterpret_cast<const sockaddr_in*>(&o.ss);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (ss.ss_family == AF_INET6) {
    auto a = reinterpret_cast<const sockaddr_in6*>(&ss);
    auto b = reinterpret_cast<const sockaddr_in6*>(&o.ss);
    return a->sin6_port == b->sin6_port && std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
  return false;
}

bool parseAddress(const std::string& host, uint16_t port, SockAddr* out, std::string* err) {
  SockAddr a;
  auto v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(sockaddr_in6);
  } else {
    if (err) *err = "not a numeric IPv4/IPv6 address: '" + host + "'";
    return false;
  }
  *out = a;
  return true;
}

bool isAnyAddress(const SockAddr& a) {
  if (a.ss.ss_family == AF_INET) return reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr.s_addr == htonl(INADDR_ANY);
  if (a.ss.ss_family == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr);
  return false;
}

bool adaptRemote(const SockAddr& local, bool dualStack, SockAddr* remote, std::string* err) {
  const int lf = local.ss.ss_family, rf = remote->ss.ss_family;
  if (lf == AF_INET && rf == AF_INET) return true;
  if (lf == AF_INET6 && rf == AF_INET6) {
    const auto* r6 = reinterpret_cast<const sockaddr_in6*>(&remote->ss);
    if (!IN6_IS_ADDR_V4MAPPED(&r6->sin6_addr) || dualStack) return true;
  }
  if (lf == AF_INET && rf == AF_INET6) {
    const auto* r6 = reinterpret_cast<const sockaddr_in6*>(&remote->ss);
    if (IN6_IS_ADDR_V4MAPPED(&r6->sin6_addr)) {  // ::ffff:a.b.c.d → a.b.c.d
      SockAddr v4;
      auto* s4 = reinterpret_cast<sockaddr_in*>(&v4.ss);
      s4->sin_family = AF_INET;
      s4->sin_port = r6->sin6_port;
      std::memcpy(&s4->sin_addr, &r6->sin6_addr.s6_addr[12], 4);
      v4.len = sizeof(sockaddr_in);
      *remote = v4;
      return true;
    }
  }
  if (lf == AF_INET6 && rf == AF_INET && dualStack) {  // a.b.c.d → ::ffff:a.b.c.d
    const auto* r4 = reinterpret_cast<const sockaddr_in*>(&remote->ss);
    SockAddr v6;
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&v6.ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = r4->sin_port;
    s6->sin6_addr.s6_addr[10] = 0xff;
    s6->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&s6->sin6_addr.s6_addr[12], &r4->sin_addr, 4);
    v6.len = sizeof(sockaddr_in6);
    *remote = v6;
    return true;
  }
  if (err) {
    *err = std::string(rf == AF_INET6 ? "IPv6" : "IPv4") + " remote " + remote->host() + " cannot be reached from the " +
           (lf == AF_INET6 ? "IPv6" : "IPv4") + " media socket on " + local.host();
  }
  return false;
}

PortAllocator::PortAllocator(const SockAddr& bind, int portMin, int portMax, bool v6only)
    : bind_(bind), min_(portMin + (portMin & 1)), max_(portMax), next_(min_), v6only_(v6only) {}

int PortAllocator::socketFor(int* errOut) const {
  const int fd = ::socket(bind_.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *errOut = errno;
    return -1;
  }
  if (v6only_ && bind_.ss.ss_family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  return fd;
}

int PortAllocator::open(SockAddr* local, std::string* err) {
  if (min_ > max_) {
    if (err) *err = "RTP port range " + std::to_string(min_) + "-" + std::to_string(max_) + " holds no even port";
    return -1;
  }
  const int count = (max_ - min_) / 2 + 1;
  int lastErrno = 0;
  for (int i = 0; i < count; ++i) {
    const int port = next_;
    next_ += 2;
    if (next_ > max_) next_ = min_;
    int se = 0;
    int fd = socketFor(&se);
    if (fd < 0) {
      if (err) *err = std::string("socket() failed: ") + std::strerror(se);
      return -1;
    }
    SockAddr a = bind_;
    if (a.ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(static_cast<uint16_t>(port));
    else reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(static_cast<uint16_t>(port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) == 0) {
      int buf = 256 * 1024;  // absorb bursts while the media thread is sending
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
      if (local) *local = a;
      return fd;
    }
    lastErrno = errno;
    ::close(fd);
    if (lastErrno != EADDRINUSE && lastErrno != EACCES) break;
  }
  if (err) {
    *err = "no free RTP port in range " + std::to_string(min_) + "-" + std::to_string(max_) + " on " +
           bind_.host() + " (" + std::strerror(lastErrno ? lastErrno : EADDRINUSE) + ")";
  }
  return -1;
}

int PortAllocator::tryBind(int port, int* errOut) const {
  int fd = socketFor(errOut);
  if (fd < 0) return -1;
  SockAddr a = bind_;
  if (a.ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = htons(static_cast<uint16_t>(port));
  else reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a.ss), a.len) != 0) {
    *errOut = errno;
    ::close(fd);
    return -1;
  }
  return fd;
}

int PortAllocator::openPair(SockAddr* local, int* rtcpFd, std::string* err) {
  *rtcpFd = -1;
  if (min_ > max_) return open(local, err);
  const int count = (max_ - min_) / 2 + 1;
  for (int i = 0; i < count; ++i) {
    const int port = next_;
    if (port + 1 > 65535) { next_ = min_; continue; }
    int e = 0;
    // Probe the RTCP port first: if it is taken, the pair is not usable.
    const int rfd = tryBind(port + 1, &e);
    if (rfd < 0) {
      next_ += 2;
      if (next_ > max_) next_ = min_;
      continue;
    }
    SockAddr l;
    const int fd = tryBind(port, &e);
    if (fd < 0) {
      ::close(rfd);
      next_ += 2;
      if (next_ > max_) next_ = min_;
      continue;
    }
    next_ += 2;
    if (next_ > max_) next_ = min_;
    int buf = 256 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    l = bind_;
    if (l.ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&l.ss)->sin_port = htons(static_cast<uint16_t>(port));
    else reinterpret_cast<sockaddr_in6*>(&l.ss)->sin6_port = htons(static_cast<uint16_t>(port));
    if (local) *local = l;
    *rtcpFd = rfd;
    return fd;
  }
  return open(local, err);  // no free pair: RTP only
}

}  // namespace voice
