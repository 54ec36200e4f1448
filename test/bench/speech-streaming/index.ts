/**
 * Cloud TTS first audio: the streamed response (PCM played as it arrives) against waiting
 * for the whole sentence, same OpenAI-compatible stub, same sentences; plus how soon a caller
 * hears local speech when the endpoint hangs (the first-audio deadline + flite).
 *
 * The stub answers like a real endpoint that synthesises faster than real time: headers
 * after `--ttfb` ms, then the sentence's 24 kHz PCM in `--pieces` pieces `--piece-ms` apart.
 *
 *   npm run bench -- speech-streaming [--sentences 20] [--ttfb 150] [--pieces 10] [--piece-ms 60] [--first-audio-ms 1500]
 *
 * Last line (JSON): first-audio p50/p95 streamed and buffered (ms), their ratio, and the
 * fallback's first local audio after a hang (ms).
 */
import { startSpeechStub } from '../../helpers/speech-stub.ts';
import { OpenAiTts } from '../../../src/tts/openai.ts';
import { FliteTts } from '../../../src/tts/flite.ts';
import { SpeechFallback } from '../../../src/speech/fallback.ts';
import type { SttProvider } from '../../../src/stt/types.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg('sentences', 20);
const TTFB = arg('ttfb', 150);
const PIECES = arg('pieces', 10);
const PIECE_MS = arg('piece-ms', 60);
const FIRST_AUDIO_MS = arg('first-audio-ms', 1500);

const SENTENCES = [
  'Purchase order P O one two three four five is shipped.',
  'It shipped Thursday, December third with UPS Ground.',
  'That is twenty of H X four four one zero, half inch brass ball valve.',
  'Shall I place the order?',
  'Is there anything else I can help with?',
];

const pct = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10;
};

const stub = await startSpeechStub();
stub.tts = { hz: 440, delayMs: TTFB, pieces: PIECES, pieceDelayMs: PIECE_MS };
const tts = new OpenAiTts({ baseURL: stub.baseURL, apiKey: 'bench', model: 'tts-bench', voice: 'alloy', firstAudioMs: 10_000, timeoutMs: 30_000 });

const streamed: number[] = [];
const buffered: number[] = [];
// warm-up (connection, JIT)
await tts.speak(SENTENCES[0]!, 8000, 'alloy');
for (let i = 0; i < N; i++) {
  const s = SENTENCES[i % SENTENCES.length]!;
  let t0 = performance.now();
  const it = tts.stream(s, 8000, 'alloy')[Symbol.asyncIterator]();
  await it.next();
  streamed.push(performance.now() - t0);
  await it.return?.(undefined);
  t0 = performance.now();
  await tts.speak(s, 8000, 'alloy');
  buffered.push(performance.now() - t0);
}

// the endpoint hangs: local audio after the first-audio deadline
stub.tts = { hang: true };
const noStt = { name: 'none', createStream: () => { throw new Error('unused'); } } as unknown as SttProvider;
const fallbackMs: number[] = [];
for (let i = 0; i < 3; i++) {
  const cloud = new OpenAiTts({ baseURL: stub.baseURL, apiKey: 'bench', firstAudioMs: FIRST_AUDIO_MS });
  const fb = new SpeechFallback({ stt: noStt, tts: cloud }, { stt: noStt, tts: new FliteTts() }, { localVoice: 'slt' });
  const t0 = performance.now();
  for await (const _ of fb.tts.synthesize(SENTENCES[4]!, { sampleRate: 8000 })) {
    void _;
    fallbackMs.push(performance.now() - t0);
    break;
  }
}
await stub.close();

const result = {
  bench: 'speech-streaming',
  sentences: N, ttfbMs: TTFB, pieces: PIECES, pieceMs: PIECE_MS,
  streamedFirstAudioP50Ms: pct(streamed, 0.5), streamedFirstAudioP95Ms: pct(streamed, 0.95),
  bufferedFirstAudioP50Ms: pct(buffered, 0.5), bufferedFirstAudioP95Ms: pct(buffered, 0.95),
  bufferedOverStreamedP50: Math.round((pct(buffered, 0.5) / pct(streamed, 0.5)) * 100) / 100,
  firstAudioDeadlineMs: FIRST_AUDIO_MS, hangToLocalAudioP50Ms: pct(fallbackMs, 0.5),
};
console.log(`streamed first audio p50 ${result.streamedFirstAudioP50Ms} ms (p95 ${result.streamedFirstAudioP95Ms}); whole-sentence p50 ${result.bufferedFirstAudioP50Ms} ms (p95 ${result.bufferedFirstAudioP95Ms}); endpoint hangs → local audio after ${result.hangToLocalAudioP50Ms} ms (deadline ${FIRST_AUDIO_MS} ms)`);
console.log(JSON.stringify(result));
