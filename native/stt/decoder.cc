#include "decoder.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <stdexcept>

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/logmath.h>

#include "../resampler.h"

namespace voice {

namespace {

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::once_flag gQuiet;
// Error lines of the current thread's last pocketsphinx call, for exception text.
thread_local std::string tLastError;

void onLog(void*, err_lvl_t lvl, const char* fmt, ...) {
  if (lvl < ERR_ERROR) return;  // INFO/WARN: pocketsphinx is very chatty
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (tLastError.size() < 2048) tLastError += buf;
}

ps_decoder_t* create(const SttModel& m) {
  // pocketsphinx logs every setting to stderr by default; silence it once.
  std::call_once(gQuiet, [] {
    err_set_logfp(nullptr);  // no log file: the configuration dump of ps_init goes nowhere
    err_set_callback(onLog, nullptr);
  });
  tLastError.clear();
  cmd_ln_t* cfg = cmd_ln_init(nullptr, ps_args(), TRUE,
                              "-hmm", m.hmm.c_str(),
                              "-lm", m.lm.c_str(),
                              "-dict", m.dict.c_str(),
                              "-samprate", "16000",
                              "-bestpath", "yes",
                              nullptr);
  if (!cfg) throw std::runtime_error("pocketsphinx: bad configuration (hmm=" + m.hmm + ")");
  ps_decoder_t* ps = ps_init(cfg);
  cmd_ln_free_r(cfg);  // the decoder keeps its own reference
  if (!ps) throw std::runtime_error("pocketsphinx: cannot load model (hmm=" + m.hmm + ", lm=" + m.lm + ", dict=" + m.dict + "): " + tLastError);
  return ps;
}

}  // namespace

DecoderPool::~DecoderPool() {
  for (auto& kv : idle_)
    for (ps_decoder_t* ps : kv.second) ps_free(ps);
}

size_t DecoderPool::idle() const {
  std::lock_guard<std::mutex> g(mu_);
  size_t n = 0;
  for (auto& kv : idle_) n += kv.second.size();
  return n;
}

ps_decoder_t* DecoderPool::acquire(const SttModel& m, double* initMs) {
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = idle_.find(m.key());
    if (it != idle_.end() && !it->second.empty()) {
      ps_decoder_t* ps = it->second.back();
      it->second.pop_back();
      *initMs = 0;
      return ps;
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  ps_decoder_t* ps = create(m);  // outside the lock: loading takes ~10 ms
  *initMs = msSince(t0);
  return ps;
}

void DecoderPool::release(const SttModel& m, ps_decoder_t* ps) {
  {
    std::lock_guard<std::mutex> g(mu_);
    auto& v = idle_[m.key()];
    if (v.size() < maxIdle_) {
      v.push_back(ps);
      return;
    }
  }
  ps_free(ps);
}

void DecoderPool::warm(const SttModel& m) {
  double initMs = 0;
  release(m, acquire(m, &initMs));
}

SttResult DecoderPool::decode(const SttModel& m, const int16_t* pcm, size_t n, int rate) {
  SttResult r;
  std::vector<int16_t> up;
  if (rate != 16000) {
    up = Resampler::resampleAll(pcm, n, rate, 16000);
    pcm = up.data();
    n = up.size();
  }
  ps_decoder_t* ps = acquire(m, &r.initMs);
  auto t0 = std::chrono::steady_clock::now();
  bool ok = ps_start_utt(ps) >= 0;
  // full_utt = TRUE: the whole utterance at once, so CMN is computed over it
  // (batch) instead of starting from the model's -cmninit.
  if (ok && n > 0) ok = ps_process_raw(ps, pcm, n, FALSE, TRUE) >= 0;
  if (ok) ok = ps_end_utt(ps) >= 0;
  if (ok) {
    int32 score = 0;
    const char* hyp = ps_get_hyp(ps, &score);
    r.text = hyp ? hyp : "";
    r.score = score;
    r.frames = ps_get_n_frames(ps);
    int32 lp = ps_get_prob(ps);
    r.posterior = logmath_exp(ps_get_logmath(ps), lp);
    for (ps_seg_t* seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
      int32 ascr = 0, lscr = 0, lback = 0;
      ps_seg_prob(seg, &ascr, &lscr, &lback);
      r.ascr += ascr;
      r.lscr += lscr;
    }
  }
  r.decodeMs = msSince(t0);
  if (!ok) {
    ps_free(ps);  // state unknown: do not return it to the pool
    throw std::runtime_error("pocketsphinx: decoding failed");
  }
  release(m, ps);
  return r;
}

}  // namespace voice
