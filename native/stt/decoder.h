// Local speech-to-text: a pool of pocketsphinx decoders per model configuration
// (acoustic model + domain LM + dictionary) and whole-utterance decoding.
// No N-API here: stt_addon.cc binds it. Thread-safe: any number of worker
// threads may call DecoderPool::decode at once; each takes its own decoder.
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
  std::string lm;    // ARPA or binary trigram LM
  std::string dict;  // pronunciation dictionary
  std::string key() const { return hmm + "|" + lm + "|" + dict; }
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
   * 16 kHz with the polyphase resampler first). Throws std::runtime_error
   * when a decoder cannot be built from `model`.
   */
  SttResult decode(const SttModel& model, const int16_t* pcm, size_t n, int rate);

  /** Build a decoder now so the first call does not pay for it. */
  void warm(const SttModel& model);
  size_t idle() const;
  void setMaxIdle(size_t n) { std::lock_guard<std::mutex> g(mu_); maxIdle_ = n; }

 private:
  ps_decoder_s* acquire(const SttModel& model, double* initMs);
  void release(const SttModel& model, ps_decoder_s* ps);
  mutable std::mutex mu_;
  size_t maxIdle_;
  std::map<std::string, std::vector<ps_decoder_s*>> idle_;
};

}  // namespace voice
