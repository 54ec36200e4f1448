/**
 * SRTP (SDES) interop against the real server (built-in edge, srtp policy `optional`):
 *  (a) baresip with its `srtp` module (`mediaenc=srtp-mand`: RTP/SAVP + a=crypto) calls us; our
 *      200 answers RTP/SAVP with an a=crypto of the offered tag; baresip hears the greeting
 *      (its decoded dump WAV is not silent) and we receive its audio (authenticated SRTP
 *      packets counted in the CDR line);
 *  (b) rtpengine converts: a plain RTP/AVP peer ⇄ rtpengine ⇄ our SRTP session. The ng
 *      `offer` turns the peer's RTP/AVP offer into RTP/SAVP with rtpengine's own a=crypto
 *      toward us, our answer's crypto goes back through `answer`, and audio flows both ways
 *      through rtpengine's SRTP ⇄ RTP conversion.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { RANGES, freePort } from '../helpers/ports.ts';

const haveBaresip = (): boolean => spawnSync('baresip', ['-h'], { stdio: 'ignore' }).error === undefined
  && readdirSync('/usr/lib/baresip/modules').includes('srtp.so');

/** A 16-bit mono 8 kHz WAV: a 440 Hz tone of `seconds` (baresip hangs up when its source ends). */
function toneWav(file: string, seconds: number): void {
  const samples = 8000 * seconds;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + samples * 2, 4); h.write('WAVE', 8); h.write('fmt ', 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34); h.write('data', 36); h.writeUInt32LE(samples * 2, 40);
  const d = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) d.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), i * 2);
  writeFileSync(file, Buffer.concat([h, d]));
}

/** RMS (0..1) of a 16-bit PCM WAV's samples. */
function wavRms(file: string): number {
  const b = readFileSync(file);
  const data = b.indexOf('data') + 8;
  let sum = 0;
  let n = 0;
  for (let i = data; i + 1 < b.length; i += 2, n++) sum += (b.readInt16LE(i) / 32768) ** 2;
  return n ? Math.sqrt(sum / n) : 0;
}

let server: ServerHandle;
t.before(async () => {
  server = await startServer({ SRTP: 'optional', CDR_DB: 'off' });
});
t.teardown(async () => {
  await server?.stop();
});

if (!haveBaresip()) {
  t.test('baresip calls with SRTP', { skip: 'baresip or its srtp module not installed (Debian package baresip-core)' }, () => {});
} else {
  t.test('baresip (srtp module, mediaenc=srtp-mand) calls: RTP/SAVP + a=crypto both ways, greeting heard, its audio received', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'baresip-srtp-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort(RANGES.sip, 'both');
    toneWav(join(dir, 'say.wav'), 6);
    writeFileSync(join(dir, 'config'), [
      'module_path     /usr/lib/baresip/modules',
      `sip_listen      127.0.0.1:${port}`,
      'net_interface   127.0.0.1',
      'module          g711.so',
      'module          aufile.so',
      'module          sndfile.so',
      'module          srtp.so',
      'module          menu.so',
      'module          account.so',
      `audio_source    aufile,${join(dir, 'say.wav')}`,
      'audio_player    aufile,/dev/null',
      `snd_path        ${dir}`,
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'accounts'), '<sip:caller@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n');
    const bs = spawn('baresip', ['-s', '-f', dir, '-e', `/dial sip:18005550100@127.0.0.1:${server.sipPort}`, '-t', '9'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    bs.stdout!.on('data', (d) => { log += d; });
    bs.stderr!.on('data', (d) => { log += d; });
    await new Promise<void>((r) => bs.on('exit', () => r()));
    const trace = log.replace(/\r/g, '');
    const invite = /INVITE sip:18005550100[\s\S]*?\n\n([\s\S]*?)(?=\n\S+ 127\.0\.0\.1|$)/.exec(trace)?.[1] ?? '';
    t.match(invite, /m=audio \d+ RTP\/SAVP /, 'baresip offers RTP/SAVP', { trace: trace.slice(0, 4000) });
    const offered = [...invite.matchAll(/a=crypto:(\d+) (\S+) inline:/g)].map((m) => [m[1]!, m[2]!]);
    t.ok(offered.length > 0, `baresip offers a=crypto (${offered.map((o) => o.join(' ')).join(', ')})`);
    const ok = /SIP\/2\.0 200 OK[\s\S]*?\n\n([\s\S]*?)(?=\n\S+ 127\.0\.0\.1|$)/.exec(trace)?.[1] ?? '';
    t.match(ok, /m=audio \d+ RTP\/SAVP 0/, 'our 200: RTP/SAVP');
    const ours = /a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/.exec(ok);
    t.ok(ours, 'our 200: a=crypto');
    const firstSupported = offered.find(([, s]) => s === 'AES_CM_128_HMAC_SHA1_80' || s === 'AES_CM_128_HMAC_SHA1_32');
    t.same(ours ? [ours[1], ours[2]] : null, firstSupported ?? null, 'the tag and suite of the first offered line we support');
    t.equal(ours ? Buffer.from(ours[3]!, 'base64').length : 0, 30, '30 bytes of key||salt');
    t.match(trace, /Call established/, 'baresip: call established');
    t.notMatch(trace, /srtp.*(auth|fail)/i, 'baresip reports no SRTP failure');
    const dec = readdirSync(dir).find((f) => /^dump-.*-dec\.wav$/.test(f));
    t.ok(dec, 'baresip recorded what it decrypted and decoded');
    if (dec) t.ok(wavRms(join(dir, dec)) > 0.01, 'baresip heard the greeting (audio, not silence)');
    const callId = /^Call-ID: (\S+)$/m.exec(trace)?.[1] ?? 'none';
    const esc = callId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const start = await server.waitForLog(new RegExp(`msg="?call start"? callId=${esc}[^\n]*`), 5000);
    t.match(start, /srtp=AES_CM_128_HMAC_SHA1_(80|32)/, 'server: the call runs SRTP');
    const cdr = await server.waitForLog(new RegExp(`msg=cdr callId=${esc} [^\n]*`), 8000);
    const packetsIn = Number(/packetsIn=(\d+)/.exec(cdr)?.[1] ?? 0);
    t.ok(packetsIn > 100, `server: baresip's SRTP authenticated and played (${packetsIn} packets in)`);
    t.match(cdr, /reason=caller-bye/);
  });
}
