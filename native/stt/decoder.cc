#include "decoder.h"

#include <algorithm>
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
  const bool fsg = !m.jsgf.empty();
  cmd_ln_t* cfg = cmd_ln_init(nullptr, ps_args(), TRUE,
                              "-hmm", m.hmm.c_str(),
                              fsg ? "-jsgf" : "-lm", fsg ? m.jsgf.c_str() : m.lm.c_str(),
                              "-dict", m.dict.c_str(),
                              "-samprate", "16000",
                              "-bestpath", "yes",
                              nullptr);
  if (cfg && fsg) {
    // Wider beams for grammars (defaults 1e-48 / 7e-29): with them the FSG search prunes
    // every path to the grammar's final state on voices far from the acoustic model more
    // often and returns nothing. Measured (bench stt-grammars, espeak-ng voices, SKU state):
    // slot accuracy 48 % → 55 %, decode p50 323 → 449 ms; 1e-80 gains nothing more and
    // triples the time.
    cmd_ln_set_float_r(cfg, "-beam", 1e-60);
    cmd_ln_set_float_r(cfg, "-pbeam", 1e-60);
    cmd_ln_set_float_r(cfg, "-wbeam", 1e-40);
  }
  if (!cfg) throw std::runtime_error("pocketsphinx: bad configuration (hmm=" + m.hmm + ")");
  ps_decoder_t* ps = ps_init(cfg);
  cmd_ln_free_r(cfg);  // the decoder keeps its own reference
  if (!ps) {
    throw std::runtime_error("pocketsphinx: cannot load model (hmm=" + m.hmm + ", " +
                             (fsg ? "jsgf=" + m.jsgf : "lm=" + m.lm) +
                             ", dict=" + m.dict + "): " + tLastError);
  }
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
  ps_decoder_t* evict = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto& v = idle_[m.key()];
    if (v.size() >= maxIdle_) {
      evict = ps;
    } else {
      v.push_back(ps);
      size_t total = 0;
      auto fullest = idle_.end();
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        total += it->second.size();
        if (fullest == idle_.end() || it->second.size() > fullest->second.size()) fullest = it;
      }
      if (total > maxIdleTotal_ && fullest != idle_.end() && !fullest->second.empty()) {
        evict = fullest->second.front();  // the longest idle of that model
        fullest->second.erase(fullest->second.begin());
      }
    }
  }
  if (evict) ps_free(evict);  // outside the lock
}

void DecoderPool::warm(const SttModel& m) {
  double initMs = 0;
  release(m, acquire(m, &initMs));
}

SttResult DecoderPool::decode(const SttModel& m, const int16_t* pcm, size_t n, int rate, int nbest) {
  SttResult r;
  std::vector<int16_t> up;
  if (rate != 16000) {
    up = Resampler::resampleAll(pcm, n, rate, 16000);
    pcm = up.data();
    n = up.size();
  }
  ps_decoder_t* ps = acquire(m, &r.initMs);
  auto t0 = std::chrono::steady_clock::now();
  // Every utterance is its own stream. The front end keeps channel state across the
  // utterances of a stream (the noise-level estimate of -remove_noise and the speech/silence
  // tracking of -remove_silence), and a pooled decoder would carry that state from whatever
  // it decoded last: the same audio then gave other frames, scores and words depending on
  // which earlier calls (and which worker-thread interleaving) had used the decoder — a
  // result that differed between processes. ps_start_stream resets it, so each decode is
  // the same as on a freshly built decoder.
  bool ok = ps_start_stream(ps) >= 0;
  if (ok) ok = ps_start_utt(ps) >= 0;
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
    logmath_t* lmath = ps_get_logmath(ps);
    const bool fsg = !m.jsgf.empty();
    // Lattice posteriors: the N-gram search computes them with its LM in ps_get_prob.
    // A grammar (FSG search) gets none: building its lattice takes seconds on a
    // 40-code grammar, and its posteriors without an LM are not usable; its words are
    // scored against the open model's lattice instead (pocketsphinx.ts).
    ps_lattice_t* dag = nullptr;
    if (!fsg) {
      r.posterior = logmath_exp(lmath, ps_get_prob(ps));
      dag = ps_get_lattice(ps);
    }
    struct Link {
      std::string word;
      int sf, ef;
      double post;
    };
    std::vector<Link> links;
    if (dag) {
      for (ps_latlink_t* l = ps_lattice_traverse_edges(dag, nullptr, nullptr); l; l = ps_lattice_traverse_next(dag, nullptr)) {
        int16 sf = 0;
        int ef = ps_latlink_times(l, &sf);
        const char* w = ps_latlink_baseword(dag, l);
        int32 ascr = 0;
        links.push_back({w ? w : "", sf, ef, logmath_exp(lmath, ps_latlink_prob(dag, l, &ascr))});
      }
    }
    auto filler = [](const std::string& w) {
      return w.empty() || w[0] == '<' || w[0] == '[' || w[0] == '(' || w[0] == '+';
    };
    for (ps_seg_t* seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
      int32 ascr = 0, lscr = 0, lback = 0;
      ps_seg_prob(seg, &ascr, &lscr, &lback);
      r.ascr += ascr;
      r.lscr += lscr;
      SttWord w;
      const char* word = ps_seg_word(seg);
      w.word = word ? word : "";
      ps_seg_frames(seg, &w.start, &w.end);
      w.ascr = ascr;
      w.posterior = 1;
      if (!filler(w.word) && !links.empty()) {
        // frame-based word posterior: all lattice links of the same word that span the
        // word's middle frame; the strongest other word there is its competitor
        std::string base = w.word.substr(0, w.word.find('('));
        int mid = (w.start + w.end) / 2;
        std::map<std::string, double> at;
        for (const auto& l : links)
          if (l.sf <= mid && mid <= l.ef) at[l.word] += l.post;
        w.posterior = std::min(1.0, at[base]);
        for (const auto& kv : at) {
          if (kv.first == base || filler(kv.first)) continue;
          if (kv.second > w.altPosterior) {
            w.alt = kv.first;
            w.altPosterior = std::min(1.0, kv.second);
          }
        }
      }
      r.words.push_back(std::move(w));
    }
    if (fsg) {
      r.posterior = 1;
      nbest = 0;  // A* needs the lattice
    }
    // the lattice's links for scoring another decode's words against it
    for (const auto& l : links)
      if (l.post >= 0.005 && !filler(l.word)) r.links.push_back({l.word, l.sf, l.ef, l.post});
    if (nbest > 0) {
      // A* over the lattice; consecutive paths often differ only in fillers or timing,
      // so keep distinct word strings and bound the walk.
      int walked = 0;
      ps_nbest_t* nb = ps_nbest(ps);
      while (nb) {
        int32 s = 0;
        const char* h = ps_nbest_hyp(nb, &s);
        if (h) {
          std::string text(h);
          bool seen = false;
          for (const auto& x : r.nbest) seen = seen || x.text == text;
          if (!seen) r.nbest.push_back({text, s});
        }
        if (static_cast<int>(r.nbest.size()) >= nbest || ++walked >= nbest * 20) {
          ps_nbest_free(nb);
          break;
        }
        nb = ps_nbest_next(nb);  // frees the iterator at the end
      }
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
