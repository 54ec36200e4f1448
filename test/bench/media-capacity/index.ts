/**
 * Benchmark: how many calls the native media core carries on this box, against rtpengine.
 *
 *   npm run bench -- media-capacity [--calls 50,100,200,400] [--seconds 8] [--quick] [--vad] [--no-inband] [--srtp]
 *     [--rtp-ports 28000-29999]   (our sessions' UDP range; pick another when a second run shares the box)
 *     [--load native|node] [--load-nice -10]   (the carrier load: see below)
 *
 * The load offers no telephone-event, so every session runs the in-band DTMF detector
 * (SessionOptions.inbandDtmf, native/dtmf_inband.h) as a carrier call without RFC 4733 would;
 * `--no-inband` turns it off (the difference is its cost).
 * `--srtp` keys every session with SRTP (AES_CM_128_HMAC_SHA1_80, SessionOptions.srtp): the media
 * thread protects every RTP packet it sends and unprotects every one it receives (libsrtp2,
 * native/srtp.h). The load process is an SRTP peer too — it protects what it sends and
 * unprotects what it receives (native SrtpTest, one context per call) — so the packets are
 * real SRTP both ways; its CPU is reported separately (`load_cpu_pct`). The cost of SRTP is
 * the difference in `cpu_us_per_call_s` of this process against a run without `--srtp`.
 * The rtpengine reference stays plain RTP.
 * `--vad` turns on Silero VAD + turn-taking for every session (SessionOptions.vad):
 * windows cut on the media thread, one batched model run per 32 ms in this process.
 *   node --import tsx test/bench/media-capacity/index.ts [same flags]
 *
 * For each N in --calls:
 * 1. **Our path.** A MediaEngine (this process) with N sessions; a separate load process
 *    (./load.ts, child_process) sends N G.711 µ-law streams into them on loopback (20 ms
 *    packets, ±10 ms send jitter, 1 % loss) and receives the sessions' outbound RTP. The load
 *    stands for carriers elsewhere: by default (`--load native`) every caller is sent from one
 *    socket by a native thread (native/rtp_load.h: sendmmsg per 1 ms step, recvmmsg, kernel
 *    receive timestamps; ~7 % of a core at 100 callers), at nice −10 (`--load-nice`) so that the
 *    process under test cannot starve it into bursts; `--load node` is the former dgram load (a
 *    socket per caller, a JS send per packet; always used with --srtp and for rtpengine). Per
 *    session: inbound RTP → (jitter buffer, when the core has one) → G.711 decode → 'audio'
 *    batches to JS → resample 8 → 16 kHz → 20 ms frames (energy, as a VAD/STT feed would);
 *    outbound: TTS PCM (flite, synthesized once) queued with play() and re-queued on
 *    'playoutDone', paced out by the native media thread.
 *    Measured over the window after a warm-up: CPU of this process (process.cpuUsage: every
 *    thread, media thread included) per call-second, and of the media threads alone with their
 *    wake-ups per second (`media_wakeups_per_s`: voluntary context switches); the engine's pacingStats() (send instant
 *    − ideal deadline); the receiver-side inter-arrival error |Δt − 20 ms| in the load process
 *    (a Node event loop, so an upper bound); event-loop delay of this process.
 * 2. **Reference: rtpengine** (Debian rtpengine-daemon, userspace forwarding, loopback):
 *    N offer/answer call pairs; the load process sends the same streams into rtpengine's
 *    A-side and sinks the B-side. CPU of the rtpengine process per call-second from
 *    /proc/<pid>/stat. Both paths handle N packets in and N packets out per 20 ms.
 *    rtpengine's media range (30000-30999) holds at most ~240 calls (4 ports per call), so
 *    larger N are measured at 240 calls and compared per call-second.
 *
 * `--metrics` adds, per N, a second window of the same length during which the Prometheus
 * registry (src/ops/metrics.ts, with the same engine collectors the server registers) is
 * scraped once a second — 15× more often than Prometheus' default interval — and reports
 * `metrics_cpu_pct`: the extra CPU of that window against the plain one (what metrics
 * cost at that load), plus `scrape_ms` (JS time of one scrape).
 *
 * The headline `max_calls_p99_under_2ms` is the largest N whose native pacing p99 < 2 ms.
 * Last stdout line is JSON:
 *   {"bench":"media-capacity","max_calls_p99_under_2ms":N,"runs":[{"calls","cpu_us_per_call_s",
 *    "pacing_p50_us","pacing_p99_us","rx_p99_us",...}],"rtpengine":{"cpu_us_per_call_s",...},
 *    "ratio_vs_rtpengine":x}
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setLogLevel } from '../../../src/ops/log.ts';
import { RtpengineClient } from '../../../src/media/rtpengine/client.ts';
import { haveDumpcap, startCapture, type CapturedUdp } from '../../helpers/capture.ts';
import { freePortBlock } from '../../helpers/ports.ts';
import { rtpengineBinary, startRtpengine, type RtpengineDaemon } from '../../helpers/rtpengine.ts';

setLogLevel((process.env.LOG_LEVEL as 'info' | undefined) ?? 'warn');

const { values } = parseArgs({
  options: {
    calls: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    quick: { type: 'boolean', default: false },
    /** every session with VAD + turn-taking on */
    vad: { type: 'boolean', default: false },
    'no-rtpengine': { type: 'boolean', default: false },
    /** sessions without the in-band DTMF detector */
    'no-inband': { type: 'boolean', default: false },
    /** every session keyed with SRTP (both directions); the load process is an SRTP peer */
    srtp: { type: 'boolean', default: false },
    /** a second window per N with /metrics scraped every second: the cost of metrics */
    metrics: { type: 'boolean', default: false },
    jitter: { type: 'string', default: '10' },
    loss: { type: 'string', default: '1' },
    /**
     * `full` (an 'audio' listener on every session: resample + 16 kHz frames in JS) or `none` (no
     * listener: the sessions make no 'audio' events). Default: `full`, and `none` with --vad — the
     * product's VAD path listens to no 'audio' (STT gets the utterance with 'speechEnd', the
     * pre-roll is cut natively), so `--vad --consumer full` is the former, heavier setup.
     */
    consumer: { type: 'string' },
    /** seconds of loopback capture (dumpcap) for kernel-timestamped inter-departure error; 0 = off */
    wire: { type: 'string' },
    /** UDP range our sessions take their ports from (MIN-MAX), e.g. when another run holds 28000-29999 */
    'rtp-ports': { type: 'string', default: '28000-29999' },
    /**
     * nice value of the load process (-20..19). The load stands for carriers elsewhere on the
     * network, whose packets do not wait for this box's cores; at the default −10 it is not
     * starved by the process under test (media threads SCHED_FIFO, VAD workers nice −5), which
     * would hold back a second of every call's audio and then deliver it as one burst. Its CPU
     * still counts against the box (`load_cpu_pct`). 0 = the old behaviour.
     */
    'load-nice': { type: 'string', default: '-10' },
    /**
     * The carrier load: `native` (default; every caller from one socket on a native thread,
     * sendmmsg/recvmmsg, kernel receive timestamps — native/rtp_load.h) or `node` (a dgram socket
     * per caller, a JS send per packet: 35–50 % of a core at 800 callers). --srtp always uses `node`.
     */
    load: { type: 'string', default: 'native' },
  },
});
const LOAD_KIND = values.load === 'node' ? 'node' : values.load === 'native' ? 'native' : null;
if (!LOAD_KIND) throw new Error(`--load: 'native' or 'node', got '${values.load}'`);
const LOAD_NICE = Number(values['load-nice']);
if (!Number.isInteger(LOAD_NICE) || LOAD_NICE < -20 || LOAD_NICE > 19) throw new Error(`--load-nice: an integer in -20..19, got '${values['load-nice']}'`);
const QUICK = values.quick === true;
const CONSUMER = values.consumer ?? (values.vad ? 'none' : 'full');
if (CONSUMER !== 'full' && CONSUMER !== 'none') throw new Error(`--consumer: 'full' or 'none', got '${CONSUMER}'`);
const CALLS = (values.calls ?? (QUICK ? '100' : '50,100,200,400')).split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const SECONDS = Number(values.seconds ?? (QUICK ? 2 : 8));
const WARMUP = Number(values.warmup ?? (QUICK ? 1 : 2));
const JITTER_MS = Number(values.jitter);
const LOSS_PCT = Number(values.loss);
/** rtpengine media ports 30000-30999, 4 per relayed call (RTP+RTCP on both sides), some slack. */
const RTPENGINE_MAX_CALLS = 240;
const OUR_RTP = ((): { min: number; max: number } => {
  const m = /^(\d+)-(\d+)$/.exec(values['rtp-ports'] ?? '');
  const r = m ? { min: Number(m[1]), max: Number(m[2]) } : undefined;
  if (!r || r.min < 1024 || r.max > 65535 || r.min >= r.max) throw new Error(`--rtp-ports: expected MIN-MAX within 1024-65535, got '${values['rtp-ports']}'`);
  return r;
})();
/** Wire window after the CPU window (dumpcap on lo costs sys time in the sender, so it is kept apart). */
const WIRE_SECONDS = Number(values.wire ?? (QUICK ? 1 : 2));
const WIRE = WIRE_SECONDS > 0 && haveDumpcap();
const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const err = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** The load process, with a promise-returning request/response wrapper over IPC. */
class Load {
  private readonly child: ChildProcess;
  private waiters: { type: string; resolve: (m: any) => void; reject: (e: Error) => void }[] = [];
  private constructor() {
    this.child = fork(LOAD, [String(LOAD_NICE)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.child.on('message', (m: { type: string; message?: string }) => {
      if (m.type === 'error') {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`load process: ${m.message}`));
        return;
      }
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
    });
    this.child.on('exit', (code) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`load process exited (${code})`));
    });
  }
  static start(): Load {
    return new Load();
  }
  request<T>(msg: unknown, reply: string, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`load process: no '${reply}' within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ type: reply, resolve: (m) => { clearTimeout(t); resolve(m as T); }, reject: (e) => { clearTimeout(t); reject(e); } });
      this.child.send(msg as object);
    });
  }
  post(msg: unknown): void {
    this.child.send(msg as object);
  }
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    try {
      this.child.send({ type: 'exit' });
    } catch { /* gone */ }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

interface LoadResult {
  seconds: number;
  sent: number;
  dropped: number;
  rx: { packets: number; intervals: number; gaps: number; p50_us: number; p99_us: number; max_us: number };
  send_late: { p50_us: number; p99_us: number };
  sink_packets: number;
  load_cpu_pct: number;
  load_nice?: number;
  /** 'native' (native/rtp_load.h) or 'node' */
  load_kind?: string;
  load_loop_p99_ms: number;
  load_loop_max_ms: number;
  srtp_fail?: number;
}

interface Run {
  calls: number;
  cpu_us_per_call_s: number;
  cpu_pct: number;
  pacing_p50_us: number;
  pacing_p99_us: number;
  pacing_max_us: number;
  pacing_samples: number;
  rx_measured_at: string;
  rx_p50_us: number;
  rx_p99_us: number;
  rx_wire_intervals: number;
  rx_node_p50_us: number;
  rx_node_p99_us: number;
  rx_gaps: number;
  /** inbound packets the sessions accepted / packets the load process sent, in the window */
  inbound_ratio: number;
  frames_16k: number;
  samples_per_packet: number;
  event_loop_p99_ms: number;
  load_cpu_pct: number;
  load_nice?: number;
  /** 'native' (native/rtp_load.h) or 'node' */
  load_kind?: string;
  load_loop_p99_ms: number;
  load_loop_max_ms: number;
  /** CPU of the native media thread alone (`voice-media`, /proc/self/task) per call-second */
  media_thread_us_per_call_s: number;
  /** wake-ups of the media threads per second (their voluntary context switches: one per epoll_wait sleep) */
  media_wakeups_per_s: number;
  /** SRTP runs only: packets our sessions dropped for failed authentication / replay, and the load's */
  srtp_auth_fail?: number;
  srtp_replay?: number;
  load_srtp_fail?: number;
  scheduling: string;
  consumer: string;
  resampler: string;
  /** media threads (MEDIA_THREADS) the sessions were sharded over */
  media_threads: number;
  pacing_p99_us_per_thread: number[];
  sessions_per_thread: number[];
  /** --vad runs only */
  vad_mode?: string;
  vad_handovers?: number;
  vad_shed?: number;
  vad_mean_run_ms?: number;
  vad_max_batch?: number;
  vad_window_handovers?: number;
  vad_window_shed?: number;
  vad_window_runs?: number;
  vad_run_wall_pct?: number;
  vad_worker_cpu_us_per_stream_s?: number;
  sched: Record<'media' | 'vad' | 'main' | 'other', { cpu_pct: number; wait_pct: number; threads: number }>;
}

type Media = typeof import('../../../src/media/index.ts');
type NativeMod = typeof import('../../../src/media/native.ts');

/** 8 → 16 kHz for the frames JS hands to VAD/STT: a streaming resampler if the addon has one. */
function makeUpsampler(media: Media, nat: NativeMod): { kind: string; create: () => (pcm: Int16Array) => Int16Array } {
  const anyMedia = media as unknown as Record<string, unknown>;
  const anyNative = nat.native as unknown as Record<string, unknown>;
  const Ctor = (anyMedia.Resampler ?? anyNative.Resampler) as (new (inRate: number, outRate: number) => Record<string, unknown>) | undefined;
  if (typeof Ctor === 'function') {
    try {
      const probe = new Ctor(8000, 16000);
      const fn = (probe.process ?? probe.push ?? probe.resample) as unknown;
      if (typeof fn === 'function') {
        return {
          kind: 'streaming (addon Resampler)',
          create: () => {
            const r = new Ctor(8000, 16000);
            const f = (r.process ?? r.push ?? r.resample) as (pcm: Int16Array) => Int16Array;
            return (pcm) => f.call(r, pcm);
          },
        };
      }
    } catch { /* fall back */ }
  }
  return { kind: 'one-shot native.resample per batch', create: () => (pcm) => nat.native.resample(pcm, 8000, 16000) };
}

/** One more window of SECONDS with the metrics registry scraped every second (as a server would be). */
async function metricsWindow(engine: import('../../../src/media/index.ts').MediaEngine, calls: number): Promise<{ cpu_us_per_call_s: number; scrape_ms: number; pacing_p99_us: number }> {
  const { registerCollector, exposition } = await import('../../../src/ops/metrics.ts');
  registerCollector('media_loop_lateness_seconds', 'bench', 'histogram', () => {
    const h = engine.pacingHistogram();
    return h ? { bounds: h.boundsUs.map((b) => b / 1e6), counts: h.counts, count: h.count, sum: h.sumUs / 1e6 } : undefined;
  });
  registerCollector('media_sessions', 'bench', 'gauge', () => engine.activeSessions);
  registerCollector('vad_runs_total', 'bench', 'counter', () => engine.vadStats().batcher?.runs ?? 0);
  registerCollector('vad_handovers_shed_total', 'bench', 'counter', () => engine.vadStats().skipped);
  engine.resetPacingStats();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let scrapes = 0;
  let scrapeMs = 0;
  while (performance.now() - t0 < SECONDS * 1000) {
    const s0 = performance.now();
    const text = await exposition();
    scrapeMs += performance.now() - s0;
    scrapes++;
    if (!text.includes('voice_agent_media_loop_lateness_seconds_count')) throw new Error('metrics scrape lacks the media loop histogram');
    await sleep(1000 - ((performance.now() - t0) % 1000));
  }
  const cpu = process.cpuUsage(cpu0);
  const secs = (performance.now() - t0) / 1000;
  return {
    cpu_us_per_call_s: Math.round((cpu.user + cpu.system) / (calls * secs)),
    scrape_ms: Math.round((scrapeMs / Math.max(1, scrapes)) * 100) / 100,
    pacing_p99_us: engine.pacingStats().p99Us,
  };
}

/**
 * Voluntary context switches of this process's threads named `name` (/proc/self/task/<tid>/status):
 * for the media threads, one per sleep in epoll_wait, i.e. their wake-ups.
 */
function threadSwitches(name: string): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const st = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      if (/^Name:\s*(.*)$/m.exec(st)?.[1] !== name) continue;
      n += Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(st)?.[1] ?? 0);
    } catch { /* thread gone */ }
  }
  return n;
}

/**
 * CPU time and run-queue wait (ns) summed over this process's threads, by group: the media
 * threads (`voice-media`), the VAD workers (`voice-vad`), the main JS thread (tid = pid) and
 * the rest (libuv pool, V8 platform workers…), from /proc/self/task/<tid>/schedstat (time on a
 * CPU, time runnable but waiting for one, timeslices). A thread that ran for `cpu` and waited
 * `wait` was runnable `cpu + wait` of the window.
 */
type SchedGroup = 'media' | 'vad' | 'main' | 'other';
type Sched = Record<SchedGroup, { cpuNs: number; waitNs: number; slices: number; threads: number }>;
function threadSched(): Sched {
  const out: Sched = {
    media: { cpuNs: 0, waitNs: 0, slices: 0, threads: 0 }, vad: { cpuNs: 0, waitNs: 0, slices: 0, threads: 0 },
    main: { cpuNs: 0, waitNs: 0, slices: 0, threads: 0 }, other: { cpuNs: 0, waitNs: 0, slices: 0, threads: 0 },
  };
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const [cpu, wait, slices] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      const g: SchedGroup = comm === 'voice-media' ? 'media' : comm === 'voice-vad' ? 'vad' : Number(tid) === process.pid ? 'main' : 'other';
      out[g].cpuNs += cpu!;
      out[g].waitNs += wait!;
      out[g].slices += slices!;
      out[g].threads++;
    } catch { /* thread gone */ }
  }
  return out;
}
function schedDelta(a: Sched, b: Sched, secs: number): Record<SchedGroup, { cpu_pct: number; wait_pct: number; threads: number }> {
  const r = {} as Record<SchedGroup, { cpu_pct: number; wait_pct: number; threads: number }>;
  for (const g of ['media', 'vad', 'main', 'other'] as SchedGroup[]) {
    r[g] = {
      cpu_pct: Math.round(((b[g].cpuNs - a[g].cpuNs) / 1e9 / secs) * 1000) / 10,
      wait_pct: Math.round(((b[g].waitNs - a[g].waitNs) / 1e9 / secs) * 1000) / 10,
      threads: b[g].threads,
    };
  }
  return r;
}

/** utime+stime (µs) of this process's threads named `name`, from /proc/self/task/<tid>/stat. */
function threadCpuUs(name: string): number {
  const tck = 100; // CLK_TCK on Linux
  let us = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== name) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      us += ((Number(f[11]) + Number(f[12])) * 1e6) / tck;
    } catch { /* thread gone */ }
  }
  return us;
}

async function runOurs(media: Media, nat: NativeMod, tts: Int16Array, calls: number): Promise<Run> {
  const load = Load.start();
  const ports = await freePortBlock(OUR_RTP, Math.max(64, 2 * calls + 32));
  const engine = media.MediaEngine.create({ bindAddress: '127.0.0.1', portMin: ports.min, portMax: ports.max });
  if (values.vad) await engine.vadReady();
  // The core resamples to 16 kHz on the media thread when sessions take `deliverRate`
  // (jitter-buffer/Opus generation of the addon); otherwise JS upsamples each batch.
  const native16k = 'JITTER_DEFAULTS' in media;
  const up = native16k
    ? { kind: 'native (deliverRate 16000, media thread)', create: () => (pcm: Int16Array) => pcm }
    : makeUpsampler(media, nat);
  let samplesDelivered = 0;
  let frames16k = 0;
  let energySink = 0;
  const sessions: InstanceType<Media['MediaSession']>[] = [];
  const eld = monitorEventLoopDelay({ resolution: 1 });
  try {
    // SRTP: per call our key and the load's (the load protects with its own, unprotects with ours).
    const keys = values.srtp
      ? Array.from({ length: calls }, () => ({ ours: randomBytes(30), theirs: randomBytes(30) }))
      : null;
    const ready = await load.request<{ carrierPorts: number[] }>(
      {
        type: 'setup', calls, mode: 'ours', jitterMs: JITTER_MS, lossPct: LOSS_PCT, native: LOAD_KIND === 'native',
        ...(keys ? { srtp: keys.map((k) => ({ ours: k.ours.toString('base64'), theirs: k.theirs.toString('base64') })) } : {}),
      }, 'ready');
    for (let i = 0; i < calls; i++) {
      const s = engine.createSession({
        ...(keys ? { srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', localKey: keys[i]!.ours, remoteKey: keys[i]!.theirs } } : {}),
        codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: ready.carrierPorts[i]! },
        ...(native16k ? { deliverRate: 16000 } : {}),
        ...(values.vad ? { vad: true } : {}),
        ...(values['no-inband'] ? { inbandDtmf: false } : {}),
      } as Parameters<typeof engine.createSession>[0]);
      const upsample = up.create();
      // 16 kHz frame assembler: 20 ms frames (320 samples) with their energy, as VAD/STT input
      let acc = new Int16Array(4096);
      let fill = 0;
      if (values.vad) s.setUtterancePreRoll(600); // as the dialogue's VAD endpointer does
      if (CONSUMER === 'full') s.on('audio', (pcm: Int16Array) => {
        const wide = upsample(pcm);
        samplesDelivered += wide.length;
        if (fill + wide.length > acc.length) {
          const bigger = new Int16Array(2 * (fill + wide.length));
          bigger.set(acc.subarray(0, fill));
          acc = bigger;
        }
        acc.set(wide, fill);
        fill += wide.length;
        let off = 0;
        for (; off + 320 <= fill; off += 320) {
          let e = 0;
          for (let k = off; k < off + 320; k++) e += acc[k]! * acc[k]!;
          energySink += e > 1e9 ? 1 : 0;
          frames16k++;
        }
        acc.copyWithin(0, off, fill);
        fill -= off;
      });
      s.on('playoutDone', () => {
        if (!s.isClosed) s.play(tts);
      });
      sessions.push(s);
    }
    load.post({ type: 'start', targets: sessions.map((s) => s.localPort) });
    for (const s of sessions) s.play(tts);
    await sleep(WARMUP * 1000);

    const in0 = sessions.reduce((n, s) => n + s.stats().packetsIn, 0);
    frames16k = 0;
    samplesDelivered = 0;
    engine.resetPacingStats();
    eld.enable();
    await load.request({ type: 'mark' }, 'marked');
    const media0 = threadCpuUs('voice-media');
    const wake0 = threadSwitches('voice-media');
    const sched0 = threadSched();
    const vad0 = values.vad ? engine.vadStats() : null;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const cpu = process.cpuUsage(cpu0);
    const mediaUs = threadCpuUs('voice-media') - media0;
    const wakes = threadSwitches('voice-media') - wake0;
    const sched1 = threadSched();
    const secs = (performance.now() - t0) / 1000;
    const sched = schedDelta(sched0, sched1, secs);
    const pacing = engine.pacingStats();
    const perThread = engine.pacingStatsPerThread();
    eld.disable();
    if (values.vad) await sleep(300); // VAD workers report their counts every 250 ms
    const vad = values.vad ? engine.vadStats() : null;
    // The window's share (the workers' counters lag by ≤ 250 ms at both ends: about the same lag).
    const vadWin = vad && vad0 ? {
      handovers: vad.handovers - vad0.handovers, skipped: vad.skipped - vad0.skipped,
      runs: (vad.batcher?.runs ?? 0) - (vad0.batcher?.runs ?? 0),
      frames: (vad.batcher?.frames ?? 0) - (vad0.batcher?.frames ?? 0),
      runUs: (vad.batcher?.totalRunUs ?? 0) - (vad0.batcher?.totalRunUs ?? 0),
    } : null;
    const in1 = sessions.reduce((n, s) => n + s.stats().packetsIn, 0);
    const res = await load.request<LoadResult>({ type: 'report' }, 'result');
    let wire: ReturnType<typeof wireError> | undefined;
    if (WIRE) {
      try {
        const cap = await startCapture(`udp and src portrange ${ports.min}-${ports.max}`);
        await sleep(WIRE_SECONDS * 1000);
        wire = wireError(await cap.stop());
      } catch (e) {
        err(`  wire capture failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    let withMetrics: { cpu_us_per_call_s: number; scrape_ms: number; pacing_p99_us: number } | undefined;
    if (values.metrics) withMetrics = await metricsWindow(engine, calls);
    await load.request({ type: 'stop' }, 'stopped');
    const cpuUs = cpu.user + cpu.system;
    void energySink;
    const srtpStats = keys ? sessions.map((s) => s.stats()) : [];
    return {
      calls,
      cpu_us_per_call_s: Math.round(cpuUs / (calls * secs)),
      cpu_pct: Math.round((cpuUs / 1e6 / secs) * 1000) / 10,
      media_thread_us_per_call_s: Math.round(mediaUs / (calls * secs)),
      media_wakeups_per_s: Math.round(wakes / secs),
      pacing_p50_us: pacing.p50Us,
      pacing_p99_us: pacing.p99Us,
      pacing_max_us: pacing.maxUs,
      pacing_samples: pacing.samples,
      rx_measured_at: wire ? 'wire (dumpcap on lo, kernel timestamps)' : res.load_kind === 'native' ? 'receiver (kernel receive timestamps, native load)' : 'receiver (node event loop in the load process)',
      rx_p50_us: wire ? wire.p50_us : res.rx.p50_us,
      rx_p99_us: wire ? wire.p99_us : res.rx.p99_us,
      rx_wire_intervals: wire?.intervals ?? 0,
      rx_node_p50_us: res.rx.p50_us,
      rx_node_p99_us: res.rx.p99_us,
      rx_gaps: res.rx.gaps,
      inbound_ratio: res.sent > 0 ? Math.round(((in1 - in0) / res.sent) * 1000) / 1000 : 0,
      frames_16k: frames16k,
      /** 16 kHz samples JS got per inbound packet (320 expected) */
      samples_per_packet: in1 > in0 ? Math.round(samplesDelivered / (in1 - in0)) : 0,
      event_loop_p99_ms: Math.round(eld.percentile(99) / 1e4) / 100,
      load_cpu_pct: res.load_cpu_pct,
      load_nice: res.load_nice,
      load_kind: res.load_kind ?? 'node',
      load_loop_p99_ms: res.load_loop_p99_ms,
      load_loop_max_ms: res.load_loop_max_ms,
      ...(keys ? {
        srtp_auth_fail: srtpStats.reduce((n, s) => n + (s.srtpAuthFail ?? 0), 0),
        srtp_replay: srtpStats.reduce((n, s) => n + (s.srtpReplay ?? 0), 0),
        load_srtp_fail: res.srtp_fail ?? 0,
      } : {}),
      ...(withMetrics ? {
        cpu_us_per_call_s_with_metrics: withMetrics.cpu_us_per_call_s,
        metrics_cpu_pct: Math.round(((withMetrics.cpu_us_per_call_s - Math.round(cpuUs / (calls * secs))) / Math.max(1, Math.round(cpuUs / (calls * secs)))) * 1000) / 10,
        scrape_ms: withMetrics.scrape_ms,
        pacing_p99_us_with_metrics: withMetrics.pacing_p99_us,
      } : {}),
      scheduling: engine.scheduling,
      /** 'full': every session has an 'audio' listener (JS resampling + framing); 'none': none */
      consumer: CONSUMER,
      resampler: up.kind,
      media_threads: engine.options.threads,
      /** per media thread: pacing p99 (µs) and sessions */
      pacing_p99_us_per_thread: perThread.map((p) => p.p99Us),
      sessions_per_thread: engine.sessionsPerThread,
      /** per thread group over the window: % of one core on a CPU, and % waiting runnable for one */
      sched,
      ...(vad ? {
        vad_mode: vad.mode,
        vad_handovers: vad.handovers,
        /** hand-overs answered unknown: before the model loaded (none here: loaded first) or shed under overload */
        vad_shed: vad.skipped,
        vad_mean_run_ms: vad.batcher && vad.batcher.runs ? Math.round(vad.batcher.totalRunUs / vad.batcher.runs / 10) / 100 : 0,
        vad_max_batch: vad.batcher?.maxBatch ?? 0,
        ...(vadWin ? {
          /** the measured window only (the fields above count from engine start) */
          vad_window_handovers: vadWin.handovers,
          vad_window_shed: vadWin.skipped,
          vad_window_runs: vadWin.runs,
          /** model runs' wall time (gather + run + scatter) as % of one core over the window, vs the workers' CPU in `sched.vad` */
          vad_run_wall_pct: Math.round((vadWin.runUs / 1e6 / secs) * 1000) / 10,
          /** model cost per stream-second: the workers' thread CPU over the window / stream-seconds inferred */
          vad_worker_cpu_us_per_stream_s: vadWin.frames > 0
            ? Math.round(((sched1.vad.cpuNs - sched0.vad.cpuNs) / 1e3) / (vadWin.frames * 0.032)) : 0,
        } : {}),
      } : {}),
    };
  } finally {
    for (const s of sessions) s.close();
    if (values.vad) {
      const v = engine.vadStats();
      err(`  vad: ${v.sessions} sessions, ${v.handovers} hand-overs, ${v.skipped} skipped, runs ${v.batcher?.runs}, ` +
        `mean run ${v.batcher && v.batcher.runs ? (v.batcher.totalRunUs / v.batcher.runs / 1000).toFixed(2) : '-'} ms, max batch ${v.batcher?.maxBatch}`);
    }
    engine.close();
    await load.close();
  }
}

/** Pooled |Δt − 20 ms| (µs) between consecutive RTP packets of each captured stream. */
function wireError(pkts: CapturedUdp[]): { intervals: number; p50_us: number; p99_us: number; max_us: number } {
  const last = new Map<string, { seq: number; ts: number }>();
  const errs: number[] = [];
  for (const p of pkts) {
    if (p.payload.length < 12 || p.payload[0]! >> 6 !== 2) continue;
    const pt = p.payload[1]! & 0x7f;
    if (pt >= 72 && pt <= 76) continue; // RTCP
    const key = `${p.sport}>${p.dport}`;
    const seq = p.payload.readUInt16BE(2);
    const prev = last.get(key);
    if (prev && seq === ((prev.seq + 1) & 0xffff)) {
      const d = (p.tsUs - prev.ts) / 1000;
      if (d <= 60) errs.push(Math.abs(d - 20) * 1000);
    }
    last.set(key, { seq, ts: p.tsUs });
  }
  errs.sort((a, b) => a - b);
  const pct = (q: number): number => (errs.length ? Math.round(errs[Math.min(errs.length - 1, Math.ceil((q / 100) * errs.length) - 1)]!) : 0);
  return { intervals: errs.length, p50_us: pct(50), p99_us: pct(99), max_us: errs.length ? Math.round(errs[errs.length - 1]!) : 0 };
}

interface RtpengineRun {
  calls: number;
  cpu_us_per_call_s: number;
  cpu_pct: number;
  relayed_ratio: number;
  load_cpu_pct: number;
}

const sdp = (port: number): string =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;

async function runRtpengine(rte: RtpengineDaemon, calls: number, tag: string): Promise<RtpengineRun> {
  const load = Load.start();
  const client = new RtpengineClient({ url: rte.url, timeoutMs: 3000 });
  const ids: string[] = [];
  try {
    const ready = await load.request<{ carrierPorts: number[]; sinkPorts: number[] }>(
      { type: 'setup', calls, mode: 'relay', jitterMs: JITTER_MS, lossPct: LOSS_PCT }, 'ready');
    const targets: number[] = new Array(calls);
    for (let base = 0; base < calls; base += 20) {
      await Promise.all(Array.from({ length: Math.min(20, calls - base) }, async (_, j) => {
        const i = base + j;
        const callId = `bench-${tag}-${i}`;
        ids.push(callId);
        await client.offer({ 'call-id': callId, 'from-tag': 'carrier', sdp: sdp(ready.carrierPorts[i]!) });
        const a = await client.answer({ 'call-id': callId, 'from-tag': 'carrier', 'to-tag': 'sink', sdp: sdp(ready.sinkPorts[i]!) });
        targets[i] = Number(/^m=audio (\d+)/m.exec(a.sdp)![1]);
      }));
    }
    load.post({ type: 'start', targets });
    await sleep(WARMUP * 1000);
    await load.request({ type: 'mark' }, 'marked');
    const c0 = rte.cpuUs();
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const c1 = rte.cpuUs();
    const secs = (performance.now() - t0) / 1000;
    const res = await load.request<LoadResult>({ type: 'report' }, 'result');
    return {
      calls,
      cpu_us_per_call_s: Math.round((c1 - c0) / (calls * secs)),
      cpu_pct: Math.round(((c1 - c0) / 1e6 / secs) * 1000) / 10,
      relayed_ratio: res.sent > 0 ? Math.round((res.sink_packets / res.sent) * 1000) / 1000 : 0,
      load_cpu_pct: res.load_cpu_pct,
    };
  } finally {
    await Promise.all(ids.map((id) => client.delete({ 'call-id': id }).catch(() => undefined)));
    client.close();
    await load.close();
  }
}

async function main(): Promise<void> {
  const media = await import('../../../src/media/index.ts');
  const nat = await import('../../../src/media/native.ts');
  const speech = await media.synthesize(
    'Thank you for calling Northwind Industrial Supply. I can check stock, place a reorder, or tell you where your order is. What can I do for you today?',
    { voice: 'kal', sampleRate: 8000 },
  );
  err(`media-capacity: consumer=${CONSUMER} calls=${CALLS.join(',')} window=${SECONDS}s warmup=${WARMUP}s jitter=±${JITTER_MS}ms loss=${LOSS_PCT}% tts=${(speech.length / 8000).toFixed(1)}s${values.srtp ? ' srtp=AES_CM_128_HMAC_SHA1_80 both ways' : ''}`);

  const runs: Run[] = [];
  for (const n of CALLS) {
    const r = await runOurs(media, nat, speech, n);
    runs.push(r);
    const rm = r as Run & { metrics_cpu_pct?: number; scrape_ms?: number };
    if (rm.metrics_cpu_pct !== undefined) err(`  metrics  N=${n}: +${rm.metrics_cpu_pct}% CPU with a scrape every second (one scrape ${rm.scrape_ms} ms)`);
    const sc = r.sched;
    err(`  threads  N=${n}: cpu/wait % of a core — media ${sc.media.cpu_pct}/${sc.media.wait_pct}, vad ${sc.vad.cpu_pct}/${sc.vad.wait_pct} (${sc.vad.threads}), ` +
      `main JS ${sc.main.cpu_pct}/${sc.main.wait_pct}, other ${sc.other.cpu_pct}/${sc.other.wait_pct} (${sc.other.threads} threads)` +
      (r.vad_window_handovers !== undefined ? `; vad window: ${r.vad_window_shed}/${r.vad_window_handovers} shed, ${r.vad_window_runs} runs, run wall ${r.vad_run_wall_pct}%, ` +
        `worker cpu ${r.vad_worker_cpu_us_per_stream_s} µs/stream·s` : ''));
    err(`  ours     N=${n}: cpu ${r.cpu_us_per_call_s} µs/call·s (${r.cpu_pct}% of a core; media thread ${r.media_thread_us_per_call_s}, ${r.media_wakeups_per_s} wake-ups/s), pacing p50/p99/max ${r.pacing_p50_us}/${r.pacing_p99_us}/${r.pacing_max_us} µs, ` +
      `rx p50/p99 ${r.rx_p50_us}/${r.rx_p99_us} µs (${r.rx_wire_intervals ? 'wire' : 'node'}; node receiver ${r.rx_node_p50_us}/${r.rx_node_p99_us}), inbound ${r.inbound_ratio}, loop p99 ${r.event_loop_p99_ms} ms, load ${r.load_cpu_pct}%` +
      (r.srtp_auth_fail !== undefined ? `, srtp auth-fail/replay ${r.srtp_auth_fail}/${r.srtp_replay}, load srtp failures ${r.load_srtp_fail}` : ''));
  }

  let rteRuns: RtpengineRun[] = [];
  let rteError: string | undefined;
  if (!values['no-rtpengine']) {
    if (!rtpengineBinary()) {
      rteError = 'rtpengine-daemon not installed';
    } else {
      let rte: RtpengineDaemon | undefined;
      try {
        rte = await startRtpengine({ media: { min: 30000, max: 30999 }, logLevel: 4 });
        const sizes = [...new Set(CALLS.map((n) => Math.min(n, RTPENGINE_MAX_CALLS)))];
        for (const [k, n] of sizes.entries()) {
          const r = await runRtpengine(rte, n, `${process.pid}-${k}`);
          rteRuns.push(r);
          err(`  rtpengine N=${n}: cpu ${r.cpu_us_per_call_s} µs/call·s (${r.cpu_pct}% of a core), relayed ${r.relayed_ratio}, load ${r.load_cpu_pct}%`);
        }
      } catch (e) {
        rteError = (e as Error).message.split('\n')[0];
        err(`  rtpengine reference failed: ${rteError}`);
      } finally {
        await rte?.stop();
      }
    }
  }

  const ok = runs.filter((r) => r.pacing_samples > 0 && r.pacing_p99_us < 2000).map((r) => r.calls);
  const maxCalls = ok.length ? Math.max(...ok) : 0;
  // Ratio at the largest N measured on both sides with the same N (else the largest of each).
  const matched = runs.filter((r) => rteRuns.some((x) => x.calls === r.calls));
  const oursRef = matched.length ? matched[matched.length - 1]! : runs[runs.length - 1];
  const rteRef = oursRef ? rteRuns.find((x) => x.calls === oursRef.calls) ?? rteRuns[rteRuns.length - 1] : undefined;
  const ratio = oursRef && rteRef && rteRef.cpu_us_per_call_s > 0
    ? Math.round((oursRef.cpu_us_per_call_s / rteRef.cpu_us_per_call_s) * 100) / 100 : null;
  for (const r of runs) {
    const x = rteRuns.find((q) => q.calls === Math.min(r.calls, RTPENGINE_MAX_CALLS));
    (r as Run & { ratio_vs_rtpengine?: number | null }).ratio_vs_rtpengine =
      x && x.cpu_us_per_call_s > 0 ? Math.round((r.cpu_us_per_call_s / x.cpu_us_per_call_s) * 100) / 100 : null;
  }
  if (ratio !== null) err(`  ratio ours/rtpengine CPU per call-second at N=${oursRef!.calls}: ${ratio}`);
  console.log(JSON.stringify({
    bench: 'media-capacity',
    max_calls_p99_under_2ms: maxCalls,
    window_s: SECONDS,
    srtp: values.srtp === true,
    jitter_ms: JITTER_MS,
    loss_pct: LOSS_PCT,
    runs,
    rtpengine: rteRef
      ? { cpu_us_per_call_s: rteRef.cpu_us_per_call_s, calls: rteRef.calls, mode: 'userspace', runs: rteRuns }
      : { error: rteError ?? 'skipped' },
    ratio_vs_rtpengine: ratio,
  }));
}

main().then(() => process.exit(0), (e: unknown) => {
  console.error(e);
  console.log(JSON.stringify({ bench: 'media-capacity', error: String((e as Error)?.message ?? e).split('\n')[0] }));
  process.exit(1);
});
