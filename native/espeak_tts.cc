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

// Where the synthesis in progress collects its samples. Set and cleared under gEspeakMu
// around espeak_ng_Synthesize; the event list's user_data is not relied on (espeak-ng can
// hand over audio with an event list of an earlier synthesis).
std::vector<int16_t>* gOut = nullptr;

// Synchronous mode: espeak-ng calls this on the synthesising thread, inside
// espeak_ng_Synthesize, with gEspeakMu held by that thread.
int onSynth(short* wav, int n, espeak_EVENT*) {
  if (wav && n > 0 && gOut) gOut->insert(gOut->end(), wav, wav + n);
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

// The throwaway text of selectVoice (a short text of two words was not enough in testing).
const char kSettle[] = "para espa\xc3\xb1ol.";

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

// espeak-ng carries prosody state from one synthesis to the next (measured: es-419+f3 right
// after an en-us sentence comes out ~90 ms longer, with longer pauses). One short throwaway
// synthesis first settles it, so a sentence sounds the same whatever another call (another
// tenant, another language) spoke last. Costs ~2 ms per sentence. Caller holds gEspeakMu.
void settle() {
  std::vector<int16_t> scratch;
  gOut = &scratch;
  espeak_ng_Synthesize(kSettle, sizeof kSettle, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, nullptr);
  gOut = nullptr;
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
    const int pitch = p.pitch >= 0 ? p.pitch : 50;
    espeak_ng_SetParameter(espeakRATE, wpm, 0);
    espeak_ng_SetParameter(espeakPITCH, pitch, 0);
    gWpm = wpm;
    gPitch = pitch;
    settle();
    raw.reserve(text.size() * 1200);
    gOut = &raw;
    espeak_ng_STATUS st = espeak_ng_Synthesize(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0,
                                               espeakCHARS_UTF8, nullptr, nullptr);
    gOut = nullptr;
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
