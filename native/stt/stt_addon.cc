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
  if (o.Has("jsgf") && o.Get("jsgf").IsString()) m.jsgf = o.Get("jsgf").As<Napi::String>().Utf8Value();
  if (m.jsgf.empty() && m.lm.empty()) throw Napi::TypeError::New(o.Env(), "model needs lm or jsgf");
  return m;
}

class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, voice::SttModel m, std::vector<int16_t> pcm, int rate, int nbest)
      : Napi::AsyncWorker(env, "voice_stt.decode"), deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(m)), pcm_(std::move(pcm)), rate_(rate), nbest_(nbest) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      res_ = pool().decode(model_, pcm_.data(), pcm_.size(), rate_, nbest_);
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
    Napi::Array words = Napi::Array::New(env, res_.words.size());
    for (size_t i = 0; i < res_.words.size(); ++i) {
      const auto& w = res_.words[i];
      Napi::Object x = Napi::Object::New(env);
      x.Set("word", w.word);
      x.Set("start", w.start);
      x.Set("end", w.end);
      x.Set("posterior", w.posterior);
      x.Set("ascr", w.ascr);
      if (!w.alt.empty()) {
        x.Set("alt", w.alt);
        x.Set("altPosterior", w.altPosterior);
      }
      words.Set(static_cast<uint32_t>(i), x);
    }
    o.Set("words", words);
    Napi::Array nbest = Napi::Array::New(env, res_.nbest.size());
    for (size_t i = 0; i < res_.nbest.size(); ++i) {
      Napi::Object x = Napi::Object::New(env);
      x.Set("text", res_.nbest[i].text);
      x.Set("score", res_.nbest[i].score);
      nbest.Set(static_cast<uint32_t>(i), x);
    }
    o.Set("nbest", nbest);
    // links as parallel arrays (there can be a few hundred)
    size_t nl = res_.links.size();
    Napi::Array lw = Napi::Array::New(env, nl);
    Napi::Int32Array lsf = Napi::Int32Array::New(env, nl), lef = Napi::Int32Array::New(env, nl);
    Napi::Float64Array lp = Napi::Float64Array::New(env, nl);
    for (size_t i = 0; i < nl; ++i) {
      lw.Set(static_cast<uint32_t>(i), res_.links[i].word);
      lsf[i] = res_.links[i].sf;
      lef[i] = res_.links[i].ef;
      lp[i] = res_.links[i].posterior;
    }
    Napi::Object links = Napi::Object::New(env);
    links.Set("word", lw);
    links.Set("start", lsf);
    links.Set("end", lef);
    links.Set("posterior", lp);
    o.Set("links", links);
    deferred_.Resolve(o);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  voice::SttModel model_;
  std::vector<int16_t> pcm_;
  int rate_;
  int nbest_;
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

// decode(model: {hmm, lm, dict, jsgf?}, pcm: Int16Array, rate: number, nbest?: number): Promise<result>
Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsTypedArray() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, "decode(model, pcm: Int16Array, rate, nbest?)");
  auto ta = info[1].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_int16_array) throw Napi::TypeError::New(env, "pcm must be an Int16Array");
  auto arr = info[1].As<Napi::Int16Array>();
  int rate = info[2].As<Napi::Number>().Int32Value();
  if (rate != 8000 && rate != 16000) throw Napi::RangeError::New(env, "rate must be 8000 or 16000");
  int nbest = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
  if (nbest < 0 || nbest > 50) throw Napi::RangeError::New(env, "nbest must be 0..50");
  std::vector<int16_t> pcm(arr.Data(), arr.Data() + arr.ElementLength());  // copy: JS may reuse its buffer
  auto* w = new DecodeWorker(env, modelFrom(info[0].As<Napi::Object>()), std::move(pcm), rate, nbest);
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

Napi::Value SetMaxIdleTotal(const Napi::CallbackInfo& info) {
  pool().setMaxIdleTotal(static_cast<size_t>(info[0].As<Napi::Number>().Uint32Value()));
  return info.Env().Undefined();
}

Napi::Value IdleDecoders(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pool().idle()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("decode", Napi::Function::New(env, Decode));
  exports.Set("warm", Napi::Function::New(env, Warm));
  exports.Set("setPoolSize", Napi::Function::New(env, SetPoolSize));
  exports.Set("setMaxIdleTotal", Napi::Function::New(env, SetMaxIdleTotal));
  exports.Set("idleDecoders", Napi::Function::New(env, IdleDecoders));
  return exports;
}

}  // namespace

NODE_API_MODULE(voice_stt, Init)
