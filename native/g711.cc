// G.711 codec, following the ITU-T G.191 Software Tool Library reference
// algorithm (ulaw_compress/expand, alaw_compress/expand) so results are
// bit-exact with the standard's reference implementation.
//
// Encoding runs once per outbound sample on the media thread, so it is a table
// lookup too: the µ-law code of a sample depends only on x >> 2 (the 14 bits the
// reference keeps; a negative x and its one's complement fall in the same group
// of four), the A-law code only on x >> 4. The tables (16 KiB + 4 KiB) are
// filled once from the reference functions below, so they are bit-exact with them.
#include "g711.h"

namespace voice {
namespace {

uint8_t ulawEncodeRef(int16_t x);
uint8_t alawEncodeRef(int16_t x);

struct Tables {
  int16_t ulaw[256];
  int16_t alaw[256];
  uint8_t ulawEnc[1 << 14];  // by (uint16_t)x >> 2
  uint8_t alawEnc[1 << 12];  // by (uint16_t)x >> 4
  Tables() {
    for (int i = 0; i < (1 << 14); ++i) ulawEnc[i] = ulawEncodeRef(static_cast<int16_t>(static_cast<uint16_t>(i << 2)));
    for (int i = 0; i < (1 << 12); ++i) alawEnc[i] = alawEncodeRef(static_cast<int16_t>(static_cast<uint16_t>(i << 4)));
    for (int b = 0; b < 256; ++b) {
      // µ-law expand: the code word is stored inverted.
      int sign = b < 0x80 ? -1 : 1;
      int mantissa = ~b;
      int exponent = (mantissa >> 4) & 0x07;
      int segment = exponent + 1;
      mantissa &= 0x0F;
      int step = 4 << segment;
      ulaw[b] = static_cast<int16_t>(sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33));

      // A-law expand: even bits are toggled on the wire (XOR 0x55).
      int ix = (b ^ 0x55) & 0x7F;
      int iexp = ix >> 4;
      int mant = ix & 0x0F;
      if (iexp > 0) mant += 16;
      mant = (mant << 4) + 0x08;
      if (iexp > 1) mant <<= (iexp - 1);
      alaw[b] = static_cast<int16_t>(b > 127 ? mant : -mant);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// The reference algorithms (ITU-T G.191 ulaw_compress / alaw_compress), used to fill the tables.
uint8_t ulawEncodeRef(int16_t x) {
  // 14-bit magnitude (one's complement for negatives) plus the 33 bias.
  int absno = x < 0 ? ((~x) >> 2) + 33 : (x >> 2) + 33;
  if (absno > 0x1FFF) absno = 0x1FFF;
  int i = absno >> 6;
  int segno = 1;
  while (i != 0) { ++segno; i >>= 1; }
  int high = 0x08 - segno;
  int low = 0x0F - ((absno >> segno) & 0x0F);
  int y = (high << 4) | low;
  if (x >= 0) y |= 0x80;
  return static_cast<uint8_t>(y);
}

uint8_t alawEncodeRef(int16_t x) {
  // 12-bit magnitude (one's complement for negatives).
  int ix = x < 0 ? (~x) >> 4 : x >> 4;
  if (ix > 15) {
    int iexp = 1;
    while (ix > 16 + 15) { ix >>= 1; ++iexp; }
    ix -= 16;
    ix += iexp << 4;
  }
  if (x >= 0) ix |= 0x80;
  return static_cast<uint8_t>(ix ^ 0x55);
}

}  // namespace

uint8_t ulawEncodeSample(int16_t x) { return tables().ulawEnc[static_cast<uint16_t>(x) >> 2]; }
uint8_t alawEncodeSample(int16_t x) { return tables().alawEnc[static_cast<uint16_t>(x) >> 4]; }

int16_t ulawDecodeSample(uint8_t b) { return tables().ulaw[b]; }
int16_t alawDecodeSample(uint8_t b) { return tables().alaw[b]; }

void ulawEncode(const int16_t* in, size_t n, uint8_t* out) {
  const uint8_t* t = tables().ulawEnc;
  for (size_t i = 0; i < n; ++i) out[i] = t[static_cast<uint16_t>(in[i]) >> 2];
}
void alawEncode(const int16_t* in, size_t n, uint8_t* out) {
  const uint8_t* t = tables().alawEnc;
  for (size_t i = 0; i < n; ++i) out[i] = t[static_cast<uint16_t>(in[i]) >> 4];
}
void ulawDecode(const uint8_t* in, size_t n, int16_t* out) {
  const int16_t* t = tables().ulaw;
  for (size_t i = 0; i < n; ++i) out[i] = t[in[i]];
}
void alawDecode(const uint8_t* in, size_t n, int16_t* out) {
  const int16_t* t = tables().alaw;
  for (size_t i = 0; i < n; ++i) out[i] = t[in[i]];
}

}  // namespace voice
