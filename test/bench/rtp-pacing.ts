/**
 * Benchmark: outbound RTP pacing during concurrent calls.
 *
 * 1. End to end: a fresh server, `--calls` (50) concurrent test-caller calls, each receiving
 *    the greeting; the receiver-side inter-arrival error |Δt − 20 ms| is pooled over every
 *    call (gaps > 60 ms = talkspurt boundaries, counted apart). The receiver is a Node event
 *    loop, so this is an upper bound of the server's pacing error.
 * 2. In process: a MediaEngine (the native addon) with `--calls` sessions playing the same
 *    speech to local UDP receivers; reports the engine's own pacingStats() (send-time error
 *    measured on the media thread) and the receiver-side error.
 *
 *   npm run bench -- rtp-pacing [--calls 50] [--seconds 5]
 *
 * Last stdout line:
 *   {"bench":"rtp-pacing","calls":50,"measured_at":"wire (dumpcap on lo)","p50_us":..,"p99_us":..,"max_us":..,
 *    "e2e":{receiver,wire},"native":{samples,p50_us,p99_us,max_us},"inproc":{receiver,wire}}
 * `wire` = inter-departure error from kernel timestamps of a loopback capture (dumpcap, when
 * installed: Debian wireshark-common); `receiver` = arrival times in a Node process.
 */
import { parseArgs } from 'node:util';
import { fliteSay } from '../helpers/audio.ts';
import { placeCall } from '../helpers/caller.ts';
import { haveDumpcap, startCapture, type CapturedUdp } from '../helpers/capture.ts';
import { RANGES, freePortBlock } from '../helpers/ports.ts';
import { RtpRecorder, analyzeStream, parseRtp, percentile, type RtpRecord } from '../helpers/rtp.ts';
import { startServer } from '../helpers/server.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '5' },
    variant: { type: 'string', default: 'both' }, // e2e | inproc | both
  },
});
const CALLS = Number(values.calls);
const SECONDS = Number(values.seconds);

interface ErrStats {
  intervals: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  median_interval_ms: number;
  gaps: number;
  packets: number;
}

function pooled(streams: RtpRecord[][]): ErrStats {
  const errs: number[] = [];
  const ints: number[] = [];
  let gaps = 0;
  let packets = 0;
  for (const s of streams) {
    const a = analyzeStream(s);
    packets += a.packets;
    a.intervalsMs.forEach((d, i) => {
      if (d > 60) {
        gaps++;
        return;
      }
      ints.push(d);
      errs.push(a.pacingErrorUs[i]!);
    });
  }
  return {
    intervals: errs.length,
    p50_us: Math.round(percentile(errs, 50)),
    p99_us: Math.round(percentile(errs, 99)),
    max_us: Math.round(errs.length ? Math.max(...errs) : NaN),
    median_interval_ms: Number(percentile(ints, 50).toFixed(3)),
    gaps,
    packets,
  };
}

/** Group captured datagrams into RTP streams (by source/destination port), timed by the capture clock. */
function wireStreams(pkts: CapturedUdp[]): RtpRecord[][] {
  const streams = new Map<string, RtpRecord[]>();
  for (const p of pkts) {
    const r = parseRtp(p.payload);
    if (!r) continue;
    const key = `${p.sport}>${p.dport}`;
    const list = streams.get(key) ?? [];
    list.push({ ...r, arrivalMs: p.tsUs / 1000, from: `${p.src}:${p.sport}` });
    streams.set(key, list);
  }
  return [...streams.values()];
}

async function endToEnd(): Promise<{ answered: number; setup_ms_p50: number; receiver: ErrStats; wire?: ErrStats }> {
  const rtp = await freePortBlock(RANGES.rtp, 400);
  const server = await startServer({
    RTP_TIMEOUT_SECONDS: '0', MAX_CALL_SECONDS: '120',
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
  });
  const capture = haveDumpcap() ? await startCapture(`udp and src portrange ${rtp.min}-${rtp.max}`).catch(() => undefined) : undefined;
  try {
    const results = await Promise.all(
      Array.from({ length: CALLS }, (_, i) =>
        new Promise((r) => setTimeout(r, i * 10)).then(() =>
          placeCall({ port: server.sipPort, send: 'none', hangupAfterMs: SECONDS * 1000, setupTimeoutMs: 20000 }),
        ),
      ),
    );
    const answered = results.filter((r) => r.status === 200);
    const receiver = pooled(answered.map((r) => r.packets.filter((p) => p.pt === r.payloadType)));
    const wire = capture ? pooled(wireStreams(await capture.stop())) : undefined;
    return { answered: answered.length, setup_ms_p50: Math.round(percentile(answered.map((r) => r.setupMs), 50)), receiver, wire };
  } finally {
    await server.stop();
  }
}

async function inProcess(): Promise<Record<string, unknown>> {
  const media = await import('../../src/media/index.ts');
  const rtp = await freePortBlock(RANGES.rtp, 200);
  const engine = media.MediaEngine.create({ bindAddress: '127.0.0.1', portMin: rtp.min, portMax: rtp.max });
  const speech = fliteSay('Thank you for calling Northwind Industrial Supply. This is the automated ordering assistant. How can I help you today?');
  const pcm = speech.subarray(0, Math.min(speech.length, SECONDS * 8000));
  const receivers = await Promise.all(Array.from({ length: CALLS }, () => RtpRecorder.bind(0)));
  const capture = haveDumpcap() ? await startCapture(`udp and src portrange ${rtp.min}-${rtp.max}`).catch(() => undefined) : undefined;
  engine.resetPacingStats?.();
  const sessions = receivers.map((rec) => engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: rec.port } }));
  for (const s of sessions) s.play(pcm);
  await new Promise((r) => setTimeout(r, (pcm.length / 8000) * 1000 + 500));
  const native = engine.pacingStats();
  const recv = pooled(receivers.map((r) => r.packets));
  const wire = capture ? pooled(wireStreams(await capture.stop())) : undefined;
  for (const s of sessions) s.close();
  for (const r of receivers) r.close();
  engine.close();
  return {
    native: { samples: native.samples, p50_us: native.p50Us, p99_us: native.p99Us, max_us: native.maxUs },
    receiver: recv,
    wire,
  };
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { bench: 'rtp-pacing', calls: CALLS };
  if (values.variant !== 'inproc') {
    const e2e = await endToEnd();
    process.stderr.write(`rtp-pacing e2e: ${JSON.stringify(e2e)}\n`);
    // Headline numbers: kernel capture timestamps on lo when dumpcap is available (the server's
    // pacing as it leaves the process), else the Node receiver's arrival times (upper bound).
    const head = e2e.wire ?? e2e.receiver;
    Object.assign(out, {
      measured_at: e2e.wire ? 'wire (dumpcap on lo)' : 'receiver (node event loop)',
      p50_us: head.p50_us, p99_us: head.p99_us, max_us: head.max_us, answered: e2e.answered, e2e,
    });
  }
  if (values.variant !== 'e2e') {
    try {
      const ip = await inProcess();
      process.stderr.write(`rtp-pacing in-process: ${JSON.stringify(ip)}\n`);
      out.native = ip.native;
      out.inproc = { receiver: ip.receiver, wire: ip.wire };
    } catch (err) {
      out.native = { error: String((err as Error).message).split('\n')[0] };
    }
  }
  console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err);
  console.log(JSON.stringify({ bench: 'rtp-pacing', error: String((err as Error)?.message ?? err).split('\n')[0] }));
  process.exit(1);
});
