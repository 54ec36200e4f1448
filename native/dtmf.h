// RFC 4733 telephone-events (DTMF): payload parsing and the receive state
// machine. Pure code, no allocation; the parser is fuzzed on its own.
//
// Receive rules: an event is identified by its RTP timestamp (the start of
// the event), never by the marker bit (many gateways lose or never set it).
// The first packet of a new timestamp starts an event; the first packet with
// the E bit ends it; the end's retransmissions (usually 3 packets) and any
// later packet with the same timestamp are ignored. An event whose end never
// arrives is ended by the next event or after kDtmfTimeoutNs of silence.
#pragma once
#include <cstddef>
#include <cstdint>

namespace voice {

struct TelephoneEvent {
  uint8_t event = 0;
  bool end = false;
  uint8_t volume = 0;
  uint16_t duration = 0;  // in RTP clock units since the event's timestamp
};

/** Parse the first event block of an RFC 4733 payload (>= 4 bytes). */
bool parseTelephoneEvent(const uint8_t* p, size_t len, TelephoneEvent* out);
/** Write one event block (4 bytes). */
void writeTelephoneEvent(uint8_t* p, const TelephoneEvent& e);
/** '0'-'9', '*', '#', 'A'-'D' for events 0-15, '!' for flash (16); 0 for anything else. */
char dtmfDigit(uint8_t event);
/** Inverse of dtmfDigit (case-insensitive); -1 for an invalid character. */
int dtmfEvent(char digit);

constexpr int64_t kDtmfTimeoutNs = 1'000'000'000;

class DtmfReceiver {
 public:
  struct Out {
    enum Kind : uint8_t { Start, End } kind = Start;
    char digit = 0;
    uint32_t durationTs = 0;
  };
  /** One telephone-event packet; writes up to 3 outputs and returns how many. */
  int onPacket(uint32_t ts, const uint8_t* payload, size_t len, int64_t nowNs, Out out[3]);
  /** Ends an event whose end packets were lost; call periodically. */
  bool poll(int64_t nowNs, Out* out);
  void reset() { active_ = haveEnded_ = false; }

 private:
  bool active_ = false;
  uint32_t ts_ = 0;
  uint8_t event_ = 0;
  uint32_t duration_ = 0;
  int64_t lastNs_ = 0;
  bool haveEnded_ = false;
  uint32_t endedTs_ = 0;
};

}  // namespace voice
