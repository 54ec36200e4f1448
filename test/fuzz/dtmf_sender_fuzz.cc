// libFuzzer target: the RFC 4733 send state machine (DtmfSender), driven tick
// by tick the way Session::buildPacket drives it, with arbitrary digits,
// durations, gaps, clocks and ticks that send nothing; every packet is also fed
// to a DtmfReceiver, which must see each digit exactly once with its duration.
// fuzz-sources: native/dtmf.cc
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dtmf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int clock = (data[0] & 1) ? 48000 : 8000;
  const uint32_t frameTs = static_cast<uint32_t>(clock / 50);
  voice::DtmfSender tx;
  voice::DtmfReceiver rx;
  uint32_t rtpTs = 0x7fffff00u ^ (static_cast<uint32_t>(data[0]) << 24);  // wraps in some runs
  int64_t now = 0;
  // The digit in progress, as the test expects it.
  uint8_t event = 0;
  uint32_t startTs = 0, durTs = 0, lastDur = 0;
  int packets = 0, endPackets = 0, gapLeft = 0;
  bool started = false, rxOpen = false;
  // Input after the first byte: one byte per 20 ms tick; a digit start takes two more bytes.
  size_t off = 1;
  while (off < size) {
    const uint8_t ctl = data[off++];
    if (ctl & 0x80) {
      // The session sent nothing this tick (no destination yet, on hold, or a buffer too small
      // for an event packet): the sender is not touched, only the RTP clock runs.
    } else {
      if (tx.idle() && (ctl & 0x40) && off + 2 <= size) {
        // A queued digit starts, with durations in (and a little beyond) what sendDtmf accepts.
        if (started && gapLeft != 0) abort();  // the gap ran to its end before idle()
        event = static_cast<uint8_t>(ctl & 0x0f);
        const int durMs = data[off] * 25;   // 0..6375
        const int gapMs = data[off + 1] * 25;
        off += 2;
        tx.start(event, rtpTs, durMs, gapMs, clock);
        startTs = rtpTs;
        durTs = static_cast<uint32_t>(static_cast<int64_t>(durMs) * clock / 1000);
        gapLeft = std::max(1, gapMs / 20);
        lastDur = 0;
        packets = endPackets = 0;
        started = true;
        if (!tx.active() || tx.idle() || tx.inGap()) abort();
      }
      if (tx.active()) {
        const voice::DtmfSender::Packet p = tx.next(frameTs);
        if (p.ts != startTs || p.event.event != event || p.event.volume != 10) abort();
        if (p.first != (packets == 0)) abort();  // marker on the first packet only
        if (p.event.duration < lastDur) abort();  // the duration never shrinks
        if (p.event.duration > std::min<uint32_t>(durTs, 0xFFFF)) abort();
        if (endPackets > 0 && !p.event.end) abort();  // once ended, always ended
        if (p.event.end && p.event.duration != std::min<uint32_t>(durTs, 0xFFFF)) abort();
        if (!p.event.end && p.event.duration != std::min<uint64_t>(uint64_t{frameTs} * (packets + 1), 0xFFFF)) abort();
        if (p.event.end) ++endPackets;
        if (p.digitDone != (endPackets == 3)) abort();  // three end packets, done on the third
        if (p.digitDone ? !tx.inGap() || tx.active() : !tx.active()) abort();
        lastDur = p.event.duration;
        ++packets;
        // What the far end makes of it.
        uint8_t payload[4];
        voice::writeTelephoneEvent(payload, p.event);
        voice::DtmfReceiver::Out out[3];
        const int k = rx.onPacket(p.ts, payload, sizeof payload, now, out);
        for (int i = 0; i < k; ++i) {
          if (out[i].digit != voice::dtmfDigit(event)) abort();
          if (out[i].kind == voice::DtmfReceiver::Out::Start) {
            if (rxOpen || packets != 1) abort();
            rxOpen = true;
          } else {
            if (!rxOpen || endPackets != 1 || out[i].durationTs != p.event.duration) abort();
            rxOpen = false;
          }
        }
        if (p.first ? k < 1 : (endPackets == 1 && p.event.end) ? k != 1 : k != 0) abort();
      } else {
        const bool gap = tx.inGap();
        if (gap != (started && gapLeft > 0)) abort();
        tx.tick();
        if (gap) --gapLeft;
        if (tx.idle() != (gapLeft == 0) || tx.active()) abort();
      }
    }
    rtpTs += frameTs;
    now += 20'000'000;
  }
  return 0;
}
