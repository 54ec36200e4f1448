// UDP sockets for RTP: numeric address handling and allocation of local ports
// from the configured range. Used from the JS thread only (allocation happens
// in createSession, the fd is closed after the media thread has let go of it).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace voice {

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  bool valid() const { return len != 0; }
  /**
   * Take `o`'s address: copies its `len` bytes (16 for IPv4, 28 for IPv6), not the whole
   * 128-byte storage — the media thread does this for every packet it sends.
   */
  void assign(const SockAddr& o) {
    std::memcpy(&ss, &o.ss, o.len);
    len = o.len;
  }
  uint16_t port() const;
  std::string host() const;
  /** Same family, address and port. */
  bool sameEndpoint(const SockAddr& o) const;
};

/** Parse a numeric IPv4/IPv6 address (no DNS). Returns false with `err` set. */
bool parseAddress(const std::string& host, uint16_t port, SockAddr* out, std::string* err);

/** The wildcard address of its family (0.0.0.0 or ::). */
bool isAnyAddress(const SockAddr& a);

/**
 * Make `remote` sendable from a socket bound to `local`: an IPv4 socket takes IPv4
 * (and IPv4-mapped IPv6, converted); an IPv6 socket takes IPv6, and IPv4 (converted to
 * ::ffff:a.b.c.d) only when it is dual-stack (bound to :: without IPV6_V6ONLY). Returns
 * false with `err` naming both families otherwise: a datagram would never leave.
 */
bool adaptRemote(const SockAddr& local, bool dualStack, SockAddr* remote, std::string* err);

/**
 * Hands out RTP sockets bound to even ports in [portMin, portMax] on one local
 * address (port+1 stays free for RTCP). Round-robin from a cursor, so a port
 * just released is the last to be reused (stale packets of an old call rarely
 * reach a new one). The kernel is the source of truth: a port is free iff
 * bind() succeeds.
 */
class PortAllocator {
 public:
  /** `v6only`: IPv6 sockets get IPV6_V6ONLY (they then share port numbers with IPv4 sockets). */
  PortAllocator(const SockAddr& bind, int portMin, int portMax, bool v6only = false);
  /** Returns a non-blocking UDP fd or -1 with `err` set; fills `local`. */
  int open(SockAddr* local, std::string* err);
  /**
   * Like open(), and also binds port + 1 for RTCP into *rtcpFd. Prefers a
   * full pair; when no pair is free anywhere in the range it falls back to an
   * RTP-only port (*rtcpFd = -1: that session sends no RTCP).
   */
  int openPair(SockAddr* local, int* rtcpFd, std::string* err);
  int portMin() const { return min_; }
  int portMax() const { return max_; }
  const SockAddr& bindAddress() const { return bind_; }
  /** Sockets of this allocator take IPv4 peers too (IPv6 wildcard without IPV6_V6ONLY). */
  bool dualStack() const { return bind_.ss.ss_family == AF_INET6 && !v6only_ && isAnyAddress(bind_); }

 private:
  int socketFor(int* err) const;
  SockAddr bind_;
  int min_, max_;
  int next_;
  bool v6only_ = false;
  int tryBind(int port, int* err) const;
};

}  // namespace voice
