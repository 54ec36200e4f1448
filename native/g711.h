// G.711 µ-law and A-law (ITU-T G.711, bit-exact with the ITU-T G.191 STL
// reference: negative inputs use the one's-complement magnitude, so -1 codes
// like 0). Encoding works on 16-bit linear PCM; decoding is a 256-entry table.
#pragma once
#include <cstddef>
#include <cstdint>

namespace voice {

/** Audio codecs of a session. The values are identifiers (PCMU/PCMA happen to equal their static payload types). */
enum class Codec : uint8_t { PCMU = 0, PCMA = 8, Opus = 111 };

/** Encode one 16-bit sample to µ-law. */
uint8_t ulawEncodeSample(int16_t x);
/** Encode one 16-bit sample to A-law. */
uint8_t alawEncodeSample(int16_t x);
/** Decode one µ-law byte (table lookup). */
int16_t ulawDecodeSample(uint8_t b);
/** Decode one A-law byte (table lookup). */
int16_t alawDecodeSample(uint8_t b);

void ulawEncode(const int16_t* in, size_t n, uint8_t* out);
void alawEncode(const int16_t* in, size_t n, uint8_t* out);
void ulawDecode(const uint8_t* in, size_t n, int16_t* out);
void alawDecode(const uint8_t* in, size_t n, int16_t* out);

inline void g711Encode(Codec c, const int16_t* in, size_t n, uint8_t* out) {
  if (c == Codec::PCMA) alawEncode(in, n, out); else ulawEncode(in, n, out);
}
inline void g711Decode(Codec c, const uint8_t* in, size_t n, int16_t* out) {
  if (c == Codec::PCMA) alawDecode(in, n, out); else ulawDecode(in, n, out);
}
/** The code word for digital silence (linear 0): 0xFF for µ-law, 0xD5 for A-law. */
inline uint8_t g711Silence(Codec c) { return c == Codec::PCMA ? 0xD5 : 0xFF; }

}  // namespace voice
