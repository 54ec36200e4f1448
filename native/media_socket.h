// UDP sockets for RTP: numeric address handling and allocation of local ports
// from the configured range. Used from the JS thread only (allocation happens
// in createSession, the fd is closed after the media thread has let go of it).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace voice {

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  bool valid() const { return len != 0; }
  uint16_t port() const;
  std::string host() const;
  /** Same family, address and port. */
  bool sameEndpoint(const SockAddr& o) const;
};

/** Parse a numeric IPv4/IPv6 address (no DNS). Returns false with `err` set. */
bool parseAddress(const std::string& host, uint16_t port, SockAddr* out, std::string* err);

/**
 * Hands out RTP sockets bound to even ports in [portMin, portMax] on one local
 * address (port+1 stays free for RTCP). Round-robin from a cursor, so a port
 * just released is the last to be reused (stale packets of an old call rarely
 * reach a new one). The kernel is the source of truth: a port is free iff
 * bind() succeeds.
 */
class PortAllocator {
 public:
  PortAllocator(const SockAddr& bind, int portMin, int portMax);
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

 private:
  SockAddr bind_;
  int min_, max_;
  int next_;
  int tryBind(int port, int* err) const;
};

}  // namespace voice
