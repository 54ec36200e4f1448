// Short smoke run of every fuzz target (native libFuzzer targets and the
// TypeScript *.fuzz.ts targets) through test/fuzz/run.sh.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
// Building every target from scratch (ASan/UBSan) on a fresh machine takes most of a minute.
t.setTimeout(240_000);

t.test('test/fuzz/run.sh 3 finds no crash', { timeout: 215_000 }, async (t) => {
  const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn('bash', ['test/fuzz/run.sh', '3'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FUZZ_COVERAGE_SECONDS: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 210_000);
    child.on('exit', (c) => { clearTimeout(timer); resolve({ code: c, out }); });
  });
  t.comment(out.split('\n').filter((l) => l.startsWith('fuzz:') || l.startsWith('{')).join('\n'));
  t.equal(code, 0, code === 0 ? 'all fuzz targets passed' : out.slice(-4000));
  t.match(out, /fuzz: running rtp_parser_fuzz/, 'the RTP parser target ran');
  t.match(out, /fuzz: running srtp_unprotect_fuzz/, 'the SRTP unprotect target ran');
  t.match(out, /fuzz: running sip-headers\.fuzz\.ts/, 'the header/body parsers target ran');
  t.match(out, /fuzz: {3}rtp_parser_fuzz execs=\d+ cov: \d+ ft: \d+/, 'summary: executions and libFuzzer coverage of a native target');
  t.match(out, /fuzz: {3}sip-headers execs=\d+ "functions":\[\d+,\d+\],"blocks":\[\d+,\d+\]/, 'summary: executions and V8 coverage of a TypeScript target');
});
