// libFuzzer target: the SRTP receive path. Three ways in, picked per record:
//  - raw bytes straight into SrtpContext::unprotectRtp / unprotectRtcp (what a
//    hostile peer can send: must never crash, never read or write out of bounds);
//  - bytes taken as a plain RTP/RTCP packet, protected by a peer context with the
//    same keys, optionally tampered (one byte flipped, or cut short), then
//    unprotected: untouched must come back Ok and byte-identical, tampered must
//    never come back Ok (the 80/32-bit tag covers every byte);
//  - the same protected packets through Session::onDatagram / onRtcp (SRTP before
//    the parser, latching, jitter buffer), with the stats counters checked.
// No sockets, no threads.
// fuzz-sources: native/srtp.cc native/session.cc native/session_vad.cc native/rtp.cc native/g711.cc native/media_socket.cc native/playout.cc native/jitter_buffer.cc native/plc.cc native/opus_codec.cc native/resampler.cc native/dtmf.cc native/dtmf_inband.cc native/rtcp.cc native/recorder.cc native/vad/frame_cutter.cc native/vad/read_ahead.cc native/vad/turn_state.cc
// fuzz-libs: -lopus -lsrtp2 -lpthread
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "session.h"
#include "srtp.h"

namespace {
// Fixed test keys (never used outside this target).
const uint8_t kA[voice::kSrtpKeySaltLen] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30};
const uint8_t kB[voice::kSrtpKeySaltLen] = {31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46,
                                            47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const voice::SrtpSuite suite = (data[0] & 1) ? voice::SrtpSuite::AesCm128HmacSha1_32 : voice::SrtpSuite::AesCm128HmacSha1_80;
  // The peer sends with key A, we receive with A and send with B.
  voice::SrtpContext peer(suite, kA, kB, 0x11223344);
  voice::SrtpContext ours(suite, kB, kA, 0x55667788);
  voice::SockAddr local, src;
  voice::parseAddress("127.0.0.1", 20000, &local, nullptr);
  voice::parseAddress("127.0.0.1", 30000, &src, nullptr);
  voice::Session s(1, -1, local, voice::Codec::PCMU, 0, 101);
  s.initSrtp(suite, kB, kA);
  voice::VadTick vt;
  int64_t now = 1'000'000'000;
  std::vector<uint8_t> buf;
  uint16_t seq = 1;

  size_t off = 1;
  while (off + 2 <= size) {
    const uint8_t ctl = data[off];
    const size_t len = data[off + 1] * 4u;
    off += 2;
    const size_t n = len <= size - off ? len : size - off;
    const uint8_t* rec = data + off;
    off += n;
    now += 20'000'000;
    const bool rtcp = ctl & 1;
    switch (ctl >> 1 & 3) {
      case 0: {  // raw input
        buf.assign(rec, rec + n);
        size_t m = n;
        const voice::SrtpContext::Rx r = rtcp ? ours.unprotectRtcp(buf.data(), &m) : ours.unprotectRtp(buf.data(), &m);
        if (r == voice::SrtpContext::Rx::Ok && m > n) abort();
        s.onDatagram(rec, n, src, now, &vt);
        break;
      }
      default: {  // a real packet from the peer, maybe tampered
        if (n < (rtcp ? 8u : 12u)) break;
        buf.assign(n + voice::kSrtpTrailer, 0);
        std::memcpy(buf.data(), rec, n);
        buf[0] = static_cast<uint8_t>(0x80 | (buf[0] & 0x3f));  // version 2
        if (rtcp) {
          buf[1] = static_cast<uint8_t>(200 + buf[1] % 5);  // SR, RR, SDES, BYE, APP
        } else {
          buf[1] &= 0x7f;
          if (buf[1] >= 64 && buf[1] < 96) buf[1] = 0;  // keep clear of the RTCP range
          buf[2] = static_cast<uint8_t>(seq >> 8);        // increasing: not a replay
          buf[3] = static_cast<uint8_t>(seq);
          seq = static_cast<uint16_t>(seq + 1 + (ctl >> 6));
        }
        std::vector<uint8_t> plain(buf.begin(), buf.begin() + static_cast<long>(n));
        size_t m = n;
        if (!(rtcp ? peer.protectRtcp(buf.data(), &m, buf.size()) : peer.protectRtp(buf.data(), &m, buf.size()))) break;
        const bool tamper = (ctl >> 1 & 3) == 2;
        const bool viaSession = (ctl >> 1 & 3) == 3;
        if (tamper) {
          const size_t at = static_cast<size_t>(ctl >> 3) * 7919u % m;
          buf[at] ^= static_cast<uint8_t>(1u << (ctl >> 5 & 7));
        }
        if (viaSession) {
          const auto before = s.stats(now);
          if (rtcp) s.onRtcp(buf.data(), m, src, now);
          else s.onDatagram(buf.data(), m, src, now, &vt);
          const auto after = s.stats(now);
          // A packet protected with the right key is never an authentication failure.
          if (after.srtpAuthFail != before.srtpAuthFail) abort();
          break;
        }
        std::vector<uint8_t> copy(buf.begin(), buf.begin() + static_cast<long>(m));
        size_t k = m;
        const voice::SrtpContext::Rx r = rtcp ? ours.unprotectRtcp(copy.data(), &k) : ours.unprotectRtp(copy.data(), &k);
        if (tamper) {
          if (r == voice::SrtpContext::Rx::Ok) abort();  // a flipped bit must not authenticate
        } else {
          if (r != voice::SrtpContext::Rx::Ok) abort();
          if (k != n || std::memcmp(copy.data(), plain.data(), n) != 0) abort();
          // The same packet again is a replay.
          std::vector<uint8_t> again(buf.begin(), buf.begin() + static_cast<long>(m));
          size_t k2 = m;
          const voice::SrtpContext::Rx r2 = rtcp ? ours.unprotectRtcp(again.data(), &k2) : ours.unprotectRtp(again.data(), &k2);
          if (r2 != voice::SrtpContext::Rx::Replay) abort();
        }
        break;
      }
    }
    s.playoutTick(now, &vt);
    s.dtmfOutCount = 0;
    if (s.pendingLen() > voice::kInboundCapacity / 2) s.clearPending();
    vt.ids.clear();
    vt.windows.clear();
  }
  return 0;
}
