/**
 * espeak-ng synthesis speed through the addon (`npm run bench -- tts-espeak`): real-time
 * factor (synthesis time / audio time) and first-audio latency (text in → first sentence's
 * PCM out) for a three-sentence Spanish prompt, sequential and with N parallel callers (the
 * library is serialised, so parallel callers queue), beside flite on an English prompt of
 * similar length in the same run. Last line: JSON.
 *
 *   npm run bench -- tts-espeak [--reps 20] [--parallel 8]
 */
import { EspeakTts } from '../../src/tts/espeak.ts';
import { FliteTts } from '../../src/tts/flite.ts';
import type { TtsProvider } from '../../src/tts/types.ts';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const reps = arg('reps', 20);
const parallel = arg('parallel', 8);

const ES = 'Gracias por llamar a Northwind Industrial Supply. Hola Rosa, veo que llama de Lone Star HVAC Services. Para el estado de un pedido, oprima uno.';
const EN = "Thank you for calling Northwind Industrial Supply. Hi Dana, I see you're calling from Acme Plumbing Supply. How can I help you today?";

async function once(tts: TtsProvider, text: string): Promise<{ firstMs: number; totalMs: number; audioS: number }> {
  const t0 = performance.now();
  let firstMs = -1;
  let n = 0;
  for await (const pcm of tts.synthesize(text, { sampleRate: 8000 })) {
    if (firstMs < 0) firstMs = performance.now() - t0;
    n += pcm.length;
  }
  return { firstMs, totalMs: performance.now() - t0, audioS: n / 8000 };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function run(name: string, tts: TtsProvider, text: string) {
  await once(tts, text); // warm-up (voice load)
  const seq = [];
  for (let i = 0; i < reps; i++) seq.push(await once(tts, text));
  const par = [];
  for (let i = 0; i < Math.max(1, Math.floor(reps / parallel)); i++) par.push(...(await Promise.all(Array.from({ length: parallel }, () => once(tts, text)))));
  const rtf = seq.map((r) => r.totalMs / 1000 / r.audioS);
  const out = {
    engine: name, audioS: Math.round(seq[0]!.audioS * 100) / 100,
    rtfP50: Math.round(pct(rtf, 50) * 10000) / 10000,
    firstMsP50: Math.round(pct(seq.map((r) => r.firstMs), 50) * 10) / 10, firstMsP95: Math.round(pct(seq.map((r) => r.firstMs), 95) * 10) / 10,
    parallel, parFirstMsP50: Math.round(pct(par.map((r) => r.firstMs), 50) * 10) / 10, parFirstMsP95: Math.round(pct(par.map((r) => r.firstMs), 95) * 10) / 10,
  };
  console.log(`${name}: RTF ${out.rtfP50}, first audio p50 ${out.firstMsP50} ms / p95 ${out.firstMsP95} ms; ${parallel} in parallel: first audio p50 ${out.parFirstMsP50} ms / p95 ${out.parFirstMsP95} ms`);
  return out;
}

const espeak = await run('espeak-ng es-419', new EspeakTts({ voice: 'es-419' }), ES);
const flite = await run('flite slt', new FliteTts({ voice: 'slt' }), EN);
console.log(JSON.stringify({ bench: 'tts-espeak', espeak, flite, rtfRatioEspeakToFlite: Math.round((espeak.rtfP50 / flite.rtfP50) * 100) / 100 }));
