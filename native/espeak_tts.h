// Local text-to-speech through espeak-ng (Debian libespeak-ng-dev, linked natively),
// for the languages flite lacks (Spanish and many others). Runs on a libuv worker thread
// (never the media thread, never the JS thread).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace voice {

/** Options of one espeak-ng synthesis. */
struct EspeakParams {
  /** espeak-ng voice name, e.g. "es-419", "en-us", "es-419+f3" (variant after '+'). */
  std::string voice;
  /** Speaking rate in words per minute (espeak-ng range 80..450). 0 = the voice's default (175). */
  int wpm = 0;
  /** Pitch base 0..100. -1 = the voice's default (50). */
  int pitch = -1;
};

/** True when espeak-ng knows `name` (language or voice file; a "+variant" suffix is ignored). */
bool espeakVoiceKnown(const std::string& name, std::string* err);

/**
 * Synthesize `text` (UTF-8) with espeak-ng and resample its 22.05 kHz output to `outRate`
 * (8000 or 16000). Thread-safe: libespeak-ng keeps its state in globals (one current voice,
 * one output buffer, one callback), so every call into the library — initialisation,
 * voice selection, parameters and synthesis — runs under one process-wide mutex; concurrent
 * callers queue for it. Returns false with `err` set on failure.
 */
bool espeakSynthesize(const std::string& text, const EspeakParams& params, int outRate, std::vector<int16_t>* out,
                      std::string* err);

}  // namespace voice
