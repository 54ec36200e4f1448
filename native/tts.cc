#include "tts.h"

#include <flite.h>

#include <map>
#include <memory>
#include <mutex>

#include "resampler.h"

extern "C" {
cst_voice* register_cmu_us_kal(const char* voxdir);
cst_voice* register_cmu_us_kal16(const char* voxdir);
cst_voice* register_cmu_us_slt(const char* voxdir);
cst_voice* register_cmu_us_rms(const char* voxdir);
cst_voice* register_cmu_us_awb(const char* voxdir);
}

namespace voice {
namespace {

struct VoiceEntry {
  cst_voice* (*reg)(const char*);
  cst_voice* voice = nullptr;
  // Synthesis on one voice is serialised: flite voices carry mutable feature
  // lists and some voice code keeps per-voice scratch state, and flite does
  // not document concurrent use of one cst_voice. Different voices run in
  // parallel.
  std::mutex synthMu;
};

// Flite's initialisation and voice registration touch global tables (the
// language/lexicon lists, the voice list) without locking, so both happen
// once, lazily, under this mutex.
std::mutex gRegistryMu;
bool gInit = false;

std::map<std::string, VoiceEntry>& voices() {
  static std::map<std::string, VoiceEntry> v = [] {
    std::map<std::string, VoiceEntry> m;
    m["kal"].reg = register_cmu_us_kal;
    m["kal16"].reg = register_cmu_us_kal16;
    m["slt"].reg = register_cmu_us_slt;
    m["rms"].reg = register_cmu_us_rms;
    m["awb"].reg = register_cmu_us_awb;
    return m;
  }();
  return v;
}

VoiceEntry* getVoice(const std::string& name, std::string* err) {
  std::lock_guard<std::mutex> lk(gRegistryMu);
  auto& m = voices();
  auto it = m.find(name);
  if (it == m.end()) {
    if (err) *err = "unknown voice '" + name + "' (kal, kal16, slt, rms, awb)";
    return nullptr;
  }
  if (!gInit) {
    flite_init();
    gInit = true;
  }
  if (!it->second.voice) {
    it->second.voice = it->second.reg(nullptr);
    if (!it->second.voice) {
      if (err) *err = "flite could not register voice '" + name + "'";
      return nullptr;
    }
  }
  return &it->second;
}

}  // namespace

bool ttsVoiceKnown(const std::string& name) {
  std::lock_guard<std::mutex> lk(gRegistryMu);
  return voices().count(name) != 0;
}

bool ttsSynthesize(const std::string& text, const std::string& voiceName, int outRate, std::vector<int16_t>* out,
                   std::string* err) {
  if (outRate != 8000 && outRate != 16000) {
    if (err) *err = "sampleRate must be 8000 or 16000";
    return false;
  }
  VoiceEntry* v = getVoice(voiceName, err);
  if (!v) return false;
  std::unique_ptr<cst_wave, void (*)(cst_wave*)> wave(nullptr, delete_wave);
  {
    std::lock_guard<std::mutex> lk(v->synthMu);
    wave.reset(flite_text_to_wave(text.c_str(), v->voice));
  }
  if (!wave) {
    if (err) *err = "flite produced no audio";
    return false;
  }
  const int rate = wave->sample_rate;
  const size_t n = wave->num_samples > 0 ? static_cast<size_t>(wave->num_samples) : 0;
  const int ch = wave->num_channels > 0 ? wave->num_channels : 1;
  std::vector<int16_t> mono(n);
  for (size_t i = 0; i < n; ++i) mono[i] = wave->samples[i * static_cast<size_t>(ch)];
  if (rate == outRate) *out = std::move(mono);
  else *out = Resampler::resampleAll(mono.data(), mono.size(), rate, outRate);
  return true;
}

}  // namespace voice
