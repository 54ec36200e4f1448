// One RTP endpoint of a call: its sockets (RTP + RTCP), outbound PCM queue and
// RTP sender state (G.711 or Opus, RFC 4733 DTMF through a DtmfSender),
// symmetric-RTP latching, the inbound playout (jitter buffer → decoder → PLC),
// RTCP reports, the native bridge to another session, the recording tap and
// the VAD glue. Defined in session.cc, except the VAD glue (feeding, held
// windows, turn results, endpoint timer, utterance copy): session_vad.cc.
//
// Threading: members under "JS thread API" may be called from the JS thread at
// any time and take `mu_`; members under "media thread" are called only by the
// engine's media thread. Counters are atomics; the playout/RTCP statistics are
// a snapshot copied under `statsMu_` once per tick.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dtmf.h"
#include "duck.h"
#include "dtmf_inband.h"
#include "g711.h"
#include "media_socket.h"
#include "opus_codec.h"
#include "playout.h"
#include "rtp.h"
#include "recorder.h"
#include "resampler.h"
#include "srtp.h"
#include "vad/frame_cutter.h"
#include "vad/read_ahead.h"
#include "vad/turn_state.h"

namespace voice {

/** Samples per 20 ms frame at 8 kHz (the outbound queue's rate). */
constexpr size_t kFrameSamples = 160;
/** Largest outbound queue accepted by play(): 10 minutes of 8 kHz audio. */
constexpr size_t kMaxQueueSamples = 8000 * 600;
/** Inbound PCM held between two event batches (2 s at 8 kHz); older audio is dropped beyond it. */
constexpr size_t kInboundCapacity = 16000;
/** Largest RTP packet we build (header + Opus at the highest bitrate). */
constexpr size_t kMaxRtpPacket = 12 + 1500;
/** Largest SRTP/SRTCP datagram unprotected (the engine's receive buffers are this size). */
constexpr size_t kMaxSrtpDatagram = 2048;
/**
 * After latching, packets from another source are ignored unless the latched
 * source has been silent this long (media moved without re-INVITE, e.g. SBC
 * fail-over). Guards against RTP injection while the real stream flows.
 */
constexpr int64_t kRelatchIdleNs = 2'000'000'000LL;
/** Bridge input queue: 4 frames (80 ms) of 8 kHz audio; the oldest is dropped beyond it. */
constexpr size_t kBridgeCapacity = 4 * kFrameSamples;
/** Inbound 8 kHz audio kept per VAD session for the utterance handed out with speechEnd (15 s). */
constexpr size_t kUtteranceCapacity = 8000 * 15;
/** 8 kHz samples per VAD frame (32 ms). */
constexpr size_t kVadFrame8k = 256;

/** VAD windows of all sessions collected by the media thread until the next 32 ms hand-over to JS. */
struct VadTick {
  std::vector<uint32_t> ids;   // one per window
  std::vector<float> windows;  // ids.size() rows of the model rate's window (288 floats at 8 kHz, 576 at 16 kHz)
  /**
   * Sessions holding windows back (Session::vadTopUp). A hand-over carries one
   * window per session so that it is ONE model run of distinct sessions: 20 ms
   * packets or playout frames against 32 ms windows make a session complete two
   * windows inside one hand-over now and then, and a late wake-up of the media
   * thread (a burst of queued packets through the read-ahead) several. The
   * extra ones wait in the session; each hand-over takes the oldest of every
   * lagging session, and a second one of a session two or more behind (a small
   * catch-up run of just those sessions).
   */
  std::vector<uint32_t> lagging;
  /** Hand-overs shipped so far (the index of the one being collected). */
  uint64_t seq = 1;
};

struct SessionConfig {
  /** Rate of the inbound PCM delivered to JS, the bridge and the recorder: 8000 or 16000. */
  int rate = 8000;
  JitterConfig jitter;
  OpusParams opus;
  /** Base RTCP report interval (randomised ×0.5..1.5 as RFC 3550 §6.3.1 asks); 0 disables sending. */
  int rtcpIntervalMs = 5000;
  /** Duration of each sent DTMF digit and the pause after it. */
  int dtmfDurationMs = 100;
  int dtmfGapMs = 60;
  /** Voice activity detection + turn-taking on the inbound stream (frames cut here, inference in JS, decisions here). */
  bool vad = false;
  /** Detect DTMF tones in the inbound audio (InbandDtmf) while no telephone-event payload type is negotiated. */
  bool inbandDtmf = true;
  vad::TurnTunables turn;
};

struct RtcpStats {
  uint64_t packetsIn = 0, packetsOut = 0, invalidIn = 0;
  bool haveRemoteReport = false;   // the peer reported on our stream
  double remoteFractionLost = 0;   // 0..1, from their last RR/SR block about us
  int32_t remoteCumulativeLost = 0;
  double remoteJitterMs = 0;
  double rttMs = -1;               // from LSR/DLSR; -1 until known
  bool haveSr = false;             // we received a sender report
};

struct SessionStats {
  uint64_t packetsIn = 0, packetsOut = 0, bytesIn = 0, bytesOut = 0, invalidIn = 0;
  uint64_t telephoneEventsIn = 0, sendErrors = 0, inboundDropped = 0;
  uint64_t dtmfIn = 0, dtmfOut = 0;
  int64_t lastRxAgoMs = -1;  // -1: nothing received yet
  bool haveRemote = false;
  SockAddr remote;
  bool latched = false;
  uint32_t ssrcOut = 0;
  uint16_t seqOut = 0;  // sequence number of the last packet sent
  bool sending = true;  // direction includes send
  bool inbandDtmf = false;  // the in-band DTMF detector runs (no telephone-event negotiated)
  PlayoutStats playout;
  RtcpStats rtcp;
  bool bridged = false;
  bool recording = false;
  int srtpSuite = -1;  // SrtpSuite, -1: plain RTP
  uint64_t srtpAuthFail = 0, srtpReplay = 0, srtpInvalid = 0, srtpProtectFail = 0;
  uint64_t recordedFrames = 0, recordDropped = 0;
};

class Session {
 public:
  Session(uint32_t id, int fd, const SockAddr& local, Codec codec, uint8_t pt, int tePt,
          const SessionConfig& cfg = SessionConfig(), int rtcpFd = -1);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const uint32_t id;
  const SockAddr local;
  /** The socket is an IPv6 wildcard that takes IPv4 peers too (set by the engine before the session is shared). */
  bool dualStack = false;
  int fd() const { return fd_; }
  int rtcpFd() const { return rtcpFd_; }
  int rate() const { return cfg_.rate; }
  /** Close the sockets; only after the media thread has dropped the session. */
  void closeFd();
  /**
   * SRTP (SDES keys): JS thread, in Engine::createSession before the session is shared with
   * the media thread (no lock: nothing else can see the session yet). Throws on a libsrtp error.
   */
  void initSrtp(SrtpSuite suite, const uint8_t localKey[kSrtpKeySaltLen], const uint8_t remoteKey[kSrtpKeySaltLen]);
  bool srtp() const { return srtpSuite_ >= 0; }

  // ---- JS thread API (thread-safe) ----
  /** Signalled remote (SDP c=/m=); resets latching so the peer can latch again. rtcpPort 0 = port + 1. */
  void setRemote(const SockAddr& remote, uint16_t rtcpPort = 0);
  /**
   * The peer re-keyed (re-INVITE with a new a=crypto key, same suite): builds the new inbound
   * context here and hands it to the media thread under mu_ (taken at its next packet or tick).
   * False (with err) when the session has no SRTP or libsrtp refuses.
   */
  bool setSrtpRemote(SrtpSuite suite, const uint8_t remoteKey[kSrtpKeySaltLen], std::string* err);
  /** Switch codec (re-INVITE). Creates the Opus encoder here, on the JS thread, when first needed. */
  bool setCodec(Codec codec, uint8_t pt, std::string* err = nullptr);
  void setOpusParams(const OpusParams& p);
  void setTelephoneEventPt(int pt);
  /**
   * SDP direction of our outbound stream (hold / un-hold re-INVITE). While
   * `send` is false nothing is sent — no voice, no keep-alive silence, no
   * DTMF; the RTP clock keeps running and the queue waits. The first packet
   * after sending resumes carries the marker bit and continues seq/ts.
   * Inbound RTP is processed either way (latching and statistics stay current).
   */
  void setDirection(bool send, bool recv);
  bool sending() const;
  /** Append 8 kHz PCM to the outbound queue; false (with err) if the queue would exceed kMaxQueueSamples. */
  bool play(const int16_t* pcm, size_t n, std::string* err, bool uninterruptible = false);
  /** Drop everything queued (and end a barge-in pause); no 'playoutDone' follows. Pending DTMF digits are kept. */
  void flush();
  /** VAD was enabled at creation (SessionConfig::vad). */
  bool vadEnabled() const { return vad_ != nullptr; }
  /** The partial transcript ends in digits: endpointing waits digitsEndpointSilenceMs. Cleared when the turn ends. */
  void setDigitsPending(bool on) { digitsPending_.store(on, std::memory_order_relaxed); }
  /**
   * 'audio' events (the decoded inbound PCM, in batches) for this session: only while JS has a
   * consumer for them (MediaSession turns this on with its first 'audio' listener). Off, the
   * playout frames are not queued for JS at all and flushEvents makes no event for the session;
   * the VAD, the bridge, the recorder and DTMF get the audio as before. Any thread.
   */
  void setAudioEvents(bool on) { audioEvents_.store(on, std::memory_order_relaxed); }
  bool audioEvents() const { return audioEvents_.load(std::memory_order_relaxed); }
  /**
   * Extra inbound audio (8 kHz samples) put in front of each VAD utterance (speechEnd), taken
   * from the utterance ring: soft word onsets start before the first frame the model scores
   * voiced. The JS side used to add it from a copy of the 'audio' stream. Any thread.
   */
  void setUtterancePreRoll(uint32_t samples8k) { preRoll8k_.store(samples8k, std::memory_order_relaxed); }
  /** New turn-taking tunables, applied by the media thread before the next VAD frame. False (with err) if invalid. */
  bool setTurnTunables(const vad::TurnTunables& t, std::string* err);
  size_t queuedSamples() const;
  /** Queue RFC 4733 digits (0-9 * # A-D); voice pauses while they are sent. */
  bool sendDtmf(const std::string& digits, int durationMs, int gapMs, std::string* err);
  SessionStats stats(int64_t nowNs) const;
  /** JS-thread record of the attached recorder (the media thread has its own reference). */
  std::shared_ptr<Recorder> recorderJs;
  uint32_t bridgedWithJs = 0;  // JS thread bookkeeping: id of the bridge peer, 0 = none

  // ---- media thread ----
  /**
   * Build the packet for 20 ms tick `tick` into buf (cap >= kMaxRtpPacket).
   * Returns 0 when there is no destination yet. Sets *playoutDone when this
   * packet carried the last queued audio.
   */
  size_t buildPacket(uint8_t* buf, size_t cap, int64_t tick, SockAddr* dest, bool* playoutDone);
  void onSent(size_t bytes, bool ok);
  /**
   * SRTP on the send path (media thread): protect the packet buildPacket / buildRtcp wrote
   * (buf holds len + kSrtpTrailer). Returns the new length, or 0 when protection failed
   * (counted in srtpProtectFail; the packet is not sent). Without SRTP returns len.
   */
  size_t sealRtp(uint8_t* buf, size_t len, size_t cap);
  size_t sealRtcp(uint8_t* buf, size_t len, size_t cap);
  /** Inbound playout for this tick: JB → PCM → pending audio, bridge peer; DTMF timeouts; recorder. */
  void playoutTick(int64_t nowNs, VadTick* vt = nullptr, bool late = false);
  /**
   * VAD (media thread): the speech probability of this session's next VAD
   * frame (NaN = unknown, counts as silence). Runs the turn state machine and
   * acts at once: BargeIn pauses the outbound queue (keep-alive silence is
   * sent, the queue is kept), FalseInterruption resumes it, SpeechEnd after a
   * barge-in drops it. Returns the TurnState output.
   */
  vad::TurnOutput vadPush(float prob);
  /**
   * VAD (media thread, at a hand-over): put this session's held-back windows
   * into `vt` (the oldest if it has none there yet; one more if it is still two
   * or more behind). Returns whether windows remain held back.
   */
  bool vadTopUp(VadTick* vt);
  /** Endpoint timer (media thread): when due, with no sound fed since the last result, ends the turn. */
  vad::TurnOutput vadEndpointDue(int64_t nowNs);
  /** Instant the endpoint timer is due (0 = none). */
  int64_t vadEndpointAt() const { return vad_ ? vad_->endpointAtNs : 0; }
  /** Stream position (ms of inbound audio fed to the VAD) at which the last SpeechEnd was decided. */
  double vadTurnEndMs() const { return vad_ ? vad_->turnEndAt * 1000.0 / vad_->cutter.rate() : 0.0; }
  /** The engine keeps a list of sessions with a timer; this flag says a session is in it. */
  bool vadTimerListed = false;
  /** Copy the 8 kHz inbound audio of VAD frames [startFrame, endFrame] (+1 frame post-roll) into dst; returns samples. */
  size_t copyUtterance(int64_t startFrame, int64_t endFrame, std::vector<int16_t>& dst) const;
  enum class RxResult { Accepted, Latched, Ignored };
  /**
   * Validate, latch, and queue one datagram into the jitter buffer (or the DTMF receiver / RTCP).
   * With SRTP the datagram is first copied, authenticated (replay window), decrypted — before
   * the RTP parser and before latching, so only the keyed peer can latch — and dropped on
   * failure (srtpAuthFail / srtpReplay / srtpInvalid).
   */
  RxResult onDatagram(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs, VadTick* vt = nullptr);
  /** An RTCP datagram (own port or multiplexed); SRTCP is unprotected first when SRTP is on. */
  void onRtcp(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs);
  /** Build an RTCP report if one is due; returns its length (0 = nothing to send). */
  size_t buildRtcp(uint8_t* buf, size_t cap, int64_t nowNs, SockAddr* dest);
  size_t pendingLen() const { return inLen_; }
  const int16_t* pendingPcm() const { return inPcm_.data(); }
  void clearPending() { inLen_ = 0; }
  /** DTMF results of the last onDatagram/playoutTick, drained by the engine. */
  DtmfReceiver::Out dtmfOut[8];
  int dtmfOutCount = 0;
  /** Bridge (media thread): audio from the peer's playout for this session's outbound stream. */
  void bridgePush(const int16_t* pcm8k, size_t n);
  void setPeer(Session* peer);
  Session* peer() const { return peer_; }
  void setRecorder(std::shared_ptr<Recorder> r) { rec_ = std::move(r); }
  /** RTP clock of the inbound stream (telephone-events share it). */
  int rxClock() const { return rxCodec_ == Codec::Opus ? 48000 : 8000; }

  // Scheduling state owned by the media thread.
  int slot = -1;
  int64_t startNs = 0;

 private:
  void syncCodec();
  void publishStats();
  void rtcpPlain(const uint8_t* data, size_t len, const SockAddr& src, int64_t nowNs);
  bool srtpRxOk(SrtpContext::Rx r);  // count a failed unprotect; true on Ok
  void srtpTakeRekey();              // media thread: adopt a pending peer re-key
  void inbandOut(DtmfReceiver::Out o);  // queue an in-band detector result like a telephone-event one

  int fd_;
  int rtcpFd_;
  SessionConfig cfg_;
  // -- guarded by mu_ --
  mutable std::mutex mu_;
  Codec codec_;
  uint8_t pt_;
  int tePt_;
  SockAddr signalled_;
  uint16_t signalledRtcpPort_ = 0;
  SockAddr latchedAddr_;
  bool latched_ = false;
  int64_t latchedLastRxNs_ = 0;
  SockAddr rtcpSource_;        // symmetric RTCP: where the peer's RTCP comes from
  std::vector<int16_t> ring_;  // outbound queue (ring buffer, grown by play())
  size_t head_ = 0, size_ = 0;
  bool playing_ = false;       // audio was queued and has not drained or been flushed
  std::unique_ptr<OpusEnc> enc_;  // created on the JS thread, never replaced
  OpusParams opusParams_;
  uint32_t opusParamsVer_ = 1;
  std::string dtmfQueue_;
  int dtmfDurMs_ = 100, dtmfGapMs_ = 60;
  bool sendEnabled_ = true;   // direction includes send (sendrecv / sendonly)
  bool recvEnabled_ = true;   // direction includes recv (informational)
  bool vadPaused_ = false;    // barge-in: agent audio paused (queue kept) until the caller's turn resolves
  float vadDuckDb_ = 0;       // pause-first duck in effect: the prompt plays this many dB lower (0 = full level)
  uint64_t enqTotal_ = 0, deqTotal_ = 0;  // samples ever queued / dequeued
  uint64_t unintEnd_ = 0;     // queue position (enqTotal_ scale) up to which the prompt is uninterruptible
  bool tunablesDirty_ = false;
  vad::TurnTunables pendingTunables_;
  std::unique_ptr<SrtpContext> pendingSrtpRx_;  // a peer re-key, waiting for the media thread
  std::atomic<bool> srtpRekey_{false};          // pendingSrtpRx_ is set (checked without the lock)

  // -- media thread only (set on the JS thread before the session is shared) --
  std::unique_ptr<SrtpContext> srtp_;
  int srtpSuite_ = -1;  // constant after initSrtp
  // -- media thread only --
  uint32_t ssrc_;
  uint16_t seq_;
  uint32_t ts_;
  int64_t lastTick_ = -1;
  bool sentAny_ = false;
  bool inSpurt_ = false;
  bool paused_ = false;  // sending was off at the last tick: mark the first packet after it
  OutboundDuck duck_;    // ramped level of the outbound queue (target vadDuckDb_)
  std::vector<int16_t> inPcm_;
  size_t inLen_ = 0;
  Playout playout_;
  Codec rxCodec_;
  uint8_t rxPt_;
  int rxTePt_;                 // telephone-event PT as last seen by the media thread (-1: none)
  DtmfReceiver dtmfRx_;
  InbandDtmf inband_;          // tones in the audio, while rxTePt_ < 0 and cfg_.inbandDtmf
  bool inbandOn_ = false;
  std::atomic<bool> inbandSnap_{false};  // inbandOn_ for stats()
  uint32_t appliedOpusVer_ = 0;
  DtmfSender dtmfTx_;  // the digit being sent (the queue is dtmfQueue_, under mu_)
  // bridge + recording
  Session* peer_ = nullptr;
  int16_t bridgeBuf_[kBridgeCapacity];
  size_t bridgeLen_ = 0;
  std::unique_ptr<Resampler> down_;  // 16 kHz playout → 8 kHz for the peer's encoder
  std::shared_ptr<Recorder> rec_;
  int16_t inFrame_[320];
  bool haveInFrame_ = false;
  int16_t outFrame_[kFrameSamples];
  bool haveOutFrame_ = false;
  // VAD (media thread; allocated in the constructor when SessionConfig::vad). The vad* methods,
  // aheadSink, copyUtterance and vadTopUp/vadPush/vadEndpointDue live in session_vad.cc.
  struct VadState {
    explicit VadState(const vad::TurnTunables& t)
        : up(8000, 16000, kFrameSamples), cutter(vad::vadRateFromEnv()), turn(t), ring(kUtteranceCapacity) {}
    Resampler up;                 // 8 → 16 kHz for the model (8 kHz sessions, model at 16 kHz)
    vad::FrameCutter cutter;      // at the model rate (VOICE_VAD_RATE: 16000, or 8000 = no upsampling)
    vad::TurnState turn;
    std::vector<int16_t> ring;    // last kUtteranceCapacity samples of inbound 8 kHz audio
    uint64_t total = 0;           // 8 kHz samples written since the start
    uint64_t lastSeq = 0;         // latest VadTick::seq holding a window of this session
    int64_t tickNs = 0;           // arrival (read-ahead) or playout instant of the audio being fed
    // G.711 streams feed the VAD from arrival, ahead of the jitter buffer (vad/read_ahead.h);
    // other codecs (Opus: one stateful decoder) feed it from the playout frames.
    vad::ReadAhead ahead;
    bool aheadActive = false;     // the last frames came through `ahead`
    VadTick* feedTick = nullptr;  // hand-over the read-ahead sink appends to (set around each call)
    // Per window, by window number (results come back in cut order, so the n-th result belongs
    // to the n-th window cut): its levels, and what the endpointing compensation needs.
    struct WindowInfo {
      vad::FrameLevels levels;
      int64_t cutNs = 0;  // arrival (read-ahead) or playout instant of the window's last sample
      float jbMs = 0;     // jitter-buffer delay that sample went through (0 when fed from arrival)
    };
    // A result more than kInfoSlots windows behind the cutter (JS stalled ~2 s) gets no info:
    // the level cue and the end-of-sound refinement sit that frame out, no compensation.
    static constexpr uint64_t kInfoSlots = 64;
    WindowInfo info[kInfoSlots];
    uint64_t cut = 0, answered = 0;
    // Windows held back for later hand-overs (VadTick::lagging), oldest first.
    static constexpr int kHeld = 4;
    float held[kHeld][vad::kVadWindow];
    int heldHead = 0, heldCount = 0;
    bool lagging = false;         // registered in VadTick::lagging
    // Endpoint timer (read-ahead feed only): due instant, and the stream position (samples at
    // the model rate) the last result covered; sound fed after that position cancels it;
    // timerAt16: the position at which the silence is whole (what the timer stands for).
    int64_t endpointAtNs = 0;
    uint64_t timerFrom16 = 0, timerAt16 = 0;
    // Stream position (samples at the model rate since the first fed sample) at which the last
    // SpeechEnd was decided: the end of the frame whose result ended the turn, or timerAt16.
    uint64_t turnEndAt = 0;
    // Live sound check of the fed stream, per 8 ms sub-block.
    float subAcc = 0;
    int subN = 0;
    uint64_t fed16 = 0, soundEnd16 = 0;
    int64_t fedNs = 0;            // when audio (or stall fill) was last fed
  };
  std::unique_ptr<VadState> vad_;
  std::atomic<bool> digitsPending_{false};
  std::atomic<bool> audioEvents_{true};  // JS wants 'audio' events (setAudioEvents)
  std::atomic<uint32_t> preRoll8k_{0};   // setUtterancePreRoll
  void vadFeed(const int16_t* pcm8k, size_t n8, const int16_t* pcm16k, size_t n16, VadTick* vt);
  void vadApply(const vad::TurnOutput& o);  // outbound effects of a turn output (pause, resume, drop)
  void vadSettle(vad::TurnOutput& o);  // a false interruption with nothing to resume is a turn
  static constexpr int64_t kEndpointFeedGapNs = 30'000'000;
  static constexpr int64_t kEndpointRecheckNs = 5'000'000;
  /** G.711 inbound: the VAD is fed from arrival (read-ahead); switches feeds on a codec change. */
  bool vadAheadMode();
  static void aheadSink(void* ctx, const int16_t* pcm, size_t n);
  // RTCP
  int64_t nextRtcpNs_ = 0;
  uint32_t lastSrMiddle_ = 0;
  int64_t lastSrArrivalNs_ = 0;
  uint64_t prevExpected_ = 0, prevReceived_ = 0;
  uint32_t packetsSinceReport_ = 0;
  RtcpStats rtcp_;

  // -- snapshot for stats(), guarded by statsMu_ --
  mutable std::mutex statsMu_;
  PlayoutStats playoutSnap_;
  RtcpStats rtcpSnap_;
  bool bridgedSnap_ = false;

  // -- atomics, written by the media thread, read by stats() --
  std::atomic<uint64_t> packetsIn_{0}, packetsOut_{0}, bytesIn_{0}, bytesOut_{0}, invalidIn_{0};
  std::atomic<uint64_t> teIn_{0}, sendErrors_{0}, inDropped_{0}, dtmfIn_{0}, dtmfOut_{0};
  std::atomic<uint64_t> srtpAuthFail_{0}, srtpReplay_{0}, srtpInvalid_{0}, srtpProtectFail_{0};
  std::atomic<int64_t> lastRxNs_{0};
  std::atomic<uint16_t> seqOut_{0};
};

/** CLOCK_MONOTONIC in nanoseconds. */
int64_t monoNs();
/** 32 random bits from the kernel (getrandom). */
uint32_t random32();

}  // namespace voice
