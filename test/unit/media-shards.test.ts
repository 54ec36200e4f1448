// MediaEngine over several media threads: placement, distinct ids, port sub-ranges, bridging
// only within one thread (`near`), fall-over when one thread's ports are used up.
import t from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, mediaThreads, splitPorts } from '../../src/media/engine.ts';

setLogLevel('silent');

t.test('port sub-ranges and the MEDIA_THREADS setting', async (t) => {
  t.same(splitPorts(40000, 40999, 2), [[40000, 40499], [40500, 40999]]);
  t.same(splitPorts(40000, 40998, 3), [[40000, 40331], [40332, 40663], [40664, 40998]]);
  t.same(splitPorts(40000, 40005, 4), [[40000, 40005]], 'too small for two threads of four ports: one');
  t.same(splitPorts(40000, 40007, 4), [[40000, 40003], [40004, 40007]]);
  t.equal(mediaThreads({ MEDIA_THREADS: '3' }), 3);
  t.ok(mediaThreads({}) >= 1, 'default: the cores');
  t.throws(() => mediaThreads({ MEDIA_THREADS: 'two' }), /MEDIA_THREADS must be an integer from 1 to 64, got 'two'/);
  t.throws(() => mediaThreads({ MEDIA_THREADS: '0' }), /MEDIA_THREADS/);
  t.throws(() => MediaEngine.create({ threads: 0 }), /threads must be an integer/);
});

t.test('sessions spread over two media threads; bridging needs one thread', async (t) => {
  const engine = MediaEngine.create({ portMin: 22500, portMax: 22507, threads: 2 });
  t.teardown(() => engine.close());
  t.equal(engine.options.threads, 2);
  const a = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  const b = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  t.same(engine.sessionsPerThread, [1, 1], 'least-loaded placement');
  t.not(a.id, b.id, 'ids distinct across threads');
  t.ok(a.localPort < 22504 && b.localPort >= 22504, `each thread binds in its own sub-range (${a.localPort}, ${b.localPort})`);
  t.throws(() => engine.bridge(a, b), /different media threads/);
  const c = engine.createSession({ codec: 'PCMU', payloadType: 0, near: a });
  t.same(engine.sessionsPerThread, [2, 1], '`near` places on that session\'s thread');
  engine.bridge(a, c);
  t.equal(a.stats().bridged, true);
  t.throws(() => engine.createSession({ codec: 'PCMU', payloadType: 0, near: a }), /port|cannot create/, 'its thread is full');
  const d = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  t.same(engine.sessionsPerThread, [2, 2]);
  t.throws(() => engine.createSession({ codec: 'PCMU', payloadType: 0 }), /port|cannot create/, 'all full: the error of the first thread tried');
  d.close();
  t.same(engine.sessionsPerThread, [2, 1], 'closing frees the slot');
  const e = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  t.ok(e.localPort >= 22504, 'the freed port is reused on its thread');
  c.close();
  t.throws(() => engine.createSession({ codec: 'PCMU', payloadType: 0, near: c }), /closed/);
  t.ok(await engine.alive(), 'both media loops answer');
  t.equal(engine.pacingHistogram()!.counts.length > 0, true);
});
