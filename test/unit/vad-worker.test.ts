// The VAD worker thread (src/vad/worker.ts): same probabilities as the in-thread model for the
// same windows, and clean teardown when an engine closes while hand-overs are in the worker.
import t from 'tap';
import { createSocket } from 'node:dgram';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine } from '../../src/media/engine.ts';
import { native } from '../../src/media/native.ts';
import { VAD_WINDOW, VAD_WINDOW_8K, VadBatcher, runGrouped } from '../../src/vad/batch.ts';
import { VadWorker } from '../../src/vad/worker-host.ts';
import { buildCorpus, readItem } from '../audio/corpus.ts';
import { cutWindows, cutWindows8k } from '../audio/pipeline.ts';

setLogLevel('silent');
t.setTimeout(240_000);

for (const sr of [16000, 8000] as const) {
  t.test(`same windows through the main-thread model and the worker → bit-identical probabilities (${sr} Hz)`, async (t) => {
    const items = buildCorpus().filter((i) => i.kind === 'speech').slice(0, 6)
      .concat(buildCorpus().filter((i) => i.kind !== 'speech').slice(0, 6));
    const W = sr === 8000 ? VAD_WINDOW_8K : VAD_WINDOW;
    const streams = items.map((it, k) => ({ id: 10 + k, wins: sr === 8000 ? cutWindows8k(it) : cutWindows(it), pos: 0 }));
    const main = await VadBatcher.create({ sampleRate: sr });
    t.teardown(() => main.close());
    const worker = new VadWorker({ engineKey: 0, batcher: { sampleRate: sr } });
    t.teardown(() => worker.close());
    await worker.ready;
    for (const s of streams) {
      main.addStream(s.id);
      worker.addStream(s.id);
    }
    let rows = 0, voiced = 0, nan = 0;
    for (let tick = 0; streams.some((s) => s.pos < s.wins.length); tick++) {
      if (tick === 20) {
        main.removeStream(streams[3]!.id); // leaves mid-way: its rows are NaN on both sides
        worker.removeStream(streams[3]!.id);
      }
      const ids: number[] = [];
      const wins: Float32Array[] = [];
      for (const s of streams) {
        if (s.pos >= s.wins.length) continue;
        ids.push(s.id);
        wins.push(s.wins[s.pos++]!);
        // Every 7th tick the first stream sends a catch-up window too (an id that repeats).
        if (s === streams[0] && tick % 7 === 6 && s.pos < s.wins.length) {
          ids.push(s.id);
          wins.push(s.wins[s.pos++]!);
        }
      }
      const idArr = Uint32Array.from(ids);
      const w = new Float32Array(ids.length * W);
      wins.forEach((x, i) => w.set(x, i * W));
      const [a, b] = await Promise.all([runGrouped(main, idArr, w), worker.runBatch(idArr, w.slice())]);
      if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) !== 0) {
        t.fail(`tick ${tick}: probabilities differ: ${Array.from(a).join(',')} vs ${Array.from(b).join(',')}`);
        return;
      }
      rows += a.length;
      for (const p of a) {
        if (Number.isNaN(p)) nan++;
        else if (p > 0.9) voiced++;
      }
    }
    t.ok(rows > 500, `${rows} windows compared, all bit-identical`);
    t.ok(voiced > 50, `speech among them (${voiced} windows > 0.9)`);
    t.ok(nan > 0, `a stream removed mid-way answers NaN on both paths (${nan})`);
  });
}

t.test('an engine closed while its hand-overs are in the worker: no crash, every thread ends', async (t) => {
  const engine = MediaEngine.create({ portMin: 22400, portMax: 22479, threads: 2 });
  await engine.vadReady();
  const sessions = Array.from({ length: 16 }, () => engine.createSession({ codec: 'PCMU', payloadType: 0, vad: true }));
  t.same(engine.sessionsPerThread, [8, 8], 'sessions spread over both media threads');
  const speech = native.resample(readItem(buildCorpus().find((i) => i.kind === 'speech')!), 16000, 8000);
  const sock = createSocket('udp4');
  t.teardown(() => sock.close());
  let seq = 0;
  const timer = setInterval(() => {
    const off = (seq % Math.floor(speech.length / 160)) * 160;
    const hdr = Buffer.alloc(12);
    hdr[0] = 0x80;
    hdr.writeUInt16BE(seq & 0xffff, 2);
    hdr.writeUInt32BE((seq * 160) >>> 0, 4);
    for (const [k, s] of sessions.entries()) {
      hdr.writeUInt32BE(0x1000 + k, 8);
      sock.send(Buffer.concat([hdr, native.ulawEncode(speech.subarray(off, off + 160))]), s.localPort, '127.0.0.1');
    }
    seq++;
  }, 20);
  t.teardown(() => clearInterval(timer));
  const started = performance.now();
  while (engine.vadStats().handovers < 20 && performance.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
  const st = engine.vadStats();
  t.equal(st.mode, 'worker');
  t.ok(st.handovers >= 20, `hand-overs answered by the workers (${st.handovers})`);
  t.ok((st.batcher?.runs ?? 0) > 0, 'the workers ran the model');
  engine.close(); // packets keep coming; hand-overs are in flight in the workers
  clearInterval(timer);
  t.throws(() => engine.createSession({ codec: 'PCMU', payloadType: 0 }), /closed/);
  t.equal(native.vadResultsTo(999_999, new Uint32Array(1), new Float32Array(1)), false, 'results for an unknown engine go nowhere');
  await new Promise((r) => setTimeout(r, 300));
  t.pass('no crash after close');
});

t.test('VadConsumer: clear errors', async (t) => {
  t.throws(() => new native.VadConsumer(999_999, () => undefined), /no media engine/);
  t.throws(() => native.vadResultsTo(1, new Uint32Array(2), new Float32Array(1)), /differ in length/);
});

t.test('a VAD worker that dies is replaced; its thread\'s sessions keep their VAD', async (t) => {
  const engine = MediaEngine.create({ portMin: 22480, portMax: 22499, threads: 1 });
  t.teardown(() => engine.close());
  await engine.vadReady();
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, vad: true });
  await engine.crashVadWorker(0);
  t.equal(engine.vadStats().ready, false, 'not ready while the new worker loads');
  const started = performance.now();
  while (!engine.vadStats().ready && performance.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50));
  t.equal(engine.vadStats().ready, true, 'a new worker took over');
  // the worker's stats reach the main thread a few hundred ms after it is ready (periodic report)
  while (engine.vadStats().batcher?.streams !== 1 && performance.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50));
  t.equal(engine.vadStats().batcher?.streams, 1, 'with the live VAD session');
  s.close();
});

t.test('VOICE_VAD_NICE: parsed and checked; the worker reports what it got', async (t) => {
  const { vadWorkerNice } = await import('../../src/vad/worker-host.ts');
  t.equal(vadWorkerNice({}), -5);
  t.equal(vadWorkerNice({ VOICE_VAD_NICE: '0' }), 0);
  t.throws(() => vadWorkerNice({ VOICE_VAD_NICE: '-30' }), /VOICE_VAD_NICE must be an integer from -20 to 19, got '-30'/);
  const w = new VadWorker({ engineKey: 0, nice: -3 });
  t.teardown(() => w.close());
  await w.ready;
  t.ok(w.nice === -3 || w.nice === 0, `nice ${w.nice} (-3, or 0 without CAP_SYS_NICE)`);
});

t.test('VAD workers never keep the process alive: idle engine, closed engine, process.exit', async (t) => {
  const { spawn } = await import('node:child_process');
  const engineUrl = new URL('../../src/media/engine.ts', import.meta.url).href;
  const run = (body: string): Promise<{ code: number | null; out: string }> => new Promise((resolve) => {
    const src = `import { MediaEngine } from ${JSON.stringify(engineUrl)};\n${body}`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], {
      env: { ...process.env, LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
  const setup = `
    const e = MediaEngine.create({ portMin: 22640, portMax: 22679, threads: 2 });
    await e.vadReady();
    const s = e.createSession({ codec: 'PCMU', payloadType: 0, vad: true });
    const t = setInterval(() => s.play(new Int16Array(160)), 20);`;
  for (const [name, end] of [
    ['session closed, engine left open', `s.close(); console.log('done');`],
    ['engine closed with a live VAD session', `e.close(); console.log('done');`],
    ['process.exit with a live VAD session', `console.log('done'); process.exit(0);`],
  ] as const) {
    const r = await run(`${setup}\n    setTimeout(() => { clearInterval(t); ${end} }, 800);`);
    t.equal(r.code, 0, `${name}: exits on its own (${r.out.trim().slice(-200)})`);
    t.match(r.out, /done/);
  }
});
