// RFC 4733 telephone-events (DTMF): payload parsing, the receive state
// machine and the send state machine. Pure code, no allocation, no N-API;
// the parser with the receiver, and the sender, are fuzzed on their own.
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

/**
 * The RFC 4733 send state machine of one outbound stream, one digit at a time:
 * Idle → Tone (packets with a growing duration, one per 20 ms tick, all with
 * the digit's start timestamp, marker on the first) → End (the E bit, the
 * final duration, sent three times) → Gap (voice still waits) → Idle.
 *
 * Ownership and threading: owned by `Session` and touched only by the media
 * thread (from `Session::buildPacket`, once per tick); no locks. The digit
 * queue itself stays in `Session` under its `mu_` (the JS thread fills it in
 * `sendDtmf`); the media thread pops a digit and calls start() when idle().
 * Per tick: when active(), next() gives the event block of this tick's packet
 * (voice paused); otherwise tick() lets one tick of the gap pass.
 */
class DtmfSender {
 public:
  struct Packet {
    TelephoneEvent event;     // event, volume 10, duration so far, E bit on the end packets
    uint32_t ts = 0;          // RTP timestamp: the digit's start, the same in all its packets
    bool first = false;       // first packet of the digit: set the marker bit
    bool digitDone = false;   // the third end packet: the digit is complete (counts as sent)
  };
  /** No digit in progress and no gap running: the next queued digit may start. */
  bool idle() const { return phase_ == Phase::Idle; }
  /** A digit's tone or end packets are due: this tick's packet is an event packet. */
  bool active() const { return phase_ == Phase::Tone || phase_ == Phase::End; }
  /** The pause after a digit: no event packet, and voice still waits. */
  bool inGap() const { return phase_ == Phase::Gap; }
  /**
   * Start digit `event` (0-15) at RTP timestamp `ts` (the current tick's), lasting
   * `durationMs` then pausing `gapMs` (at least one tick), on an RTP clock of
   * `clockRate` Hz. Call only when idle().
   */
  void start(uint8_t event, uint32_t ts, int durationMs, int gapMs, int clockRate);
  /** The event packet of this tick, the tick being `frameTs` RTP units long. Call only when active(). */
  Packet next(uint32_t frameTs);
  /** One tick without an event packet: ends the gap when it is over (no-op unless inGap()). */
  void tick();

 private:
  enum class Phase : uint8_t { Idle, Tone, End, Gap } phase_ = Phase::Idle;
  uint8_t event_ = 0;
  uint32_t ts_ = 0, elapsed_ = 0, durTs_ = 0;
  int endSent_ = 0, gapTicks_ = 0;
  bool first_ = false;
};

}  // namespace voice
