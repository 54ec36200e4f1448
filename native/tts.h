// Local text-to-speech through flite (Debian flite1-dev, linked natively).
// Runs on a libuv worker thread (never the media thread, never the JS thread).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace voice {

/** Voices linked into the addon. kal is 8 kHz; kal16, slt, rms, awb are 16 kHz. */
bool ttsVoiceKnown(const std::string& name);

/**
 * Synthesize `text` with `voice` and resample to `outRate` (8000 or 16000).
 * Thread-safe. Returns false with `err` set on failure.
 */
bool ttsSynthesize(const std::string& text, const std::string& voice, int outRate, std::vector<int16_t>* out,
                   std::string* err);

}  // namespace voice
