/**
 * `voice-agent call` pieces: argument parsing (turn order kept), WAV round trip, the
 * caller's own G.711 against the product's native codec, noise at a given SNR.
 */
import t from 'tap';
import { parseArgs } from '../../src/cli/call.ts';
import { g711Decode, g711Encode, parseWav, rmsLevel, to8k, wavBytes } from '../../src/cli/rtp.ts';
import { addNoise } from '../../src/cli/conversation.ts';
import { ulawEncode, alawEncode } from '../../src/media/index.ts';

t.test('arguments: turns in the order given, voice and noise applied to --say', async (t) => {
  const a = parseArgs(['--port', '5080', '--say', 'hello', '--dtmf', '12#', '--wav', 'x.wav', '--voice', 'kal', '--noise', '15', '--say', 'bye']);
  t.equal(a.port, 5080);
  t.same(a.turns, [{ say: 'hello', voice: 'kal', noiseSnrDb: 15 }, { dtmf: '12#' }, { wav: 'x.wav' }, { say: 'bye', voice: 'kal', noiseSnrDb: 15 }]);
  t.equal(a.from, '+14155550142');
  t.throws(() => parseArgs(['--port']), /needs a value/);
  t.throws(() => parseArgs(['--codec', 'G729']), /PCMU or PCMA/);
  t.throws(() => parseArgs(['--nope']), /unknown option/);
});

t.test('WAV round trip and resampling to 8 kHz', async (t) => {
  const pcm = Int16Array.from({ length: 1600 }, (_, i) => Math.round(8000 * Math.sin(i / 5)));
  const w = parseWav(wavBytes(pcm, 16000));
  t.equal(w.sampleRate, 16000);
  t.same(Array.from(w.pcm.subarray(0, 50)), Array.from(pcm.subarray(0, 50)));
  t.equal(to8k(w.pcm, 16000).length, 800);
  t.throws(() => parseWav(Buffer.from('nope')), /not a WAV/);
});

t.test('the caller\'s G.711 matches the native codec', async (t) => {
  const pcm = Int16Array.from({ length: 4000 }, (_, i) => ((i * 37) % 65536) - 32768);
  t.same([...g711Encode(pcm, 0)], [...ulawEncode(pcm)], 'µ-law');
  t.same([...g711Encode(pcm, 8)], [...alawEncode(pcm)], 'A-law');
  const back = g711Decode(g711Encode(pcm, 0), 0);
  t.ok(Math.abs(rmsLevel(back) - rmsLevel(pcm)) / rmsLevel(pcm) < 0.05);
});

t.test('noise at the requested SNR', async (t) => {
  const tone = Int16Array.from({ length: 8000 }, (_, i) => Math.round(5000 * Math.sin((2 * Math.PI * 440 * i) / 8000)));
  const noisy = addNoise(tone, 20);
  const diff = Int16Array.from(noisy, (v, i) => v - tone[i]!);
  const snr = 20 * Math.log10(rmsLevel(tone) / rmsLevel(diff));
  t.ok(Math.abs(snr - 20) < 1.5, `SNR ${snr.toFixed(1)} dB`);
});
