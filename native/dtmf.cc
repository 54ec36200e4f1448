#include "dtmf.h"

#include <algorithm>

namespace voice {

bool parseTelephoneEvent(const uint8_t* p, size_t len, TelephoneEvent* out) {
  if (!p || len < 4) return false;
  out->event = p[0];
  out->end = (p[1] & 0x80) != 0;
  out->volume = p[1] & 0x3F;
  out->duration = static_cast<uint16_t>((p[2] << 8) | p[3]);
  return true;
}

void writeTelephoneEvent(uint8_t* p, const TelephoneEvent& e) {
  p[0] = e.event;
  p[1] = static_cast<uint8_t>((e.end ? 0x80 : 0) | (e.volume & 0x3F));
  p[2] = static_cast<uint8_t>(e.duration >> 8);
  p[3] = static_cast<uint8_t>(e.duration);
}

char dtmfDigit(uint8_t event) {
  static const char kMap[] = "0123456789*#ABCD!";
  return event <= 16 ? kMap[event] : 0;
}

int dtmfEvent(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c == '*') return 10;
  if (c == '#') return 11;
  if (c >= 'A' && c <= 'D') return 12 + (c - 'A');
  if (c >= 'a' && c <= 'd') return 12 + (c - 'a');
  return -1;
}

int DtmfReceiver::onPacket(uint32_t ts, const uint8_t* payload, size_t len, int64_t nowNs, Out out[3]) {
  TelephoneEvent e;
  if (!parseTelephoneEvent(payload, len, &e)) return 0;
  const char digit = dtmfDigit(e.event);
  if (!digit) return 0;
  if (haveEnded_ && ts == endedTs_ && !(active_ && ts == ts_)) return 0;  // end retransmission / straggler
  int n = 0;
  if (active_ && ts == ts_) {
    duration_ = std::max<uint32_t>(duration_, e.duration);
    lastNs_ = nowNs;
    if (e.end) {
      out[n++] = Out{Out::End, dtmfDigit(event_), duration_};
      active_ = false;
      haveEnded_ = true;
      endedTs_ = ts;
    }
    return n;
  }
  if (active_) {
    // A new event while the previous one never ended (its end packets were lost).
    out[n++] = Out{Out::End, dtmfDigit(event_), duration_};
    haveEnded_ = true;
    endedTs_ = ts_;
  }
  active_ = true;
  ts_ = ts;
  event_ = e.event;
  duration_ = e.duration;
  lastNs_ = nowNs;
  out[n++] = Out{Out::Start, digit, 0};
  if (e.end) {
    out[n++] = Out{Out::End, digit, duration_};
    active_ = false;
    haveEnded_ = true;
    endedTs_ = ts;
  }
  return n;
}

bool DtmfReceiver::poll(int64_t nowNs, Out* out) {
  if (!active_ || nowNs - lastNs_ < kDtmfTimeoutNs) return false;
  *out = Out{Out::End, dtmfDigit(event_), duration_};
  active_ = false;
  haveEnded_ = true;
  endedTs_ = ts_;
  return true;
}

void DtmfSender::start(uint8_t event, uint32_t ts, int durationMs, int gapMs, int clockRate) {
  event_ = event;
  phase_ = Phase::Tone;
  ts_ = ts;
  elapsed_ = 0;
  durTs_ = static_cast<uint32_t>(static_cast<int64_t>(durationMs) * clockRate / 1000);
  gapTicks_ = std::max(1, gapMs / 20);
  endSent_ = 0;
  first_ = true;
}

DtmfSender::Packet DtmfSender::next(uint32_t frameTs) {
  // RFC 4733 §2.5: one timestamp per event, growing duration, E bit on the
  // last packet, sent three times.
  Packet p;
  p.event.event = event_;
  p.event.volume = 10;
  if (phase_ == Phase::Tone) {
    elapsed_ += frameTs;
    if (elapsed_ >= durTs_) {
      elapsed_ = durTs_;
      phase_ = Phase::End;
    }
  }
  p.event.duration = static_cast<uint16_t>(std::min<uint32_t>(elapsed_, 0xFFFF));
  p.event.end = phase_ == Phase::End;
  if (p.event.end && ++endSent_ >= 3) {
    phase_ = Phase::Gap;
    p.digitDone = true;
  }
  p.ts = ts_;
  p.first = first_;
  first_ = false;
  return p;
}

void DtmfSender::tick() {
  if (phase_ == Phase::Gap && --gapTicks_ <= 0) phase_ = Phase::Idle;
}

}  // namespace voice
