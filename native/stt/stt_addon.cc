// N-API face of the local speech-to-text engine (build/Release/voice_stt.node).
// Decoding runs on libuv worker threads (Napi::AsyncWorker), never on the JS
// thread; each worker takes a decoder from the shared pool.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "decoder.h"

namespace {

voice::DecoderPool& pool() {
  static voice::DecoderPool p;  // lives until process exit
  return p;
}

voice::SttModel modelFrom(const Napi::Object& o) {
  voice::SttModel m;
  m.hmm = o.Get("hmm").As<Napi::String>().Utf8Value();
  m.lm = o.Get("lm").As<Napi::String>().Utf8Value();
  m.dict = o.Get("dict").As<Napi::String>().Utf8Value();
  return m;
}

class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, voice::SttModel m, std::vector<int16_t> pcm, int rate)
      : Napi::AsyncWorker(env, "voice_stt.decode"), deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(m)), pcm_(std::move(pcm)), rate_(rate) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      res_ = pool().decode(model_, pcm_.data(), pcm_.size(), rate_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("text", res_.text);
    o.Set("score", res_.score);
    o.Set("ascr", res_.ascr);
    o.Set("lscr", res_.lscr);
    o.Set("frames", res_.frames);
    o.Set("posterior", res_.posterior);
    o.Set("decodeMs", res_.decodeMs);
    o.Set("initMs", res_.initMs);
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  voice::SttModel model_;
  std::vector<int16_t> pcm_;
  int rate_;
  voice::SttResult res_;
};

class WarmWorker : public Napi::AsyncWorker {
 public:
  WarmWorker(Napi::Env env, voice::SttModel m)
      : Napi::AsyncWorker(env, "voice_stt.warm"), deferred_(Napi::Promise::Deferred::New(env)), model_(std::move(m)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      pool().warm(model_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  voice::SttModel model_;
};

// decode(model: {hmm, lm, dict}, pcm: Int16Array, rate: number): Promise<result>
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsTypedArray() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "decode(model, pcm: Int16Array, rate)");
  auto ta = info[1].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_int16_array) throw Napi::TypeError::New(env, "pcm must be an Int16Array");
  auto arr = info[1].As<Napi::Int16Array>();
  int rate = info[2].As<Napi::Number>().Int32Value();
  if (rate != 8000 && rate != 16000) throw Napi::RangeError::New(env, "rate must be 8000 or 16000");
  std::vector<int16_t> pcm(arr.Data(), arr.Data() + arr.ElementLength());  // copy: JS may reuse its buffer
  auto* w = new DecodeWorker(env, modelFrom(info[0].As<Napi::Object>()), std::move(pcm), rate);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Warm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "warm(model)");
  auto* w = new WarmWorker(env, modelFrom(info[0].As<Napi::Object>()));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value SetPoolSize(const Napi::CallbackInfo& info) {
  pool().setMaxIdle(static_cast<size_t>(info[0].As<Napi::Number>().Uint32Value()));
  return info.Env().Undefined();
}

Napi::Value IdleDecoders(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pool().idle()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("decode", Napi::Function::New(env, Decode));
  exports.Set("warm", Napi::Function::New(env, Warm));
  exports.Set("setPoolSize", Napi::Function::New(env, SetPoolSize));
  exports.Set("idleDecoders", Napi::Function::New(env, IdleDecoders));
  return exports;
}

}  // namespace

NODE_API_MODULE(voice_stt, Init)
