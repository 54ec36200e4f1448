// The media thread must never keep the process alive once the engine is idle
// or closed. Each case runs in a child process and must exit on its own.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const mediaUrl = new URL('../../src/media/index.ts', import.meta.url).href;
const root = fileURLToPath(new URL('../..', import.meta.url));

function runChild(body: string, timeoutMs = 8000): Promise<{ code: number | null; out: string; ms: number }> {
  const src = `import { MediaEngine, synthesize } from ${JSON.stringify(mediaUrl)};\n${body}`;
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], {
      cwd: root, env: { ...process.env, LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out, ms: Date.now() - t0 }); });
  });
}

t.test('engine.close() with live, playing sessions lets the process exit', async (t) => {
  const r = await runChild(`
    const e = MediaEngine.create({ portMin: 21000, portMax: 21099 });
    const s = e.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: 9 } });
    s.play(new Int16Array(80000));
    s.on('audio', () => {});
    setTimeout(() => { e.close(); console.log('closed'); }, 200);
  `);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /closed/);
});

t.test('an idle engine (no sessions) does not keep the process alive', async (t) => {
  const r = await runChild(`
    const e = MediaEngine.create({ portMin: 21100, portMax: 21199 });
    const s = e.createSession({ codec: 'PCMA', payloadType: 8 });
    s.close();
    console.log('idle', e.activeSessions);
  `);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /idle 0/);
});

t.test('an open session keeps the process alive like a socket does', async (t) => {
  const r = await runChild(`
    const e = MediaEngine.create({ portMin: 21200, portMax: 21299 });
    const s = e.createSession({ codec: 'PCMU', payloadType: 0 });
    const t0 = Date.now();
    setTimeout(() => { s.close(); console.log('alive for', Date.now() - t0); }, 300);
  `);
  t.equal(r.code, 0, r.out);
  const alive = Number(/alive for (\d+)/.exec(r.out)?.[1] ?? -1);
  t.ok(alive >= 290, `ran until the session closed (${alive} ms)`);
});

t.test('exiting without close() while the media thread runs is clean', async (t) => {
  const r = await runChild(`
    const e = MediaEngine.create({ portMin: 21300, portMax: 21399 });
    const s = e.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: 9 } });
    s.play(new Int16Array(8000));
    await synthesize('Goodbye');
    setTimeout(() => process.exit(0), 100);
  `);
  t.equal(r.code, 0, r.out);
});
