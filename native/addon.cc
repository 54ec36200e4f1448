// N-API bindings (node-addon-api): the Engine wrapper, G.711 helpers, the
// resampler and flite synthesis. The only way media-thread data reaches JS is
// the engine's single ThreadSafeFunction (see CallJs below).
#include <napi.h>

#include <cstring>
#include <memory>
#include <string>

#include "engine.h"
#include "g711.h"
#include "resampler.h"
#include "rtp.h"
#include "tts.h"

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
  throw Napi::TypeError::New(v.Env(), "codec must be 'PCMU' or 'PCMA'");
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

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod<&EngineWrap::CreateSession>("createSession"),
                           InstanceMethod<&EngineWrap::CloseSession>("closeSession"),
                           InstanceMethod<&EngineWrap::SetRemote>("setRemote"),
                           InstanceMethod<&EngineWrap::SetCodec>("setCodec"),
                           InstanceMethod<&EngineWrap::Play>("play"),
                           InstanceMethod<&EngineWrap::Flush>("flush"),
                           InstanceMethod<&EngineWrap::QueuedSamples>("queuedSamples"),
                           InstanceMethod<&EngineWrap::Stats>("stats"),
                           InstanceMethod<&EngineWrap::PacingStats>("pacingStats"),
                           InstanceMethod<&EngineWrap::ResetPacingStats>("resetPacingStats"),
                           InstanceMethod<&EngineWrap::ActiveSessions>("activeSessions"),
                           InstanceMethod<&EngineWrap::Close>("close"),
                           InstanceMethod<&EngineWrap::Scheduling>("scheduling"),
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
    if (o.Has("portMin")) opts.portMin = intArg(o.Get("portMin"), "portMin", 1, 65535);
    if (o.Has("portMax")) opts.portMax = intArg(o.Get("portMax"), "portMax", 1, 65535);
    if (o.Has("rtPriority")) opts.rtPriority = intArg(o.Get("rtPriority"), "rtPriority", 0, 99);

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
    hook_ = env.AddCleanupHook(&EngineWrap::OnEnvCleanup, this);
  }

  ~EngineWrap() override {
    if (!hookRan_ && !hook_.IsEmpty()) hook_.Remove(Env());
    if (engine_) engine_->stop();
  }

 private:
  static void OnEnvCleanup(EngineWrap* self) {
    // Environment teardown (process exit, worker end) without close(): stop
    // the media thread so it never touches a dead environment.
    self->hookRan_ = true;
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
    std::string err;
    auto s = eng.createSession(codec, static_cast<uint8_t>(pt), tePt, haveRemote ? &remote : nullptr, &err);
    if (!s) throw Napi::Error::New(env, "cannot create media session: " + err);
    updateRef(env);
    Napi::Object r = Napi::Object::New(env);
    r.Set("id", Napi::Number::New(env, s->id));
    r.Set("localAddress", Napi::String::New(env, s->local.host()));
    r.Set("localPort", Napi::Number::New(env, s->local.port()));
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
    s->setRemote(a);
  }

  void SetCodec(const Napi::CallbackInfo& info) {
    auto s = session(info);
    const Codec c = parseCodec(info[1]);
    s->setCodec(c, static_cast<uint8_t>(intArg(info[2], "payloadType", 0, 127)));
  }

  void Play(const Napi::CallbackInfo& info) {
    auto s = session(info);
    Napi::Int16Array pcm = int16Arg(info[1], "pcm");
    std::string err;
    if (!s->play(pcm.Data(), pcm.ElementLength(), &err)) throw Napi::RangeError::New(info.Env(), "play: " + err);
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

  void ResetPacingStats(const Napi::CallbackInfo&) {
    if (engine_) engine_->resetPacing();
  }

  Napi::Value ActiveSessions(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), engine_ ? static_cast<double>(engine_->activeSessions()) : 0);
  }

  Napi::Value Scheduling(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), engine_ ? engine_->scheduling() : "normal");
  }

  void Close(const Napi::CallbackInfo& info) {
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
  Tsfn tsfn_;
  bool refd_ = false;
  bool released_ = false;
  bool hookRan_ = false;
  Napi::Env::CleanupHook<void (*)(EngineWrap*), EngineWrap> hook_;
};

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

class SynthWorker : public Napi::AsyncWorker {
 public:
  SynthWorker(Napi::Env env, std::string text, std::string voice, int rate)
      : Napi::AsyncWorker(env, "voice_core.synthesize"), deferred_(Napi::Promise::Deferred::New(env)),
        text_(std::move(text)), voice_(std::move(voice)), rate_(rate) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::string err;
    if (!ttsSynthesize(text_, voice_, rate_, &pcm_, &err)) SetError(err);
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
  std::string text_, voice_;
  int rate_;
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
  auto* w = new SynthWorker(env, info[0].As<Napi::String>().Utf8Value(), voice, rate);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Init(env));
  exports.Set("ulawEncode", Napi::Function::New<UlawEncode>(env, "ulawEncode"));
  exports.Set("ulawDecode", Napi::Function::New<UlawDecode>(env, "ulawDecode"));
  exports.Set("alawEncode", Napi::Function::New<AlawEncode>(env, "alawEncode"));
  exports.Set("alawDecode", Napi::Function::New<AlawDecode>(env, "alawDecode"));
  exports.Set("resample", Napi::Function::New<Resample>(env, "resample"));
  exports.Set("parseRtp", Napi::Function::New<ParseRtp>(env, "parseRtp"));
  exports.Set("synthesize", Napi::Function::New<Synthesize>(env, "synthesize"));
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
