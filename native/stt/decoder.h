// Local speech-to-text: a pool of pocketsphinx decoders per model configuration
// (acoustic model + dictionary + either a trigram LM or a JSGF grammar, so one
// pool entry per tenant and dialogue state) and whole-utterance decoding with
// n-best and word posteriors.
// No N-API here: stt_addon.cc binds it. Thread-safe: any number of worker
// threads may call DecoderPool::decode at once; each takes its own decoder
// (a ps_decoder_t is used by one thread at a time and owned by the pool while idle).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

struct ps_decoder_s;

namespace voice {

/** Files one decoder is built from. */
struct SttModel {
  std::string hmm;   // acoustic model directory (16 kHz)
  std::string lm;    // ARPA or binary trigram LM (used when jsgf is empty)
  std::string dict;  // pronunciation dictionary
  std::string jsgf;  // JSGF grammar file: an FSG search instead of the LM
  std::string key() const { return hmm + "|" + lm + "|" + dict + "|" + jsgf; }
};

/** One word of the best path. */
struct SttWord {
  std::string word;
  int start = 0, end = 0;  // frames
  double posterior = 0;    // lattice word posterior at the word's middle frame, 0..1
  int32_t ascr = 0;
  std::string alt;         // the strongest other word of the lattice at that frame ("" = none)
  double altPosterior = 0;
};

/** One lattice link (N-gram searches): a word over frames [sf, ef] and its posterior. */
struct SttLink {
  std::string word;  // base word
  int sf = 0, ef = 0;
  double posterior = 0;
};

/** One n-best hypothesis. */
struct SttHyp {
  std::string text;
  int32_t score = 0;  // path score (log base 1.0001)
};

struct SttResult {
  std::string text;
  int32_t score = 0;     // best path score (log base 1.0001, ≤ 0)
  int32_t ascr = 0;      // acoustic part of the best path (sum over words)
  int32_t lscr = 0;      // language-model part
  int frames = 0;        // 10 ms frames decoded
  double posterior = 0;  // utterance posterior from the lattice (0..1)
  double decodeMs = 0;   // wall time of the decode
  double initMs = 0;     // time spent creating a decoder (0 when one was reused)
  std::vector<SttWord> words;  // best path, fillers and <s>/</s> included
  std::vector<SttHyp> nbest;   // distinct word strings, best first (the best path first)
  std::vector<SttLink> links;  // N-gram lattice links with posterior ≥ 0.005 (fillers left out)
};

class DecoderPool {
 public:
  /** @param maxIdle decoders kept per model for reuse (~5 MB each) */
  explicit DecoderPool(size_t maxIdle = 4) : maxIdle_(maxIdle) {}
  ~DecoderPool();
  DecoderPool(const DecoderPool&) = delete;
  DecoderPool& operator=(const DecoderPool&) = delete;

  /**
   * Decode one whole utterance (16-bit mono at `rate`; 8 kHz is upsampled to
   * 16 kHz with the polyphase resampler first), with up to `nbest` distinct
   * hypotheses from the lattice (0: the best path only). Throws std::runtime_error
   * when a decoder cannot be built from `model`.
   */
  SttResult decode(const SttModel& model, const int16_t* pcm, size_t n, int rate, int nbest = 0);

  /**
   * Decoders kept idle over all models (~5 MB each); past it, releasing a decoder frees
   * an idle one of the model with the most idle decoders. @defaultValue 48
   */
  void setMaxIdleTotal(size_t n) { std::lock_guard<std::mutex> g(mu_); maxIdleTotal_ = n; }
  /** Build a decoder now so the first call does not pay for it. */
  void warm(const SttModel& model);
  size_t idle() const;
  void setMaxIdle(size_t n) { std::lock_guard<std::mutex> g(mu_); maxIdle_ = n; }

 private:
  ps_decoder_s* acquire(const SttModel& model, double* initMs);
  void release(const SttModel& model, ps_decoder_s* ps);
  mutable std::mutex mu_;
  size_t maxIdle_;
  size_t maxIdleTotal_ = 48;
  std::map<std::string, std::vector<ps_decoder_s*>> idle_;
};

}  // namespace voice
