#include "espeak_tts.h"

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>

#include <mutex>

#include "resampler.h"

namespace voice {
namespace {

// libespeak-ng is not reentrant: the current voice, the parameters, the synthesis buffer
// and the synth callback are process globals. Everything that touches the library runs
// under gEspeakMu, so syntheses from several calls run one after another (each sentence
// is short: tens of ms). Never held by the media thread.
std::mutex gEspeakMu;
bool gInit = false;
std::string gInitError;
int gRate = 22050;
std::string gVoice;  // voice currently selected in the library
int gWpm = -1, gPitch = -2;

// Synchronous mode: espeak-ng calls this on the synthesising thread, inside
// espeak_ng_Synthesize; user_data is the caller's output vector.
int onSynth(short* wav, int n, espeak_EVENT* events) {
  if (wav && n > 0 && events && events->user_data) {
    auto* out = static_cast<std::vector<int16_t>*>(events->user_data);
    out->insert(out->end(), wav, wav + n);
  }
  return 0;  // continue
}

std::string statusText(espeak_ng_STATUS st) {
  char buf[512];
  espeak_ng_GetStatusCodeMessage(st, buf, sizeof buf);
  return buf;
}

// Caller holds gEspeakMu.
bool ensureInit(std::string* err) {
  if (gInit) return true;
  if (!gInitError.empty()) {
    if (err) *err = gInitError;
    return false;
  }
  espeak_ng_InitializePath(nullptr);
  espeak_ng_ERROR_CONTEXT ctx = nullptr;
  espeak_ng_STATUS st = espeak_ng_Initialize(&ctx);
  if (st != ENS_OK) {
    gInitError = "espeak-ng could not start: " + statusText(st) + " (is the espeak-ng-data package installed?)";
    espeak_ng_ClearErrorContext(&ctx);
    if (err) *err = gInitError;
    return false;
  }
  st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, nullptr);
  if (st != ENS_OK) {
    gInitError = "espeak-ng output: " + statusText(st);
    if (err) *err = gInitError;
    return false;
  }
  espeak_SetSynthCallback(onSynth);
  gRate = espeak_ng_GetSampleRate();
  gInit = true;
  return true;
}

// Caller holds gEspeakMu.
bool selectVoice(const std::string& name, std::string* err) {
  if (name == gVoice) return true;
  espeak_ng_STATUS st = espeak_ng_SetVoiceByName(name.c_str());
  if (st != ENS_OK) {
    if (err) *err = "espeak-ng has no voice '" + name + "' (" + statusText(st) + "; list them with espeak-ng --voices)";
    gVoice.clear();
    return false;
  }
  gVoice = name;
  gWpm = -1;  // a new voice resets rate and pitch
  gPitch = -2;
  return true;
}

}  // namespace

bool espeakVoiceKnown(const std::string& name, std::string* err) {
  std::lock_guard<std::mutex> lk(gEspeakMu);
  if (!ensureInit(err)) return false;
  return selectVoice(name, err);
}

bool espeakSynthesize(const std::string& text, const EspeakParams& p, int outRate, std::vector<int16_t>* out,
                      std::string* err) {
  if (outRate != 8000 && outRate != 16000) {
    if (err) *err = "sampleRate must be 8000 or 16000";
    return false;
  }
  std::vector<int16_t> raw;
  int rate = 22050;
  {
    std::lock_guard<std::mutex> lk(gEspeakMu);
    if (!ensureInit(err)) return false;
    if (!selectVoice(p.voice, err)) return false;
    const int wpm = p.wpm > 0 ? p.wpm : 175;
    if (wpm != gWpm) {
      espeak_ng_SetParameter(espeakRATE, wpm, 0);
      gWpm = wpm;
    }
    const int pitch = p.pitch >= 0 ? p.pitch : 50;
    if (pitch != gPitch) {
      espeak_ng_SetParameter(espeakPITCH, pitch, 0);
      gPitch = pitch;
    }
    raw.reserve(text.size() * 1200);
    espeak_ng_STATUS st = espeak_ng_Synthesize(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0,
                                               espeakCHARS_UTF8, nullptr, &raw);
    if (st != ENS_OK) {
      if (err) *err = "espeak-ng synthesis failed: " + statusText(st);
      return false;
    }
    rate = gRate;
  }
  if (raw.empty()) {
    if (err) *err = "espeak-ng produced no audio";
    return false;
  }
  // Resampling needs no library state: done outside the lock.
  if (rate == outRate) *out = std::move(raw);
  else *out = Resampler::resampleAll(raw.data(), raw.size(), rate, outRate);
  return true;
}

}  // namespace voice
