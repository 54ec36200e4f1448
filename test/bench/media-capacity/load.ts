/**
 * Load process of the media-capacity benchmark (forked by ./index.ts, IPC only, prints
 * nothing on stdout). It plays N carriers on loopback:
 *
 * - sends one G.711 µ-law stream per call (20 ms packets, send time jittered uniformly by
 *   ±jitterMs around the ideal instant, lossPct % of packets dropped at random) from its own
 *   UDP socket to a target port (a native MediaSession, or rtpengine's A-side);
 * - receives what comes back on that socket (the session's paced outbound RTP) and measures
 *   the inter-arrival error |Δt − 20 ms| between consecutive packets (µs histogram);
 * - in `relay` mode also binds N sink sockets (rtpengine's B-side sends there) and counts.
 *
 * - with `srtp` keys in setup, is an SRTP peer (AES_CM_128_HMAC_SHA1_80): protects every packet
 *   it sends with its key and unprotects every packet it receives with ours (native SrtpTest,
 *   one context per call), as a carrier's SBC would; failures are counted (`srtp_fail`).
 *
 * Messages (parent → child): setup {calls, mode, jitterMs, lossPct, srtp?} → ready {carrierPorts,
 * sinkPorts}; start {targets}; mark (start of the measured window) → marked; report (end of it) → result;
 * stop (stop sending) → stopped; exit.
 */
import dgram from 'node:dgram';
import { setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ulawEncode } from '../../helpers/g711.ts';

type Msg =
  | { type: 'setup'; calls: number; mode: 'ours' | 'relay'; jitterMs: number; lossPct: number; srtp?: { ours: string; theirs: string }[]; native?: boolean }
  | { type: 'start'; targets: number[] }
  | { type: 'mark' }
  | { type: 'report' }
  | { type: 'stop' }
  | { type: 'exit' };

// argv[2]: nice value for this (main) thread — see --load-nice in ./index.ts.
const NICE = Number(process.argv[2] ?? 0);
let niceApplied = 0;
try {
  if (NICE !== 0) setPriority(0, NICE);
  niceApplied = NICE;
} catch (e) {
  process.stderr.write(`media-capacity load: nice ${NICE} not applied (${(e as Error).message}); the load may be starved by the process under test\n`);
}

const send = (m: unknown): void => {
  process.send?.(m);
};

/** Histogram of µs values: 1 µs bins to 10 ms, then 100 µs bins to 1 s. */
class Hist {
  private fine = new Uint32Array(10_000);
  private coarse = new Uint32Array(10_000);
  count = 0;
  max = 0;
  add(us: number): void {
    const v = Math.max(0, Math.round(us));
    if (v < 10_000) this.fine[v]!++;
    else this.coarse[Math.min(9_999, Math.floor(v / 100))]!++;
    this.count++;
    if (v > this.max) this.max = v;
  }
  pct(p: number): number {
    if (this.count === 0) return 0;
    const want = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.fine.length; i++) {
      seen += this.fine[i]!;
      if (seen >= want) return i;
    }
    for (let i = 100; i < this.coarse.length; i++) {
      seen += this.coarse[i]!;
      if (seen >= want) return i * 100;
    }
    return this.max;
  }
}

/** Caller-like audio: a few harmonics with a syllable-rate envelope, 4 s, pre-encoded in 20 ms frames. */
function callerFrames(seed: number): Buffer[] {
  const n = 8000 * 4;
  const pcm = new Int16Array(n);
  const f0 = 110 + (seed % 7) * 15;
  for (let i = 0; i < n; i++) {
    const t = i / 8000;
    const env = Math.max(0, Math.sin(2 * Math.PI * 3.1 * t + seed)) * (Math.floor(t) % 2 === 0 ? 1 : 0.15);
    const v = Math.sin(2 * Math.PI * f0 * t) + 0.5 * Math.sin(2 * Math.PI * 2 * f0 * t) + 0.25 * Math.sin(2 * Math.PI * 3.2 * f0 * t);
    pcm[i] = Math.round(6000 * env * v);
  }
  const frames: Buffer[] = [];
  for (let i = 0; i + 160 <= n; i += 160) frames.push(ulawEncode(pcm.subarray(i, i + 160)));
  return frames;
}

interface Stream {
  sock: dgram.Socket;
  /** SRTP peer context (srtp runs) */
  srtp?: SrtpCtx;
  target: number;
  /** the socket is connected to its target (no address per send, no route lookup per packet) */
  connected?: boolean;
  ssrc: number;
  seq: number;
  ts: number;
  frame: number;
  /** ideal instant of the next packet, ms (performance.now clock) */
  ideal: number;
  /** actual (jittered) send instant of the next packet */
  due: number;
  lastRxSeq: number;
  lastRxAt: number;
}

let streams: Stream[] = [];
let sinks: dgram.Socket[] = [];
let frames: Buffer[][] = [];
let jitterMs = 10;
let lossPct = 1;
let measuring = false;
let running = false;
let timer: NodeJS.Timeout | null = null;
const rxErr = new Hist();
const sendLate = new Hist();
let rxPackets = 0;
let rxGaps = 0;
let sinkPackets = 0;
let sent = 0;
let dropped = 0;
let cpu0 = process.cpuUsage();
let t0 = 0;
const eld = monitorEventLoopDelay({ resolution: 1 });

async function bind(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.off('error', reject);
      resolve();
    });
  });
  try {
    s.setRecvBufferSize(1 << 20);
  } catch { /* best effort */ }
  return s;
}

let srtpFail = 0;
type SrtpCtx = InstanceType<typeof import('../../../src/media/native.ts').native.SrtpTest>;
/** The native load (setup.native): every caller from one socket on a native thread. */
let rtpLoad: InstanceType<typeof import('../../../src/media/native.ts').native.RtpLoadTest> | null = null;

async function setup(m: Extract<Msg, { type: 'setup' }>): Promise<void> {
  const SrtpTest = m.srtp ? (await import('../../../src/media/native.ts')).native.SrtpTest : null;
  jitterMs = m.jitterMs;
  lossPct = m.lossPct;
  frames = [0, 1, 2, 3].map(callerFrames);
  streams = [];
  sinks = [];
  if (m.native && m.mode === 'ours' && !m.srtp) {
    const { native } = await import('../../../src/media/native.ts');
    rtpLoad = new native.RtpLoadTest({ voices: frames.map((f) => Buffer.concat(f)), jitterMs, lossPct, seed: process.pid });
    send({ type: 'ready', carrierPorts: new Array<number>(m.calls).fill(rtpLoad.port()), sinkPorts: [], native: true });
    return;
  }
  for (let i = 0; i < m.calls; i++) {
    const sock = await bind();
    const st: Stream = {
      sock, target: 0, ssrc: (Math.random() * 2 ** 32) >>> 0, seq: (Math.random() * 65536) | 0,
      ts: (Math.random() * 2 ** 32) >>> 0, frame: (Math.random() * 100) | 0, ideal: 0, due: 0, lastRxSeq: -1, lastRxAt: 0,
    };
    if (SrtpTest && m.srtp) {
      const k = m.srtp[i]!;
      st.srtp = new SrtpTest({
        suite: 'AES_CM_128_HMAC_SHA1_80', localKey: Buffer.from(k.theirs, 'base64'), remoteKey: Buffer.from(k.ours, 'base64'), ssrc: st.ssrc,
      });
    }
    // A connected socket reports ICMP port-unreachable (a relay port not open yet, or already
    // deleted) as an 'error' event; that is a lost packet, not a reason to crash the load.
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNREFUSED') send({ type: 'error', message: e.message });
    });
    sock.on('message', (raw) => {
      const at = performance.now();
      let msg = raw;
      if (st.srtp) {
        if (raw.length >= 2 && raw[1]! >= 192 && raw[1]! <= 223) return; // SRTCP (our reports): not measured
        const r = st.srtp.unprotect(raw);
        if (r.status !== 'ok') {
          srtpFail++;
          return;
        }
        msg = Buffer.from(r.packet!);
      }
      if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
      const seq = msg.readUInt16BE(2);
      if (measuring) {
        rxPackets++;
        if (st.lastRxSeq >= 0 && seq === ((st.lastRxSeq + 1) & 0xffff)) {
          const d = at - st.lastRxAt;
          if (d > 60) rxGaps++;
          else rxErr.add(Math.abs(d - 20) * 1000);
        }
      }
      st.lastRxSeq = seq;
      st.lastRxAt = at;
    });
    streams.push(st);
    if (m.mode === 'relay') {
      const sink = await bind();
      sink.on('message', () => {
        if (measuring) sinkPackets++;
      });
      sinks.push(sink);
    }
  }
  send({ type: 'ready', carrierPorts: streams.map((s) => s.sock.address().port), sinkPorts: sinks.map((s) => s.address().port) });
}

function jitter(): number {
  return (Math.random() * 2 - 1) * jitterMs;
}

function tick(): void {
  if (!running) return;
  const now = performance.now();
  for (let i = 0; i < streams.length; i++) {
    const st = streams[i]!;
    // at most a few per turn: a late turn catches up without an unbounded burst
    for (let k = 0; k < 3 && st.due <= now; k++) {
      const fr = frames[i & 3]!;
      const payload = fr[st.frame++ % fr.length]!;
      if (Math.random() * 100 >= lossPct) {
        const pkt = Buffer.allocUnsafe(12 + payload.length);
        pkt[0] = 0x80;
        pkt[1] = sent === 0 ? 0x80 : 0x00; // PT 0 (PCMU)
        pkt.writeUInt16BE(st.seq & 0xffff, 2);
        pkt.writeUInt32BE(st.ts >>> 0, 4);
        pkt.writeUInt32BE(st.ssrc, 8);
        payload.copy(pkt, 12);
        const out = st.srtp ? st.srtp.protect(pkt)! : pkt;
        if (st.connected) st.sock.send(out);
        else st.sock.send(out, st.target, '127.0.0.1');
        if (measuring) {
          sent++;
          sendLate.add(Math.max(0, now - st.due) * 1000);
        }
      } else if (measuring) {
        dropped++;
      }
      st.seq = (st.seq + 1) & 0xffff;
      st.ts = (st.ts + 160) >>> 0;
      st.ideal += 20;
      // jittered around the ideal instant, never before the previous send (no reordering)
      st.due = Math.max(st.due, st.ideal + jitter());
    }
  }
  // next wake-up: the earliest due instant (Node timers have ~1 ms granularity)
  let next = Infinity;
  for (const st of streams) if (st.due < next) next = st.due;
  timer = setTimeout(tick, Math.max(0, Math.min(5, next - performance.now())));
}

function start(m: Extract<Msg, { type: 'start' }>): void {
  if (rtpLoad) {
    rtpLoad.start(m.targets);
    running = true;
    return;
  }
  const now = performance.now() + 5;
  streams.forEach((st, i) => {
    st.target = m.targets[i]!;
    st.sock.connect(st.target, '127.0.0.1', () => {
      st.connected = true;
    });
    st.ideal = now + Math.random() * 20; // spread phases over the 20 ms tick
    st.due = st.ideal + Math.abs(jitter());
  });
  running = true;
  tick();
}

function mark(): void {
  measuring = true;
  rxErr.count = 0;
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  eld.reset();
  eld.enable();
  rtpLoad?.mark();
  send({ type: 'marked' });
}

/** End of the measured window: report, keep sending (the parent may still be measuring). */
function report(): void {
  const seconds = (performance.now() - t0) / 1000;
  measuring = false;
  const cpu = process.cpuUsage(cpu0);
  eld.disable();
  if (rtpLoad) {
    const r = rtpLoad.report();
    send({
      type: 'result',
      seconds,
      sent: r.sent, dropped: r.dropped,
      rx: { packets: r.rxPackets, intervals: r.rxIntervals, gaps: r.rxGaps, p50_us: r.rxP50Us, p99_us: r.rxP99Us, max_us: r.rxMaxUs },
      send_late: { p50_us: r.sendLateP50Us, p99_us: r.sendLateP99Us },
      sink_packets: 0,
      load_loop_p99_ms: Math.round(eld.percentile(99) / 1e4) / 100,
      load_loop_max_ms: Math.round(eld.max / 1e4) / 100,
      load_cpu_pct: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 1000) / 10,
      load_nice: niceApplied,
      load_kind: 'native',
      load_thread_cpu_pct: Math.round(r.cpuPct * 10) / 10,
      send_errors: r.sendErrors,
      srtp_fail: 0,
    });
    return;
  }
  send({
    type: 'result',
    seconds,
    sent, dropped,
    rx: { packets: rxPackets, intervals: rxErr.count, gaps: rxGaps, p50_us: rxErr.pct(50), p99_us: rxErr.pct(99), max_us: rxErr.max },
    send_late: { p50_us: sendLate.pct(50), p99_us: sendLate.pct(99) },
    sink_packets: sinkPackets,
    load_loop_p99_ms: Math.round(eld.percentile(99) / 1e4) / 100,
    load_loop_max_ms: Math.round(eld.max / 1e4) / 100,
    load_cpu_pct: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 1000) / 10,
    load_nice: niceApplied,
    srtp_fail: srtpFail,
  });
}

process.on('message', (m: Msg) => {
  switch (m.type) {
    case 'setup':
      void setup(m).catch((err: Error) => send({ type: 'error', message: err.message }));
      break;
    case 'start':
      start(m);
      break;
    case 'mark':
      mark();
      break;
    case 'report':
      report();
      break;
    case 'stop':
      running = false;
      if (timer) clearTimeout(timer);
      rtpLoad?.stop();
      send({ type: 'stopped' });
      break;
    case 'exit':
      for (const s of streams) s.sock.close();
      for (const s of sinks) s.close();
      process.disconnect?.();
      break;
  }
});
process.on('disconnect', () => process.exit(0));
