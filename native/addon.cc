// N-API bindings (node-addon-api): the Engine wrapper, G.711 helpers, the
// resampler and flite synthesis. The only way media-thread data reaches JS is
// the engine's single ThreadSafeFunction (see CallJs below).
#include <napi.h>

#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "dtmf.h"
#include "dtmf_inband.h"
#include "engine.h"
#include "g711.h"
#include "playout.h"
#include "recorder.h"
#include "rtcp.h"
#include "resampler.h"
#include "rtp.h"
#include "rtp_load.h"
#include "srtp.h"
#include "tts.h"
#include "espeak_tts.h"

namespace voice {
namespace {

struct TsfnContext {
  std::shared_ptr<BatchPool> pool;
};

const char* eventTypeName(EventType t) {
  switch (t) {
    case EventType::Audio: return "audio";
    case EventType::PlayoutDone: return "playoutDone";
    case EventType::Latched: return "latched";
    case EventType::DtmfStart: return "dtmfStart";
    case EventType::Dtmf: return "dtmf";
    case EventType::Vad: return "vad";
    case EventType::SpeechStart: return "speechStart";
    case EventType::SpeechEnd: return "speechEnd";
    case EventType::BargeIn: return "bargeIn";
    case EventType::FalseInterruption: return "falseInterruption";
    case EventType::Backchannel: return "backchannel";
    case EventType::Pause: return "pause";
    case EventType::Resume: return "resume";
  }
  return "unknown";
}

// Runs on the JS thread for every batch the media thread queued. Builds one
// array of events and makes one call into JS, then recycles the batch. With a
// null env (the function is being torn down) the batch is only recycled.
void CallJs(Napi::Env env, Napi::Function fn, TsfnContext* ctx, Batch* b) {
  struct Recycle {
    TsfnContext* ctx;
    Batch* b;
    ~Recycle() { ctx->pool->give(b); }
  } recycle{ctx, b};
  if (env == nullptr || fn.IsEmpty()) return;
  Napi::Array arr = Napi::Array::New(env, b->count);
  for (size_t i = 0; i < b->count; ++i) {
    const Event& e = b->events[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, e.sessionId));
    o.Set("type", Napi::String::New(env, eventTypeName(e.type)));
    if (e.type == EventType::Audio) {
      Napi::Int16Array pcm = Napi::Int16Array::New(env, e.pcmLen);
      if (e.pcmLen) std::memcpy(pcm.Data(), e.pcm.data(), e.pcmLen * sizeof(int16_t));
      o.Set("pcm", pcm);
    } else if (e.type == EventType::Latched) {
      o.Set("address", Napi::String::New(env, e.addr.host()));
      o.Set("port", Napi::Number::New(env, e.addr.port()));
    } else if (e.type == EventType::Dtmf || e.type == EventType::DtmfStart) {
      o.Set("digit", Napi::String::New(env, std::string(1, e.digit)));
      if (e.type == EventType::Dtmf) o.Set("durationMs", Napi::Number::New(env, e.durationMs));
    } else if (e.type == EventType::Vad) {
      Napi::Uint32Array ids = Napi::Uint32Array::New(env, e.ids.size());
      if (!e.ids.empty()) std::memcpy(ids.Data(), e.ids.data(), e.ids.size() * sizeof(uint32_t));
      Napi::Float32Array win = Napi::Float32Array::New(env, e.f32.size());
      if (!e.f32.empty()) std::memcpy(win.Data(), e.f32.data(), e.f32.size() * sizeof(float));
      o.Set("ids", ids);
      o.Set("windows", win);
    } else if (e.type == EventType::SpeechEnd) {
      Napi::Int16Array pcm = Napi::Int16Array::New(env, e.pcmLen);
      if (e.pcmLen) std::memcpy(pcm.Data(), e.pcm.data(), e.pcmLen * sizeof(int16_t));
      o.Set("pcm", pcm);
      o.Set("voicedMs", Napi::Number::New(env, e.durationMs));
      o.Set("streamMs", Napi::Number::New(env, e.streamMs));
    } else if (e.type == EventType::SpeechStart || e.type == EventType::BargeIn ||
               e.type == EventType::FalseInterruption || e.type == EventType::Backchannel ||
               e.type == EventType::Pause || e.type == EventType::Resume) {
      o.Set("voicedMs", Napi::Number::New(env, e.durationMs));
    }
    arr.Set(static_cast<uint32_t>(i), o);
  }
  try {
    fn.Call({arr});
  } catch (const Napi::Error& err) {
    err.ThrowAsJavaScriptException();  // surfaces as an uncaught exception in the event loop
  }
}

using Tsfn = Napi::TypedThreadSafeFunction<TsfnContext, Batch, CallJs>;

Codec parseCodec(const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "PCMU") return Codec::PCMU;
  if (s == "PCMA") return Codec::PCMA;
  if (s == "opus") return Codec::Opus;
  throw Napi::TypeError::New(v.Env(), "codec must be 'PCMU', 'PCMA' or 'opus'");
}

int optInt(const Napi::Object& o, const char* name, int def, int lo, int hi);

JitterConfig jitterArg(const Napi::Value& v) {
  JitterConfig j;
  if (!v.IsObject()) return j;
  Napi::Object o = v.As<Napi::Object>();
  j.minDelayMs = optInt(o, "minDelayMs", j.minDelayMs, 0, 1000);
  j.maxDelayMs = optInt(o, "maxDelayMs", j.maxDelayMs, 0, 2000);
  j.startDelayMs = optInt(o, "startDelayMs", j.startDelayMs, 0, 2000);
  if (j.maxDelayMs < j.minDelayMs) throw Napi::RangeError::New(v.Env(), "jitter.maxDelayMs must be >= minDelayMs");
  return j;
}

// Turn-taking tunables object (all fields given by the JS side, validated natively too).
vad::TurnTunables turnArg(const Napi::Value& v) {
  vad::TurnTunables t;
  if (!v.IsObject()) return t;
  Napi::Object o = v.As<Napi::Object>();
  auto num = [&](const char* k, double def) {
    Napi::Value x = o.Get(k);
    return x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : def;
  };
  t.activationThreshold = static_cast<float>(num("activationThreshold", t.activationThreshold));
  t.deactivationThreshold = static_cast<float>(num("deactivationThreshold", t.deactivationThreshold));
  t.minSpeechMs = static_cast<int>(num("minSpeechMs", t.minSpeechMs));
  t.onsetMaxGapMs = static_cast<int>(num("onsetMaxGapMs", t.onsetMaxGapMs));
  t.endpointSilenceMs = static_cast<int>(num("endpointSilenceMs", t.endpointSilenceMs));
  t.digitsEndpointSilenceMs = static_cast<int>(num("digitsEndpointSilenceMs", t.digitsEndpointSilenceMs));
  t.minInterruptionMs = static_cast<int>(num("minInterruptionMs", t.minInterruptionMs));
  t.falseInterruptionMinSpeechMs = static_cast<int>(num("falseInterruptionMinSpeechMs", t.falseInterruptionMinSpeechMs));
  t.preRollFrames = static_cast<int>(num("preRollFrames", t.preRollFrames));
  t.pauseOnsetMs = static_cast<int>(num("pauseOnsetMs", t.pauseOnsetMs));
  t.pauseHoldMs = static_cast<int>(num("pauseHoldMs", t.pauseHoldMs));
  t.latencyCompensationMs = static_cast<int>(num("latencyCompensationMs", t.latencyCompensationMs));
  t.pauseCueProb = static_cast<float>(num("pauseCueProb", t.pauseCueProb));
  t.pauseCueSnrDb = static_cast<float>(num("pauseCueSnrDb", t.pauseCueSnrDb));
  t.pauseDuckDb = static_cast<float>(num("pauseDuckDb", t.pauseDuckDb));
  if (const char* err = vad::validateTunables(t)) throw Napi::RangeError::New(v.Env(), std::string("turn tunables: ") + err);
  return t;
}

OpusParams opusArg(const Napi::Value& v) {
  OpusParams p;
  if (!v.IsObject()) return p;
  Napi::Object o = v.As<Napi::Object>();
  p.bitrate = optInt(o, "bitrate", 0, 0, 510000);
  p.fec = o.Get("fec").ToBoolean().Value();
  p.dtx = o.Get("dtx").ToBoolean().Value();
  p.maxPlaybackRate = optInt(o, "maxPlaybackRate", 48000, 8000, 48000);
  p.lossPercent = optInt(o, "lossPercent", 10, 0, 100);
  return p;
}

const char* putResultName(JitterBuffer::PutResult r) {
  switch (r) {
    case JitterBuffer::PutResult::Accepted: return "accepted";
    case JitterBuffer::PutResult::Duplicate: return "duplicate";
    case JitterBuffer::PutResult::Late: return "late";
    case JitterBuffer::PutResult::Overflow: return "overflow";
    case JitterBuffer::PutResult::TooBig: return "too-big";
    case JitterBuffer::PutResult::Reset: return "reset";
  }
  return "unknown";
}

Napi::Object playoutStatsObj(Napi::Env env, const PlayoutStats& p) {
  Napi::Object o = Napi::Object::New(env);
  const JitterStats& j = p.jb;
  o.Set("received", static_cast<double>(j.received));
  o.Set("expected", static_cast<double>(j.expected));
  o.Set("lost", static_cast<double>(j.lost));
  o.Set("late", static_cast<double>(j.late));
  o.Set("duplicates", static_cast<double>(j.duplicates));
  o.Set("overflow", static_cast<double>(j.overflow));
  o.Set("resets", static_cast<double>(j.resets));
  o.Set("ssrcChanges", static_cast<double>(j.ssrcChanges));
  o.Set("underruns", static_cast<double>(j.underruns));
  o.Set("jitterMs", j.jitterMs);
  o.Set("bufferDelayMs", j.bufferDelayMs);
  o.Set("targetDelayMs", j.targetDelayMs);
  o.Set("framesOut", static_cast<double>(p.framesOut));
  o.Set("concealed", static_cast<double>(p.concealed));
  o.Set("fecRecovered", static_cast<double>(p.fecRecovered));
  o.Set("shrinks", static_cast<double>(p.shrinks));
  o.Set("stretches", static_cast<double>(p.stretches));
  o.Set("decodeErrors", static_cast<double>(p.decodeErrors));
  return o;
}

int intArg(const Napi::Value& v, const char* name, int lo, int hi);
int optInt(const Napi::Object& o, const char* name, int def, int lo, int hi) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return def;
  return intArg(v, name, lo, hi);
}

int intArg(const Napi::Value& v, const char* name, int lo, int hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<int>(d))
    throw Napi::RangeError::New(v.Env(), std::string(name) + " must be an integer in " + std::to_string(lo) + ".." +
                                             std::to_string(hi));
  return static_cast<int>(d);
}

Napi::Int16Array int16Arg(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int16_array)
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be an Int16Array");
  return v.As<Napi::Int16Array>();
}

Napi::Uint8Array uint8Arg(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a Uint8Array");
  return v.As<Napi::Uint8Array>();
}

SrtpSuite srtpSuiteArg(const Napi::Value& v) {
  SrtpSuite s;
  if (!v.IsString() || !srtpSuiteFromName(v.As<Napi::String>().Utf8Value(), &s))
    throw Napi::TypeError::New(v.Env(), "srtp suite must be AES_CM_128_HMAC_SHA1_80 or AES_CM_128_HMAC_SHA1_32");
  return s;
}

// A 30-byte master key || salt (Uint8Array / Buffer) copied into dst; the caller wipes dst.
void srtpKeyArg(const Napi::Value& v, const char* name, uint8_t dst[kSrtpKeySaltLen]) {
  Napi::Uint8Array k = uint8Arg(v, name);
  if (k.ElementLength() != kSrtpKeySaltLen)
    throw Napi::RangeError::New(v.Env(), std::string(name) + " must be 30 bytes (16 key + 14 salt)");
  std::memcpy(dst, k.Data(), kSrtpKeySaltLen);
}

// {suite, localKey, remoteKey} → SrtpKeys (wiped by the caller)
void srtpKeysArg(const Napi::Value& v, SrtpKeys* out) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "srtp must be {suite, localKey, remoteKey}");
  Napi::Object o = v.As<Napi::Object>();
  out->suite = srtpSuiteArg(o.Get("suite"));
  srtpKeyArg(o.Get("localKey"), "srtp.localKey", out->local);
  srtpKeyArg(o.Get("remoteKey"), "srtp.remoteKey", out->remote);
}

// ---------------------------------------------------------------- engine registry
// Engines by key, so that a VAD worker thread (its own JS environment) can consume an engine's
// hand-overs and answer them without a JS round trip through the main thread. Guarded by
// gEnginesMu; an EngineWrap removes its engine BEFORE stopping it, and vadResultsTo calls into
// the engine while holding the lock, so no other thread uses an engine that is being stopped.
std::mutex gEnginesMu;
std::unordered_map<uint32_t, Engine*> gEngines;
uint32_t gNextEngineKey = 1;

uint32_t registerEngine(Engine* e) {
  std::lock_guard<std::mutex> lk(gEnginesMu);
  const uint32_t key = gNextEngineKey++;
  gEngines[key] = e;
  return key;
}

void unregisterEngine(uint32_t key) {
  std::lock_guard<std::mutex> lk(gEnginesMu);
  auto it = gEngines.find(key);
  if (it == gEngines.end()) return;
  it->second->setVadSink(nullptr);  // no hand-over goes to a consumer of a stopping engine
  gEngines.erase(it);
}

/** Answer one hand-over of the engine `key`; false when that engine is gone. Any thread. */
bool vadResultsTo(uint32_t key, std::vector<uint32_t> ids, std::vector<float> probs) {
  std::lock_guard<std::mutex> lk(gEnginesMu);
  auto it = gEngines.find(key);
  if (it == gEngines.end()) return false;
  it->second->vadResults(std::move(ids), std::move(probs));
  return true;
}

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&EngineWrap::CreateSession>("createSession"),
                           InstanceMethod<&EngineWrap::CloseSession>("closeSession"),
                           InstanceMethod<&EngineWrap::SetRemote>("setRemote"),
                           InstanceMethod<&EngineWrap::SetCodec>("setCodec"),
                           InstanceMethod<&EngineWrap::SetSrtpRemote>("setSrtpRemote"),
                           InstanceMethod<&EngineWrap::Play>("play"),
                           InstanceMethod<&EngineWrap::Flush>("flush"),
                           InstanceMethod<&EngineWrap::QueuedSamples>("queuedSamples"),
                           InstanceMethod<&EngineWrap::Stats>("stats"),
                           InstanceMethod<&EngineWrap::PacingStats>("pacingStats"),
                           InstanceMethod<&EngineWrap::ResetPacingStats>("resetPacingStats"),
                           InstanceMethod<&EngineWrap::PacingHistogram>("pacingHistogram"),
                           InstanceMethod<&EngineWrap::Heartbeat>("heartbeat"),
                           InstanceMethod<&EngineWrap::ActiveSessions>("activeSessions"),
                           InstanceMethod<&EngineWrap::Serves>("serves"),
                           InstanceMethod<&EngineWrap::Close>("close"),
                           InstanceMethod<&EngineWrap::Scheduling>("scheduling"),
                           InstanceMethod<&EngineWrap::SetOpusParams>("setOpusParams"),
                           InstanceMethod<&EngineWrap::SetTelephoneEvent>("setTelephoneEvent"),
                           InstanceMethod<&EngineWrap::SetDirection>("setDirection"),
                           InstanceMethod<&EngineWrap::SendDtmf>("sendDtmf"),
                           InstanceMethod<&EngineWrap::Bridge>("bridge"),
                           InstanceMethod<&EngineWrap::Unbridge>("unbridge"),
                           InstanceMethod<&EngineWrap::StartRecording>("startRecording"),
                           InstanceMethod<&EngineWrap::StopRecording>("stopRecording"),
                           InstanceMethod<&EngineWrap::VadResults>("vadResults"),
                           InstanceMethod<&EngineWrap::SetDigitsPending>("setDigitsPending"),
                           InstanceMethod<&EngineWrap::SetAudioEvents>("setAudioEvents"),
                           InstanceMethod<&EngineWrap::SetUtterancePreRoll>("setUtterancePreRoll"),
                           InstanceMethod<&EngineWrap::SetTurnTunables>("setTurnTunables"),
                           InstanceMethod<&EngineWrap::VadKey>("vadKey"),
                       });
  }

  // new Engine({bindAddress, portMin, portMax}, (events) => void)
  EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
      throw Napi::TypeError::New(env, "Engine(options, onEvents)");
    Napi::Object o = info[0].As<Napi::Object>();
    EngineOptions opts;
    if (o.Has("bindAddress")) opts.bindAddress = o.Get("bindAddress").ToString().Utf8Value();
    if (o.Has("bindAddress6") && o.Get("bindAddress6").IsString()) opts.bindAddress6 = o.Get("bindAddress6").ToString().Utf8Value();
    if (o.Has("portMin")) opts.portMin = intArg(o.Get("portMin"), "portMin", 1, 65535);
    if (o.Has("portMax")) opts.portMax = intArg(o.Get("portMax"), "portMax", 1, 65535);
    if (o.Has("rtPriority")) opts.rtPriority = intArg(o.Get("rtPriority"), "rtPriority", 0, 99);
    if (o.Has("idFirst")) opts.idFirst = static_cast<uint32_t>(intArg(o.Get("idFirst"), "idFirst", 1, 1 << 20));
    if (o.Has("idStride")) opts.idStride = static_cast<uint32_t>(intArg(o.Get("idStride"), "idStride", 1, 64));

    auto pool = std::make_shared<BatchPool>();
    auto* ctx = new TsfnContext{pool};
    tsfn_ = Tsfn::New(env, info[1].As<Napi::Function>(), "voice_core.media_events", 0, 1, ctx,
                      [](Napi::Env, void*, TsfnContext* c) { delete c; });
    // Idle engines must not keep the process alive; Ref() while sessions exist.
    tsfn_.Unref(env);
    Tsfn tsfn = tsfn_;
    try {
      engine_ = std::make_unique<Engine>(opts, pool, [tsfn](Batch* b) { return tsfn.NonBlockingCall(b) == napi_ok; });
    } catch (const std::exception& e) {
      tsfn_.Release();
      released_ = true;
      throw Napi::Error::New(env, e.what());
    }
    key_ = registerEngine(engine_.get());
    hook_ = env.AddCleanupHook(&EngineWrap::OnEnvCleanup, this);
  }

  ~EngineWrap() override {
    if (!hookRan_ && !hook_.IsEmpty()) hook_.Remove(Env());
    unregisterEngine(key_);
    if (engine_) engine_->stop();
  }

 private:
  static void OnEnvCleanup(EngineWrap* self) {
    // Environment teardown (process exit, worker end) without close(): stop
    // the media thread so it never touches a dead environment.
    self->hookRan_ = true;
    unregisterEngine(self->key_);
    if (self->engine_) self->engine_->stop();
  }

  Engine& engine(const Napi::Env& env) {
    if (!engine_ || !engine_->running()) throw Napi::Error::New(env, "media engine is closed");
    return *engine_;
  }

  std::shared_ptr<Session> session(const Napi::CallbackInfo& info) {
    const int id = intArg(info[0], "session id", 0, INT32_MAX);
    auto s = engine(info.Env()).find(static_cast<uint32_t>(id));
    if (!s) throw Napi::Error::New(info.Env(), "media session " + std::to_string(id) + " is closed");
    return s;
  }

  void updateRef(Napi::Env env) {
    const bool want = engine_ && engine_->activeSessions() > 0;
    if (want == refd_ || released_) return;
    if (want) tsfn_.Ref(env); else tsfn_.Unref(env);
    refd_ = want;
  }

  // createSession({codec, payloadType, telephoneEventPayloadType?, remoteAddress?, remotePort?})
  Napi::Value CreateSession(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& eng = engine(env);
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "createSession(options)");
    Napi::Object o = info[0].As<Napi::Object>();
    const Codec codec = parseCodec(o.Get("codec"));
    const int pt = intArg(o.Get("payloadType"), "payloadType", 0, 127);
    int tePt = -1;
    Napi::Value te = o.Get("telephoneEventPayloadType");
    if (!te.IsUndefined() && !te.IsNull()) tePt = intArg(te, "telephoneEventPayloadType", 0, 127);
    SockAddr remote;
    bool haveRemote = false;
    Napi::Value ra = o.Get("remoteAddress");
    if (!ra.IsUndefined() && !ra.IsNull()) {
      std::string err;
      const int port = intArg(o.Get("remotePort"), "remote port", 1, 65535);
      if (!parseAddress(ra.ToString().Utf8Value(), static_cast<uint16_t>(port), &remote, &err))
        throw Napi::TypeError::New(env, "remote: " + err);
      haveRemote = true;
    }
    SessionConfig cfg;
    cfg.rate = optInt(o, "rate", 8000, 8000, 16000);
    if (cfg.rate != 8000 && cfg.rate != 16000) throw Napi::RangeError::New(env, "rate must be 8000 or 16000");
    cfg.jitter = jitterArg(o.Get("jitter"));
    cfg.opus = opusArg(o.Get("opus"));
    cfg.rtcpIntervalMs = optInt(o, "rtcpIntervalMs", cfg.rtcpIntervalMs, 0, 600000);
    Napi::Value inbandOpt = o.Get("inbandDtmf");
    if (inbandOpt.IsBoolean()) cfg.inbandDtmf = inbandOpt.As<Napi::Boolean>().Value();
    Napi::Value vadOpt = o.Get("vad");
    if (vadOpt.IsObject()) {
      cfg.vad = true;
      cfg.turn = turnArg(vadOpt);
      const char* rateErr = nullptr;
      vad::vadRateFromEnv(&rateErr);
      if (rateErr) throw Napi::Error::New(env, rateErr);
    }
    const int family = optInt(o, "family", 0, 0, 6);
    if (family != 0 && family != 4 && family != 6) throw Napi::RangeError::New(env, "family must be 4 or 6");
    SrtpKeys keys;
    const bool srtp = !o.Get("srtp").IsUndefined() && !o.Get("srtp").IsNull();
    if (srtp) srtpKeysArg(o.Get("srtp"), &keys);
    std::string err;
    auto s = eng.createSession(codec, static_cast<uint8_t>(pt), tePt, haveRemote ? &remote : nullptr, &err, cfg, family,
                               srtp ? &keys : nullptr);
    srtpWipe(&keys, sizeof keys);
    if (!s) throw Napi::Error::New(env, "cannot create media session: " + err);
    updateRef(env);
    Napi::Object r = Napi::Object::New(env);
    r.Set("id", Napi::Number::New(env, s->id));
    r.Set("localAddress", Napi::String::New(env, s->local.host()));
    r.Set("localPort", Napi::Number::New(env, s->local.port()));
    r.Set("rtcpPort", s->rtcpFd() >= 0 ? Napi::Number::New(env, s->local.port() + 1) : env.Null());
    return r;
  }

  Napi::Value CloseSession(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_ || !engine_->running()) return Napi::Boolean::New(env, false);
    const int id = intArg(info[0], "session id", 0, INT32_MAX);
    const bool ok = engine_->closeSession(static_cast<uint32_t>(id));
    updateRef(env);
    return Napi::Boolean::New(env, ok);
  }

  void SetRemote(const Napi::CallbackInfo& info) {
    auto s = session(info);
    const int port = intArg(info[2], "port", 1, 65535);
    SockAddr a;
    std::string err;
    if (!parseAddress(info[1].ToString().Utf8Value(), static_cast<uint16_t>(port), &a, &err))
      throw Napi::TypeError::New(info.Env(), "setRemote: " + err);
    int rtcpPort = 0;
    if (info.Length() > 3 && info[3].IsNumber()) rtcpPort = intArg(info[3], "rtcpPort", 1, 65535);
    if (!adaptRemote(s->local, s->dualStack, &a, &err)) throw Napi::Error::New(info.Env(), "setRemote: " + err);
    s->setRemote(a, static_cast<uint16_t>(rtcpPort));
  }

  void SetCodec(const Napi::CallbackInfo& info) {
    auto s = session(info);
    const Codec c = parseCodec(info[1]);
    std::string err;
    if (!s->setCodec(c, static_cast<uint8_t>(intArg(info[2], "payloadType", 0, 127)), &err))
      throw Napi::Error::New(info.Env(), "setCodec: " + err);
  }

  // setSrtpRemote(id, suite, remoteKey): the peer re-keyed (re-INVITE)
  void SetSrtpRemote(const Napi::CallbackInfo& info) {
    auto s = session(info);
    const SrtpSuite suite = srtpSuiteArg(info[1]);
    uint8_t key[kSrtpKeySaltLen];
    srtpKeyArg(info[2], "remoteKey", key);
    std::string err;
    const bool ok = s->setSrtpRemote(suite, key, &err);
    srtpWipe(key, sizeof key);
    if (!ok) throw Napi::Error::New(info.Env(), "setSrtpRemote: " + err);
  }

  void SetOpusParams(const Napi::CallbackInfo& info) { session(info)->setOpusParams(opusArg(info[1])); }

  void SetTelephoneEvent(const Napi::CallbackInfo& info) {
    auto s = session(info);
    s->setTelephoneEventPt(info[1].IsNumber() ? intArg(info[1], "telephoneEventPayloadType", 0, 127) : -1);
  }

  // setDirection(id, 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive'): our side's SDP direction.
  void SetDirection(const Napi::CallbackInfo& info) {
    auto s = session(info);
    const std::string d = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string();
    bool send, recv;
    if (d == "sendrecv") send = recv = true;
    else if (d == "sendonly") { send = true; recv = false; }
    else if (d == "recvonly") { send = false; recv = true; }
    else if (d == "inactive") send = recv = false;
    else throw Napi::TypeError::New(info.Env(), "setDirection: direction must be sendrecv, sendonly, recvonly or inactive");
    s->setDirection(send, recv);
  }

  // sendDtmf(id, digits, durationMs, gapMs)
  void SendDtmf(const Napi::CallbackInfo& info) {
    auto s = session(info);
    if (!info[1].IsString()) throw Napi::TypeError::New(info.Env(), "digits must be a string");
    std::string err;
    if (!s->sendDtmf(info[1].As<Napi::String>().Utf8Value(), intArg(info[2], "durationMs", 40, 5000),
                     intArg(info[3], "gapMs", 20, 5000), &err))
      throw Napi::Error::New(info.Env(), "sendDtmf: " + err);
  }

  void Bridge(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& eng = engine(env);
    const int a = intArg(info[0], "session id", 0, INT32_MAX);
    const int b = intArg(info[1], "session id", 0, INT32_MAX);
    std::string err;
    if (!eng.bridge(static_cast<uint32_t>(a), static_cast<uint32_t>(b), &err)) throw Napi::Error::New(env, "bridge: " + err);
  }

  Napi::Value Unbridge(const Napi::CallbackInfo& info) {
    Engine& eng = engine(info.Env());
    return Napi::Boolean::New(info.Env(), eng.unbridge(static_cast<uint32_t>(intArg(info[0], "session id", 0, INT32_MAX))));
  }

  // startRecording(id, path, rate)
  void StartRecording(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto s = session(info);
    if (s->recorderJs) throw Napi::Error::New(env, "startRecording: already recording to " + s->recorderJs->path());
    if (!info[1].IsString()) throw Napi::TypeError::New(env, "path must be a string");
    const int rate = info[2].IsNumber() ? intArg(info[2], "sampleRate", 8000, 16000) : s->rate();
    if (rate != 8000 && rate != 16000) throw Napi::RangeError::New(env, "sampleRate must be 8000 or 16000");
    std::string err;
    auto rec = Recorder::open(info[1].As<Napi::String>().Utf8Value(), rate, s->rate(), &err);
    if (!rec) throw Napi::Error::New(env, "startRecording: " + err);
    s->recorderJs = rec;
    engine(env).setRecorder(s->id, rec);
  }

  // stopRecording(id) → {path, frames, dropped} | null
  Napi::Value StopRecording(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto s = session(info);
    if (!s->recorderJs) return env.Null();
    engine(env).setRecorder(s->id, nullptr);  // waits until the media thread let go
    auto rec = std::move(s->recorderJs);
    rec->stop();
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", rec->path());
    o.Set("frames", static_cast<double>(rec->framesWritten()));
    o.Set("dropped", static_cast<double>(rec->framesDropped()));
    o.Set("sampleRate", rec->rate());
    return o;
  }

  // play(id, pcm, uninterruptible?)
  void Play(const Napi::CallbackInfo& info) {
    auto s = session(info);
    Napi::Int16Array pcm = int16Arg(info[1], "pcm");
    const bool unint = info.Length() > 2 && info[2].ToBoolean().Value();
    std::string err;
    if (!s->play(pcm.Data(), pcm.ElementLength(), &err, unint)) throw Napi::RangeError::New(info.Env(), "play: " + err);
  }

  // vadResults(ids: Uint32Array, probs: Float32Array): one probability per window of a 'vad' event, in order.
  void VadResults(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& eng = engine(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      throw Napi::TypeError::New(env, "vadResults: ids must be a Uint32Array");
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(env, "vadResults: probs must be a Float32Array");
    Napi::Uint32Array ids = info[0].As<Napi::Uint32Array>();
    Napi::Float32Array probs = info[1].As<Napi::Float32Array>();
    if (ids.ElementLength() != probs.ElementLength()) throw Napi::RangeError::New(env, "vadResults: ids and probs differ in length");
    eng.vadResults(std::vector<uint32_t>(ids.Data(), ids.Data() + ids.ElementLength()),
                   std::vector<float>(probs.Data(), probs.Data() + probs.ElementLength()));
  }

  void SetDigitsPending(const Napi::CallbackInfo& info) { session(info)->setDigitsPending(info[1].ToBoolean().Value()); }
  // setAudioEvents(id, on): 'audio' events for this session only while JS consumes them
  void SetAudioEvents(const Napi::CallbackInfo& info) { session(info)->setAudioEvents(info[1].ToBoolean().Value()); }
  // setUtterancePreRoll(id, ms): audio added before each speechEnd utterance, 0..2000 ms
  void SetUtterancePreRoll(const Napi::CallbackInfo& info) {
    std::shared_ptr<Session> s = session(info);
    const int ms = intArg(info[1], "utterance pre-roll ms", 0, 2000);
    s->setUtterancePreRoll(static_cast<uint32_t>(ms) * 8);
  }

  void SetTurnTunables(const Napi::CallbackInfo& info) {
    auto s = session(info);
    if (!s->vadEnabled()) throw Napi::Error::New(info.Env(), "setTurnTunables: VAD is not enabled for this session");
    std::string err;
    if (!s->setTurnTunables(turnArg(info[1]), &err)) throw Napi::RangeError::New(info.Env(), "setTurnTunables: " + err);
  }

  void Flush(const Napi::CallbackInfo& info) { session(info)->flush(); }

  Napi::Value QueuedSamples(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(session(info)->queuedSamples()));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const SessionStats st = session(info)->stats(monoNs());
    Napi::Object o = Napi::Object::New(env);
    o.Set("packetsIn", static_cast<double>(st.packetsIn));
    o.Set("packetsOut", static_cast<double>(st.packetsOut));
    o.Set("bytesIn", static_cast<double>(st.bytesIn));
    o.Set("bytesOut", static_cast<double>(st.bytesOut));
    o.Set("invalidIn", static_cast<double>(st.invalidIn));
    o.Set("telephoneEventsIn", static_cast<double>(st.telephoneEventsIn));
    o.Set("sendErrors", static_cast<double>(st.sendErrors));
    o.Set("inboundDropped", static_cast<double>(st.inboundDropped));
    o.Set("lastRxAgoMs", st.lastRxAgoMs < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(st.lastRxAgoMs)));
    if (st.haveRemote) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("address", st.remote.host());
      r.Set("port", static_cast<double>(st.remote.port()));
      o.Set("remote", r);
    } else {
      o.Set("remote", env.Null());
    }
    o.Set("latched", st.latched);
    o.Set("ssrcOut", static_cast<double>(st.ssrcOut));
    o.Set("seqOut", static_cast<double>(st.seqOut));
    o.Set("sending", Napi::Boolean::New(env, st.sending));
    o.Set("dtmfIn", static_cast<double>(st.dtmfIn));
    o.Set("dtmfOut", static_cast<double>(st.dtmfOut));
    o.Set("inbandDtmf", Napi::Boolean::New(env, st.inbandDtmf));
    o.Set("srtp", st.srtpSuite < 0 ? env.Null() : Napi::String::New(env, srtpSuiteName(static_cast<SrtpSuite>(st.srtpSuite))));
    o.Set("srtpAuthFail", static_cast<double>(st.srtpAuthFail));
    o.Set("srtpReplay", static_cast<double>(st.srtpReplay));
    o.Set("srtpInvalid", static_cast<double>(st.srtpInvalid));
    o.Set("srtpProtectFail", static_cast<double>(st.srtpProtectFail));
    o.Set("jitter", playoutStatsObj(env, st.playout));
    Napi::Object rc = Napi::Object::New(env);
    rc.Set("packetsIn", static_cast<double>(st.rtcp.packetsIn));
    rc.Set("packetsOut", static_cast<double>(st.rtcp.packetsOut));
    rc.Set("invalidIn", static_cast<double>(st.rtcp.invalidIn));
    rc.Set("haveSr", st.rtcp.haveSr);
    if (st.rtcp.haveRemoteReport) {
      Napi::Object rr = Napi::Object::New(env);
      rr.Set("fractionLost", st.rtcp.remoteFractionLost);
      rr.Set("cumulativeLost", st.rtcp.remoteCumulativeLost);
      rr.Set("jitterMs", st.rtcp.remoteJitterMs);
      rr.Set("rttMs", st.rtcp.rttMs < 0 ? env.Null() : Napi::Number::New(env, st.rtcp.rttMs));
      rc.Set("remoteReport", rr);
    } else {
      rc.Set("remoteReport", env.Null());
    }
    o.Set("rtcp", rc);
    o.Set("bridged", st.bridged);
    o.Set("recording", st.recording);
    o.Set("recordedFrames", static_cast<double>(st.recordedFrames));
    return o;
  }

  Napi::Value PacingStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const PacingSnapshot p = engine_ ? engine_->pacing() : PacingSnapshot{};
    Napi::Object o = Napi::Object::New(env);
    o.Set("samples", static_cast<double>(p.samples));
    o.Set("p50Us", p.p50Us);
    o.Set("p99Us", p.p99Us);
    o.Set("maxUs", p.maxUs);
    return o;
  }

  // Never-reset lateness histogram for /metrics: { boundsUs[], counts[] (per bucket, last =
  // above every bound), count, sumUs }.
  Napi::Value PacingHistogram(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const PacingCumulative c = engine_ ? engine_->pacingCumulative() : PacingCumulative{};
    Napi::Array bounds = Napi::Array::New(env, kPacingPromBounds);
    Napi::Array counts = Napi::Array::New(env, kPacingPromBounds + 1);
    for (int i = 0; i < kPacingPromBounds; ++i) bounds.Set(i, static_cast<double>(kPacingPromBoundsUs[i]));
    for (int i = 0; i <= kPacingPromBounds; ++i) counts.Set(i, static_cast<double>(c.buckets[i]));
    Napi::Object o = Napi::Object::New(env);
    o.Set("boundsUs", bounds);
    o.Set("counts", counts);
    o.Set("count", static_cast<double>(c.count));
    o.Set("sumUs", c.sumUs);
    return o;
  }

  // Liveness probe: returns the media loop's iteration count and wakes the loop once, so a
  // second call shortly after returns a larger number unless the media thread is stuck.
  Napi::Value Heartbeat(const Napi::CallbackInfo& info) {
    if (!engine_) return Napi::Number::New(info.Env(), -1);
    const double n = static_cast<double>(engine_->loops());
    engine_->poke();
    return Napi::Number::New(info.Env(), n);
  }

  void ResetPacingStats(const Napi::CallbackInfo&) {
    if (engine_) engine_->resetPacing();
  }

  // serves(4 | 6): sessions of that address family can be created
  Napi::Value Serves(const Napi::CallbackInfo& info) {
    const int f = intArg(info[0], "family", 4, 6);
    return Napi::Boolean::New(info.Env(), engine_ && engine_->running() && (f == 4 || f == 6) && engine_->serves(f));
  }

  Napi::Value ActiveSessions(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? static_cast<double>(engine_->activeSessions()) : 0);
  }

  Napi::Value Scheduling(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), engine_ ? engine_->scheduling() : "normal");
  }

  // vadKey() → the key a VAD worker attaches with (VadConsumer, vadResultsTo)
  Napi::Value VadKey(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), key_); }

  void Close(const Napi::CallbackInfo& info) {
    unregisterEngine(key_);
    if (engine_) engine_->stop();
    if (!released_) {
      // Pending batches are still delivered (CallJs) before the function finalises.
      tsfn_.Release();
      released_ = true;
    }
    if (!hookRan_ && !hook_.IsEmpty()) {
      hook_.Remove(info.Env());
      hookRan_ = true;
    }
  }

  std::unique_ptr<Engine> engine_;
  uint32_t key_ = 0;
  Tsfn tsfn_;
  bool refd_ = false;
  bool released_ = false;
  bool hookRan_ = false;
  Napi::Env::CleanupHook<void (*)(EngineWrap*), EngineWrap> hook_;
};

// ---------------------------------------------------------------- VAD consumer (worker thread)
// A VAD worker (a worker_threads Worker with its own onnxruntime-node session) consumes an
// engine's hand-overs directly: `new VadConsumer(engineKey, (ids, windows) => …)` in the worker
// creates a thread-safe function in the worker's environment and makes it the engine's VAD
// sink; the worker answers with vadResultsTo(engineKey, ids, probs). The main JS thread is not
// on the path. Teardown: close() (or the worker's environment cleanup) marks the consumer
// closed under its lock — the media thread's sink then refuses and hand-overs go to the main
// thread's event sink again — and releases the function; hand-overs still queued in it when
// the environment is gone are answered NaN (unknown) here, so every hand-over is answered
// once and the media thread's window count stays aligned.
struct VadConsumerState {
  std::mutex mu;
  bool open = true;  // guarded by mu
  uint32_t key = 0;
  std::shared_ptr<BatchPool> pool;
};
struct VadCtx {
  std::shared_ptr<VadConsumerState> st;
};

void answerNan(uint32_t key, const Event& e) {
  vadResultsTo(key, e.ids, std::vector<float>(e.ids.size(), std::numeric_limits<float>::quiet_NaN()));
}

void VadCallJs(Napi::Env env, Napi::Function fn, VadCtx* ctx, Batch* b) {
  struct Recycle {
    VadCtx* ctx;
    Batch* b;
    ~Recycle() { ctx->st->pool->give(b); }
  } recycle{ctx, b};
  if (b->count == 0 || b->events[0].type != EventType::Vad) return;
  const Event& e = b->events[0];
  if (env == nullptr || fn.IsEmpty()) {
    answerNan(ctx->st->key, e);
    return;
  }
  Napi::Uint32Array ids = Napi::Uint32Array::New(env, e.ids.size());
  if (!e.ids.empty()) std::memcpy(ids.Data(), e.ids.data(), e.ids.size() * sizeof(uint32_t));
  Napi::Float32Array win = Napi::Float32Array::New(env, e.f32.size());
  if (!e.f32.empty()) std::memcpy(win.Data(), e.f32.data(), e.f32.size() * sizeof(float));
  try {
    fn.Call({ids, win});
  } catch (const Napi::Error& err) {
    answerNan(ctx->st->key, e);  // the consumer did not take it: answered unknown
    err.ThrowAsJavaScriptException();
  }
}

using VadTsfn = Napi::TypedThreadSafeFunction<VadCtx, Batch, VadCallJs>;

class VadConsumerWrap : public Napi::ObjectWrap<VadConsumerWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "VadConsumer", {InstanceMethod<&VadConsumerWrap::Close>("close")});
  }
  // new VadConsumer(engineKey, (ids: Uint32Array, windows: Float32Array) => void)
  VadConsumerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VadConsumerWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsFunction()) throw Napi::TypeError::New(env, "VadConsumer(engineKey, onHandover)");
    st_ = std::make_shared<VadConsumerState>();
    st_->key = info[0].As<Napi::Number>().Uint32Value();
    std::lock_guard<std::mutex> lk(gEnginesMu);
    auto it = gEngines.find(st_->key);
    if (it == gEngines.end()) throw Napi::Error::New(env, "VadConsumer: no media engine " + std::to_string(st_->key));
    st_->pool = it->second->pool();
    tsfn_ = VadTsfn::New(env, info[1].As<Napi::Function>(), "voice_core.vad_handover", 0, 1, new VadCtx{st_},
                         [](Napi::Env, void*, VadCtx* c) { delete c; });
    tsfn_.Unref(env);  // the worker's port keeps it alive, not this
    std::shared_ptr<VadConsumerState> st = st_;
    VadTsfn tsfn = tsfn_;
    it->second->setVadSink([st, tsfn](Batch* b) {
      std::lock_guard<std::mutex> g(st->mu);
      return st->open && tsfn.NonBlockingCall(b) == napi_ok;
    });
    hook_ = env.AddCleanupHook(&VadConsumerWrap::OnEnvCleanup, this);
  }
  ~VadConsumerWrap() override {
    if (!hookRan_ && !hook_.IsEmpty()) hook_.Remove(Env());
    shut();
  }

 private:
  static void OnEnvCleanup(VadConsumerWrap* self) {
    self->hookRan_ = true;
    self->shut();
  }
  void shut() {
    if (!st_) return;
    {
      std::lock_guard<std::mutex> g(st_->mu);
      if (!st_->open) return;
      st_->open = false;  // the media thread no longer calls the function after this
    }
    tsfn_.Release();  // queued hand-overs are still delivered (or answered NaN at teardown)
  }
  void Close(const Napi::CallbackInfo& info) {
    shut();
    if (!hookRan_ && !hook_.IsEmpty()) {
      hook_.Remove(info.Env());
      hookRan_ = true;
    }
  }
  std::shared_ptr<VadConsumerState> st_;
  VadTsfn tsfn_;
  bool hookRan_ = false;
  Napi::Env::CleanupHook<void (*)(VadConsumerWrap*), VadConsumerWrap> hook_;
};

// vadResultsTo(engineKey, ids: Uint32Array, probs: Float32Array) → false when the engine is gone
Napi::Value VadResultsTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "vadResultsTo: engineKey must be a number");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(env, "vadResultsTo: ids must be a Uint32Array");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "vadResultsTo: probs must be a Float32Array");
  Napi::Uint32Array ids = info[1].As<Napi::Uint32Array>();
  Napi::Float32Array probs = info[2].As<Napi::Float32Array>();
  if (ids.ElementLength() != probs.ElementLength()) throw Napi::RangeError::New(env, "vadResultsTo: ids and probs differ in length");
  const bool ok = vadResultsTo(info[0].As<Napi::Number>().Uint32Value(),
                               std::vector<uint32_t>(ids.Data(), ids.Data() + ids.ElementLength()),
                               std::vector<float>(probs.Data(), probs.Data() + probs.ElementLength()));
  return Napi::Boolean::New(env, ok);
}

// ---------------------------------------------------------------- free functions

Napi::Value UlawEncode(const Napi::CallbackInfo& info) {
  Napi::Int16Array in = int16Arg(info[0], "pcm");
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), in.ElementLength());
  ulawEncode(in.Data(), in.ElementLength(), out.Data());
  return out;
}
Napi::Value AlawEncode(const Napi::CallbackInfo& info) {
  Napi::Int16Array in = int16Arg(info[0], "pcm");
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), in.ElementLength());
  alawEncode(in.Data(), in.ElementLength(), out.Data());
  return out;
}
Napi::Value UlawDecode(const Napi::CallbackInfo& info) {
  Napi::Uint8Array in = uint8Arg(info[0], "bytes");
  Napi::Int16Array out = Napi::Int16Array::New(info.Env(), in.ElementLength());
  ulawDecode(in.Data(), in.ElementLength(), out.Data());
  return out;
}
Napi::Value AlawDecode(const Napi::CallbackInfo& info) {
  Napi::Uint8Array in = uint8Arg(info[0], "bytes");
  Napi::Int16Array out = Napi::Int16Array::New(info.Env(), in.ElementLength());
  alawDecode(in.Data(), in.ElementLength(), out.Data());
  return out;
}

// resample(pcm, inRate, outRate): one-shot, delay-compensated.
Napi::Value Resample(const Napi::CallbackInfo& info) {
  Napi::Int16Array in = int16Arg(info[0], "pcm");
  const int inRate = intArg(info[1], "inRate", 1000, 192000);
  const int outRate = intArg(info[2], "outRate", 1000, 192000);
  std::vector<int16_t> v = Resampler::resampleAll(in.Data(), in.ElementLength(), inRate, outRate);
  Napi::Int16Array out = Napi::Int16Array::New(info.Env(), v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * sizeof(int16_t));
  return out;
}

// parseRtp(bytes) → {payloadType, seq, ...} or a status string (for tests and diagnostics).
Napi::Value ParseRtp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array in = uint8Arg(info[0], "bytes");
  RtpPacket p;
  const RtpStatus st = parseRtp(in.Data(), in.ElementLength(), &p);
  if (st != RtpStatus::Ok) return Napi::String::New(env, rtpStatusName(st));
  Napi::Object o = Napi::Object::New(env);
  o.Set("marker", p.marker);
  o.Set("payloadType", static_cast<double>(p.payloadType));
  o.Set("seq", static_cast<double>(p.seq));
  o.Set("timestamp", static_cast<double>(p.timestamp));
  o.Set("ssrc", static_cast<double>(p.ssrc));
  o.Set("csrcCount", static_cast<double>(p.csrcCount));
  o.Set("payloadOffset", static_cast<double>(p.payload - in.Data()));
  o.Set("payloadLength", static_cast<double>(p.payloadLen));
  return o;
}

// Synthesis on a libuv worker thread: `job` runs in Execute (off the JS thread) and fills the
// PCM; the promise resolves with it as an Int16Array, or rejects with the job's error. Used by
// flite (its own lock inside ttsSynthesize) and espeak-ng (one process-wide mutex inside
// espeakSynthesize, so concurrent workers queue there).
class PcmWorker : public Napi::AsyncWorker {
 public:
  using Job = std::function<bool(std::vector<int16_t>* pcm, std::string* err)>;
  PcmWorker(Napi::Env env, const char* name, Job job)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::string err;
    if (!job_(&pcm_, &err)) SetError(err);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Int16Array out = Napi::Int16Array::New(env, pcm_.size());
    if (!pcm_.empty()) std::memcpy(out.Data(), pcm_.data(), pcm_.size() * sizeof(int16_t));
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  std::vector<int16_t> pcm_;
};

// synthesize(text, voice, sampleRate) → Promise<Int16Array>
Napi::Value Synthesize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "text must be a string");
  const std::string voice = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "kal";
  const int rate = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 8000;
  if (!ttsVoiceKnown(voice)) throw Napi::Error::New(env, "unknown voice '" + voice + "' (kal, kal16, slt, rms, awb)");
  if (rate != 8000 && rate != 16000) throw Napi::RangeError::New(env, "sampleRate must be 8000 or 16000");
  auto* w = new PcmWorker(env, "voice_core.synthesize", [text = info[0].As<Napi::String>().Utf8Value(), voice, rate](std::vector<int16_t>* pcm, std::string* err) {
    return ttsSynthesize(text, voice, rate, pcm, err);
  });
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// espeakSynthesize(text, {voice, wpm?, pitch?}, sampleRate) → Promise<Int16Array>
Napi::Value EspeakSynthesizeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "text must be a string");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "options must be {voice, wpm?, pitch?}");
  Napi::Object o = info[1].As<Napi::Object>();
  EspeakParams p;
  if (!o.Get("voice").IsString()) throw Napi::TypeError::New(env, "voice must be a string");
  p.voice = o.Get("voice").As<Napi::String>().Utf8Value();
  if (o.Get("wpm").IsNumber()) p.wpm = o.Get("wpm").As<Napi::Number>().Int32Value();
  if (o.Get("pitch").IsNumber()) p.pitch = o.Get("pitch").As<Napi::Number>().Int32Value();
  const int rate = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 8000;
  if (rate != 8000 && rate != 16000) throw Napi::RangeError::New(env, "sampleRate must be 8000 or 16000");
  auto* w = new PcmWorker(env, "voice_core.espeakSynthesize", [text = info[0].As<Napi::String>().Utf8Value(), params = std::move(p), rate](std::vector<int16_t>* pcm, std::string* err) {
    return espeakSynthesize(text, params, rate, pcm, err);
  });
  Napi::Promise pr = w->Promise();
  w->Queue();
  return pr;
}

// espeakVoiceKnown(name) → null when espeak-ng has the voice, else the reason (string).
// Takes the espeak-ng lock: for config validation at start-up, not for the call path.
Napi::Value EspeakVoiceKnownJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "voice must be a string");
  std::string err;
  if (espeakVoiceKnown(info[0].As<Napi::String>().Utf8Value(), &err)) return env.Null();
  return Napi::String::New(env, err);
}

// PlayoutTest: the inbound playout (jitter buffer + decoder + PLC) driven by
// scripted arrival and playout instants, for unit tests. Not used by the engine.
class PlayoutTestWrap : public Napi::ObjectWrap<PlayoutTestWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "PlayoutTest",
                       {InstanceMethod<&PlayoutTestWrap::Put>("put"), InstanceMethod<&PlayoutTestWrap::Tick>("tick"),
                        InstanceMethod<&PlayoutTestWrap::Stats>("stats")});
  }
  // new PlayoutTest({codec, payloadType, rate?, jitter?})
  PlayoutTestWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PlayoutTestWrap>(info) {
    if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "PlayoutTest(options)");
    Napi::Object o = info[0].As<Napi::Object>();
    const Codec c = parseCodec(o.Get("codec"));
    const int pt = intArg(o.Get("payloadType"), "payloadType", 0, 127);
    JitterConfig j = jitterArg(o.Get("jitter"));
    j.clockRate = c == Codec::Opus ? 48000 : 8000;
    p_ = std::make_unique<Playout>(optInt(o, "rate", 8000, 8000, 16000), j);
    p_->setCodec(c, pt);
  }

 private:
  static int64_t msToNs(const Napi::Value& v) { return static_cast<int64_t>(v.As<Napi::Number>().DoubleValue() * 1e6); }
  // put(rtpBytes, arrivalMs) → result name
  Napi::Value Put(const Napi::CallbackInfo& info) {
    Napi::Uint8Array b = uint8Arg(info[0], "packet");
    RtpPacket pkt;
    if (parseRtp(b.Data(), b.ElementLength(), &pkt) != RtpStatus::Ok || !p_->accepts(pkt.payloadType))
      return Napi::String::New(info.Env(), "invalid");
    return Napi::String::New(info.Env(), putResultName(p_->put(pkt, msToNs(info[1]))));
  }
  // tick(nowMs[, needOut = true]) → Int16Array (one 20 ms frame at the delivery rate) | null (not
  // started). needOut false, as the media thread ticks a call nobody takes 16 kHz audio from: the
  // frame at 8 kHz instead (G.711), the 16 kHz interpolation only advanced; null for Opus at 16 kHz.
  Napi::Value Tick(const Napi::CallbackInfo& info) {
    int16_t frame[320];
    const bool needOut = !(info.Length() > 1 && info[1].IsBoolean() && !info[1].As<Napi::Boolean>().Value());
    const int16_t* p8 = nullptr;
    if (!p_->tick(msToNs(info[0]), frame, needOut, &p8)) return info.Env().Null();
    if (!needOut) {
      if (!p8) return info.Env().Null();
      Napi::Int16Array out = Napi::Int16Array::New(info.Env(), kFrameSamples);
      std::memcpy(out.Data(), p8, kFrameSamples * sizeof(int16_t));
      return out;
    }
    Napi::Int16Array out = Napi::Int16Array::New(info.Env(), p_->frameSamples());
    std::memcpy(out.Data(), frame, p_->frameSamples() * sizeof(int16_t));
    return out;
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) { return playoutStatsObj(info.Env(), p_->stats()); }
  std::unique_ptr<Playout> p_;
};

// RtpLoadTest: the media-capacity benchmark's carrier-side load (native/rtp_load.h): N G.711
// callers from one loopback socket, jittered and lossy, with the inter-arrival error of what
// comes back. Not used by the engine.
//   new RtpLoadTest({voices: Uint8Array[], jitterMs?, lossPct?, seed?})
//   port() → the socket's port (every caller's source); start(targets: number[]) (one caller per
//   target port on 127.0.0.1); mark(); report() → stats; stop()
class RtpLoadTestWrap : public Napi::ObjectWrap<RtpLoadTestWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "RtpLoadTest",
                       {InstanceMethod<&RtpLoadTestWrap::Port>("port"), InstanceMethod<&RtpLoadTestWrap::Start>("start"),
                        InstanceMethod<&RtpLoadTestWrap::Stop>("stop"), InstanceMethod<&RtpLoadTestWrap::Mark>("mark"),
                        InstanceMethod<&RtpLoadTestWrap::Report>("report")});
  }
  RtpLoadTestWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RtpLoadTestWrap>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "RtpLoadTest(options)");
    Napi::Object o = info[0].As<Napi::Object>();
    RtpLoadConfig c;
    if (!o.Get("voices").IsArray()) throw Napi::TypeError::New(env, "RtpLoadTest: voices must be an array");
    Napi::Array v = o.Get("voices").As<Napi::Array>();
    for (uint32_t i = 0; i < v.Length(); ++i) {
      Napi::Uint8Array b = uint8Arg(v.Get(i), "voices[i]");
      c.voices.emplace_back(b.Data(), b.Data() + b.ElementLength());
    }
    if (o.Has("jitterMs")) c.jitterMs = o.Get("jitterMs").ToNumber().DoubleValue();
    if (o.Has("lossPct")) c.lossPct = o.Get("lossPct").ToNumber().DoubleValue();
    if (o.Has("seed")) c.seed = o.Get("seed").ToNumber().Uint32Value();
    try {
      load_ = std::make_unique<RtpLoad>(std::move(c));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

 private:
  Napi::Value Port(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), load_->port()); }
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "start(targets: number[])");
    Napi::Array t = info[0].As<Napi::Array>();
    std::vector<int> targets;
    for (uint32_t i = 0; i < t.Length(); ++i) targets.push_back(intArg(t.Get(i), "targets[i]", 1, 65535));
    try {
      load_->start(targets);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    return env.Undefined();
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    load_->stop();
    return info.Env().Undefined();
  }
  Napi::Value Mark(const Napi::CallbackInfo& info) {
    load_->mark();
    return info.Env().Undefined();
  }
  Napi::Value Report(const Napi::CallbackInfo& info) {
    const RtpLoadReport r = load_->report();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("seconds", r.seconds);
    o.Set("sent", static_cast<double>(r.sent));
    o.Set("dropped", static_cast<double>(r.dropped));
    o.Set("sendErrors", static_cast<double>(r.sendErrors));
    o.Set("rxPackets", static_cast<double>(r.rxPackets));
    o.Set("rxIntervals", static_cast<double>(r.rxIntervals));
    o.Set("rxGaps", static_cast<double>(r.rxGaps));
    o.Set("rxUnknown", static_cast<double>(r.rxUnknown));
    o.Set("rxP50Us", r.rxP50Us);
    o.Set("rxP99Us", r.rxP99Us);
    o.Set("rxMaxUs", r.rxMaxUs);
    o.Set("sendLateP50Us", r.sendLateP50Us);
    o.Set("sendLateP99Us", r.sendLateP99Us);
    o.Set("cpuPct", r.cpuPct);
    return o;
  }
  std::unique_ptr<RtpLoad> load_;
};

// detectDtmfInband(pcm8k) → [{kind: 'start'|'end', digit, atMs, durationMs?}]: the session's
// in-band DTMF detector run over a whole signal in 20 ms frames (tests, corpus checks).
Napi::Value DetectDtmfInband(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Int16Array in = int16Arg(info[0], "pcm");
  InbandDtmf det;
  Napi::Array res = Napi::Array::New(env);
  uint32_t k = 0;
  const size_t len = in.ElementLength();
  auto put = [&](const DtmfReceiver::Out& o, size_t at) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("kind", o.kind == DtmfReceiver::Out::End ? "end" : "start");
    e.Set("digit", std::string(1, o.digit));
    e.Set("atMs", static_cast<double>(at) / 8.0);
    if (o.kind == DtmfReceiver::Out::End) e.Set("durationMs", static_cast<double>(o.durationTs) / 8.0);
    res.Set(k++, e);
  };
  for (size_t i = 0; i < len; i += kFrameSamples) {
    const size_t n = std::min(kFrameSamples, len - i);
    DtmfReceiver::Out o[2];
    const int m = det.process(in.Data() + i, n, o, 2);
    for (int j = 0; j < m; ++j) put(o[j], i + n);
  }
  DtmfReceiver::Out o;
  if (det.finish(&o)) put(o, len);
  return res;
}

// parseRtcp(bytes, ourSsrc) → parsed object or a status string
Napi::Value ParseRtcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array in = uint8Arg(info[0], "bytes");
  const uint32_t ours = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  RtcpParsed r;
  const RtcpStatus st = parseRtcp(in.Data(), in.ElementLength(), ours, &r);
  if (st != RtcpStatus::Ok) return Napi::String::New(env, rtcpStatusName(st));
  Napi::Object o = Napi::Object::New(env);
  o.Set("packets", r.packets);
  o.Set("senderSsrc", static_cast<double>(r.senderSsrc));
  o.Set("haveSr", r.haveSr);
  if (r.haveSr) {
    o.Set("ntpSeconds", static_cast<double>(r.ntp >> 32));
    o.Set("rtpTimestamp", static_cast<double>(r.rtpTs));
    o.Set("packetCount", static_cast<double>(r.packetCount));
    o.Set("octetCount", static_cast<double>(r.octetCount));
  }
  if (r.haveBlock) {
    Napi::Object b = Napi::Object::New(env);
    b.Set("fractionLost", r.block.fractionLost);
    b.Set("cumulativeLost", r.block.cumulativeLost);
    b.Set("extHighestSeq", static_cast<double>(r.block.extHighestSeq));
    b.Set("jitter", static_cast<double>(r.block.jitter));
    b.Set("lsr", static_cast<double>(r.block.lsr));
    b.Set("dlsr", static_cast<double>(r.block.dlsr));
    o.Set("block", b);
  }
  o.Set("bye", r.bye);
  return o;
}

// SrtpTest: one SrtpContext without sockets or threads (known-answer vectors, tamper and
// replay tests, the SRTP bench). Not used by the engine.
//   new SrtpTest({suite, localKey, remoteKey, ssrc})
//   protect(rtp) / protectRtcp(rtcp) → Uint8Array | null
//   unprotect(srtp) / unprotectRtcp(srtcp) → {status: 'ok'|'auth-fail'|'replay'|'invalid', packet?}
//   setRemote(suite, key): the inbound side re-keyed, as Session::setSrtpRemote does
class SrtpTestWrap : public Napi::ObjectWrap<SrtpTestWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SrtpTest",
                       {InstanceMethod<&SrtpTestWrap::Protect>("protect"),
                        InstanceMethod<&SrtpTestWrap::ProtectRtcp>("protectRtcp"),
                        InstanceMethod<&SrtpTestWrap::Unprotect>("unprotect"),
                        InstanceMethod<&SrtpTestWrap::UnprotectRtcp>("unprotectRtcp"),
                        InstanceMethod<&SrtpTestWrap::SetRemote>("setRemote")});
  }
  SrtpTestWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SrtpTestWrap>(info) {
    SrtpKeys k;
    srtpKeysArg(info[0], &k);
    const Napi::Value ssrc = info[0].As<Napi::Object>().Get("ssrc");
    const uint32_t tx = ssrc.IsNumber() ? ssrc.As<Napi::Number>().Uint32Value() : 0;
    try {
      c_ = std::make_unique<SrtpContext>(k.suite, k.local, k.remote, tx);
    } catch (const std::exception& e) {
      srtpWipe(&k, sizeof k);
      throw Napi::Error::New(info.Env(), e.what());
    }
    srtpWipe(&k, sizeof k);
  }

 private:
  Napi::Value seal(const Napi::CallbackInfo& info, bool rtcp) {
    Napi::Uint8Array in = uint8Arg(info[0], "packet");
    std::vector<uint8_t> b(in.ElementLength() + kSrtpTrailer);
    std::memcpy(b.data(), in.Data(), in.ElementLength());
    size_t n = in.ElementLength();
    const bool ok = rtcp ? c_->protectRtcp(b.data(), &n, b.size()) : c_->protectRtp(b.data(), &n, b.size());
    if (!ok) return info.Env().Null();
    Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), n);
    std::memcpy(out.Data(), b.data(), n);
    return out;
  }
  Napi::Value open(const Napi::CallbackInfo& info, bool rtcp) {
    Napi::Env env = info.Env();
    Napi::Uint8Array in = uint8Arg(info[0], "packet");
    std::vector<uint8_t> b(in.Data(), in.Data() + in.ElementLength());
    size_t n = b.size();
    const SrtpContext::Rx r = rtcp ? c_->unprotectRtcp(b.data(), &n) : c_->unprotectRtp(b.data(), &n);
    Napi::Object o = Napi::Object::New(env);
    static const char* const names[] = {"ok", "auth-fail", "replay", "invalid"};
    o.Set("status", names[static_cast<int>(r)]);
    if (r == SrtpContext::Rx::Ok) {
      Napi::Uint8Array out = Napi::Uint8Array::New(env, n);
      std::memcpy(out.Data(), b.data(), n);
      o.Set("packet", out);
    }
    return o;
  }
  Napi::Value Protect(const Napi::CallbackInfo& info) { return seal(info, false); }
  Napi::Value ProtectRtcp(const Napi::CallbackInfo& info) { return seal(info, true); }
  Napi::Value Unprotect(const Napi::CallbackInfo& info) { return open(info, false); }
  Napi::Value UnprotectRtcp(const Napi::CallbackInfo& info) { return open(info, true); }
  void SetRemote(const Napi::CallbackInfo& info) {
    const SrtpSuite suite = srtpSuiteArg(info[0]);
    uint8_t key[kSrtpKeySaltLen];
    srtpKeyArg(info[1], "remoteKey", key);
    try {
      SrtpContext fresh(suite, nullptr, key, 0);
      srtpWipe(key, sizeof key);
      c_->adoptRemote(fresh);
    } catch (const std::exception& e) {
      srtpWipe(key, sizeof key);
      throw Napi::Error::New(info.Env(), e.what());
    }
  }
  std::unique_ptr<SrtpContext> c_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("PlayoutTest", PlayoutTestWrap::Init(env));
  exports.Set("SrtpTest", SrtpTestWrap::Init(env));
  exports.Set("RtpLoadTest", RtpLoadTestWrap::Init(env));
  exports.Set("parseRtcp", Napi::Function::New<ParseRtcp>(env, "parseRtcp"));
  exports.Set("detectDtmfInband", Napi::Function::New<DetectDtmfInband>(env, "detectDtmfInband"));
  Napi::Array codecs = Napi::Array::New(env, 3);
  codecs.Set(0u, "PCMU");
  codecs.Set(1u, "PCMA");
  codecs.Set(2u, "opus");
  exports.Set("codecs", codecs);
  exports.Set("Engine", EngineWrap::Init(env));
  exports.Set("VadConsumer", VadConsumerWrap::Init(env));
  exports.Set("vadResultsTo", Napi::Function::New<VadResultsTo>(env, "vadResultsTo"));
  exports.Set("ulawEncode", Napi::Function::New<UlawEncode>(env, "ulawEncode"));
  exports.Set("ulawDecode", Napi::Function::New<UlawDecode>(env, "ulawDecode"));
  exports.Set("alawEncode", Napi::Function::New<AlawEncode>(env, "alawEncode"));
  exports.Set("alawDecode", Napi::Function::New<AlawDecode>(env, "alawDecode"));
  exports.Set("resample", Napi::Function::New<Resample>(env, "resample"));
  exports.Set("parseRtp", Napi::Function::New<ParseRtp>(env, "parseRtp"));
  exports.Set("synthesize", Napi::Function::New<Synthesize>(env, "synthesize"));
  exports.Set("espeakSynthesize", Napi::Function::New<EspeakSynthesizeJs>(env, "espeakSynthesize"));
  exports.Set("espeakVoiceKnown", Napi::Function::New<EspeakVoiceKnownJs>(env, "espeakVoiceKnown"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("tickMs", static_cast<double>(kTickNs / 1'000'000));
  c.Set("slots", static_cast<double>(kSlots));
  c.Set("eventBatchMs", static_cast<double>(kEventBatchNs / 1'000'000));
  exports.Set("constants", c);
  return exports;
}

}  // namespace
}  // namespace voice

static Napi::Object InitVoiceCore(Napi::Env env, Napi::Object exports) { return voice::Init(env, exports); }
NODE_API_MODULE(voice_core, InitVoiceCore)
