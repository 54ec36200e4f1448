// flite TTS through the addon (worker thread, resampled natively).
import t from 'tap';
import { synthesize } from '../../src/media/index.ts';

const rms = (x: Int16Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / Math.max(1, x.length));

t.test("synthesize('Hello') gives non-silent 8 kHz audio of plausible length", async (t) => {
  const pcm = await synthesize('Hello');
  t.ok(pcm instanceof Int16Array);
  const sec = pcm.length / 8000;
  t.ok(sec > 0.25 && sec < 2, `${sec.toFixed(2)} s`);
  t.ok(rms(pcm) > 300, `rms ${rms(pcm).toFixed(0)}`);
});

t.test('16 kHz voices resample to 8 kHz, and kal to 16 kHz, with consistent duration', async (t) => {
  const text = 'Thank you for calling. How can I help you today?';
  const [slt8, kal8, kal16] = await Promise.all([
    synthesize(text, { voice: 'slt' }),
    synthesize(text, { voice: 'kal', sampleRate: 8000 }),
    synthesize(text, { voice: 'kal', sampleRate: 16000 }),
  ]);
  t.ok(slt8.length / 8000 > 1.5 && slt8.length / 8000 < 6, `slt @8k ${(slt8.length / 8000).toFixed(2)} s`);
  t.ok(rms(slt8) > 300, 'slt non-silent');
  t.ok(Math.abs(kal16.length - 2 * kal8.length) <= 2, 'kal at 16 kHz is the same audio at twice the rate');
});

t.test('every linked voice works; bad arguments are rejected', async (t) => {
  for (const voice of ['kal', 'kal16', 'slt', 'rms', 'awb'] as const) {
    const pcm = await synthesize('Order number one two three.', { voice });
    t.ok(pcm.length > 4000 && rms(pcm) > 200, `${voice}: ${(pcm.length / 8000).toFixed(2)} s`);
  }
  t.throws(() => synthesize('x', { voice: 'nope' as 'kal' }), /unknown voice/);
  t.throws(() => synthesize('x', { sampleRate: 44100 as 8000 }), /sampleRate/);
  const empty = await synthesize('');
  t.ok(empty.length < 8000, 'empty text gives (almost) no audio');
});
