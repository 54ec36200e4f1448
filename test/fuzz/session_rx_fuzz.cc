// libFuzzer target: the per-session inbound path (parse → latch → decode) and
// the outbound packet builder, driven by a stream of datagrams from varying
// source ports. No sockets, no threads: Session is used the way the media
// thread uses it.
// fuzz-sources: native/session.cc native/session_vad.cc native/srtp.cc native/rtp.cc native/g711.cc native/media_socket.cc native/playout.cc native/jitter_buffer.cc native/plc.cc native/opus_codec.cc native/resampler.cc native/dtmf.cc native/dtmf_inband.cc native/rtcp.cc native/recorder.cc native/vad/frame_cutter.cc native/vad/read_ahead.cc native/vad/turn_state.cc
// fuzz-libs: -lopus -lsrtp2 -lpthread
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rtp.h"
#include "session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  voice::SockAddr local;
  voice::parseAddress("127.0.0.1", 20000, &local, nullptr);
  // VAD on (first byte odd): the inbound path then also feeds the read-ahead and the frame cutter.
  voice::SessionConfig cfg;
  cfg.vad = size > 0 && (data[0] & 1);
  voice::Session s(1, -1, local, voice::Codec::PCMU, 0, 101, cfg);
  voice::VadTick vt;
  int64_t now = 1'000'000'000;
  int64_t tick = 0;
  // Input: [ctl][len][len bytes]...; ctl picks the source port, time step and extra actions.
  size_t off = 0;
  while (off + 2 <= size) {
    const uint8_t ctl = data[off];
    const size_t len = data[off + 1];
    off += 2;
    const size_t n = len <= size - off ? len : size - off;
    voice::SockAddr src;
    voice::parseAddress("127.0.0.1", static_cast<uint16_t>(30000 + (ctl & 3)), &src, nullptr);
    now += (ctl >> 2 & 7) * 700'000'000LL;  // up to 4.9 s: exercises re-latching
    s.onDatagram(data + off, n, src, now, &vt);
    if (ctl & 0x20) {
      int16_t pcm[200];
      for (int i = 0; i < 200; ++i) pcm[i] = static_cast<int16_t>((i * 977) ^ ctl);
      s.play(pcm, 50 + (ctl & 0x0f) * 10, nullptr);
    }
    if (ctl & 0x40) s.flush();
    if (ctl & 0x80) s.setCodec((ctl & 1) ? voice::Codec::PCMA : voice::Codec::PCMU, (ctl & 1) ? 8 : 0);
    uint8_t pkt[voice::kRtpHeaderSize + voice::kFrameSamples];
    voice::SockAddr dest;
    bool done = false;
    const size_t w = s.buildPacket(pkt, sizeof pkt, tick++, &dest, &done);
    if (w != 0 && w != sizeof pkt) abort();
    s.playoutTick(now, &vt);
    if (cfg.vad && (ctl & 0x02)) {
      // A hand-over, like Engine::shipVad: held-back windows top it up; answer it like the JS
      // side would (probabilities from the input), then recycle it.
      if (!vt.lagging.empty() && !s.vadTopUp(&vt)) vt.lagging.clear();
      // Rows of the model rate's window (VOICE_VAD_RATE, 8 kHz unless set): 32 + 256 or 64 + 512.
      const int rate = voice::vad::vadRateFromEnv();
      if (vt.windows.size() != vt.ids.size() * (voice::vad::vadContextAt(rate) + voice::vad::vadFrameAt(rate))) abort();
      for (size_t i = 0; i < vt.ids.size(); ++i) s.vadPush(static_cast<float>(ctl) / 255.0f);
      vt.ids.clear();
      vt.windows.clear();
      ++vt.seq;
    }
    if (cfg.vad) (void)s.vadEndpointDue(now);  // the endpoint timer, whenever it is armed
    s.dtmfOutCount = 0;
    if (s.pendingLen() > voice::kInboundCapacity) abort();
    if (s.pendingLen() > voice::kInboundCapacity / 2) s.clearPending();
    off += n;
  }
  return 0;
}
