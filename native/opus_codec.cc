#include "opus_codec.h"

#include <opus.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace voice {

OpusEnc::OpusEnc(int inRate) : rate_(inRate) {
  int err = 0;
  enc_ = opus_encoder_create(inRate, 1, OPUS_APPLICATION_VOIP, &err);
  if (err != OPUS_OK || !enc_) throw std::runtime_error(std::string("opus encoder: ") + opus_strerror(err));
  opus_encoder_ctl(enc_, OPUS_SET_COMPLEXITY(5));  // ~half the CPU of 10 for speech, little audible loss
  opus_encoder_ctl(enc_, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  apply(OpusParams{});
}

OpusEnc::~OpusEnc() {
  if (enc_) opus_encoder_destroy(enc_);
}

void OpusEnc::apply(const OpusParams& p) {
  opus_encoder_ctl(enc_, OPUS_SET_BITRATE(p.bitrate > 0 ? std::max(6000, std::min(p.bitrate, 510000)) : OPUS_AUTO));
  opus_encoder_ctl(enc_, OPUS_SET_INBAND_FEC(p.fec ? 1 : 0));
  opus_encoder_ctl(enc_, OPUS_SET_PACKET_LOSS_PERC(p.fec ? p.lossPercent : 0));
  opus_encoder_ctl(enc_, OPUS_SET_DTX(p.dtx ? 1 : 0));
  int bw = OPUS_BANDWIDTH_FULLBAND;
  if (p.maxPlaybackRate <= 8000) bw = OPUS_BANDWIDTH_NARROWBAND;
  else if (p.maxPlaybackRate <= 12000) bw = OPUS_BANDWIDTH_MEDIUMBAND;
  else if (p.maxPlaybackRate <= 16000) bw = OPUS_BANDWIDTH_WIDEBAND;
  else if (p.maxPlaybackRate <= 24000) bw = OPUS_BANDWIDTH_SUPERWIDEBAND;
  opus_encoder_ctl(enc_, OPUS_SET_MAX_BANDWIDTH(bw));
}

int OpusEnc::encode(const int16_t* pcm, int n, uint8_t* out, int cap) {
  return opus_encode(enc_, pcm, n, out, cap);
}

OpusDec::OpusDec(int outRate) : rate_(outRate) {
  int err = 0;
  dec_ = opus_decoder_create(outRate, 1, &err);
  if (err != OPUS_OK || !dec_) throw std::runtime_error(std::string("opus decoder: ") + opus_strerror(err));
}

OpusDec::~OpusDec() {
  if (dec_) opus_decoder_destroy(dec_);
}

int OpusDec::decode(const uint8_t* data, size_t len, int16_t* out, int maxSamples) {
  return opus_decode(dec_, data, static_cast<opus_int32>(len), out, maxSamples, 0);
}

int OpusDec::conceal(int16_t* out, int n) { return opus_decode(dec_, nullptr, 0, out, n, 0); }

int OpusDec::decodeFec(const uint8_t* next, size_t len, int16_t* out, int n) {
  return opus_decode(dec_, next, static_cast<opus_int32>(len), out, n, 1);
}

void OpusDec::reset() { opus_decoder_ctl(dec_, OPUS_RESET_STATE); }

int opusPacketSamples48k(const uint8_t* data, size_t len) {
  if (!data || len == 0) return -1;
  return opus_packet_get_nb_samples(data, static_cast<opus_int32>(len), 48000);
}

bool opusPacketHasFec(const uint8_t* data, size_t len) {
  if (!data || len < 2) return false;
  const int toc = data[0];
  if (toc & 0x80) return false;  // CELT-only: no LBRR
  const unsigned char* frames[48];
  opus_int16 sizes[48];
  int payloadOffset = 0;
  const int nf = opus_packet_parse(data, static_cast<opus_int32>(len), nullptr, frames, sizes, &payloadOffset);
  if (nf <= 0 || sizes[0] <= 0) return false;
  // SILK frames per Opus frame: 1 for 10/20 ms, 2 for 40 ms, 3 for 60 ms.
  int silkFrames = 1;
  const int cfg = toc >> 3;
  if (cfg < 12 && (cfg & 3) == 2) silkFrames = 2;       // SILK-only 40 ms
  else if (cfg < 12 && (cfg & 3) == 3) silkFrames = 3;  // SILK-only 60 ms (hybrid is 10/20 ms only)
  // The range coder's first symbols are the VAD flags then the LBRR flag,
  // each with probability 1/2, so they are the leading bits of the frame.
  return ((frames[0][0] >> (7 - silkFrames)) & 1) != 0;
}

}  // namespace voice
