/**
 * The app under test for the turn-gap benchmark, run as a child process (fork, IPC) so the
 * callers' JS timers do not share its event loop: the built-in SIP edge, the drachtio-srf
 * app (VoiceApp), the native media engine with the native VAD (Silero, batched) — exactly
 * what `src/main.ts` starts — except that each answered call runs a DialogueController with
 * instant stubs for STT (a fixed transcript), the agent (one `say` per turn) and TTS
 * (a precomputed tone). DialogueService builds its agent with createAgent() and has no
 * agent option, so the conversation is attached through VoiceApp's `conversation` hook
 * (what main wires to DialogueService.attach) with the real DialogueController.
 *
 * Ports and sizes come from the environment the parent sets (SIP_PORT, DRACHTIO_PORT,
 * RTP_PORT_MIN/MAX, TURN_GAP_REPLY_MS). Messages to the parent (process.send):
 *   {t:'ready', scheduling, sipPort}
 *   {t:'call', callId, vad, tunables}      tunables = the session's TurnTunables (endpointSilenceMs …)
 *   {t:'speechEnd', callId, at}            at = monotonic ms (process.hrtime, shared by both processes)
 *   {t:'turn', callId, at, timing, jitter} at = first reply audio queued; timing = TurnTiming
 *   {t:'stats', ...}                        answer to {t:'stats'} from the parent
 * 'call', 'speechEnd' and 'turn' travel batched: {t:'batch', items:[…]} every 100 ms and
 * before each 'stats' answer. 'turn' carries jitter-buffer figures for every 5th turn only
 * (null otherwise).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { loadConfig } from '../../../src/config.ts';
import { loadTenants } from '../../../src/tenants/index.ts';
import { setLogLevel } from '../../../src/ops/log.ts';
import { MediaEngine, synthesize, supportedCodecs, type MediaSession } from '../../../src/media/index.ts';
import { SipEdge } from '../../../src/sip-edge/index.ts';
import { VoiceApp } from '../../../src/sip/app.ts';
import { DialogueController, type DialogueMedia } from '../../../src/dialogue/index.ts';
import { newState, type Agent, type AgentAction, type CallContext, type ToolGateway } from '../../../src/agent/index.ts';
import type { SttProvider, SttResult, SttStream } from '../../../src/stt/types.ts';
import type { TtsProvider } from '../../../src/tts/types.ts';
import type { Call } from '../../../src/call/call.ts';

setLogLevel((process.env.TURN_GAP_LOG_LEVEL as 'info' | undefined) ?? 'warn');
const send = (m: Record<string, unknown>): void => {
  process.send?.(m);
};
/**
 * Per-call and per-turn records go out in one IPC message every 100 ms (an IPC send costs the
 * server's JS thread ~0.15 ms; one per event was ~5 % of that thread at 400 calls). The
 * instants in them are taken when the event happens.
 */
let batch: Record<string, unknown>[] = [];
const queue = (m: Record<string, unknown>): void => {
  batch.push(m);
};
const flush = (): void => {
  if (batch.length) send({ t: 'batch', items: batch });
  batch = [];
};
setInterval(flush, 100).unref();
/** session.stats() (a full snapshot, ~0.3 ms) for every this-many-th turn only: the jitter figures are a sample */
const JITTER_SAMPLE_EVERY = 5;
let turnCount = 0;
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** STT: whatever was said, "i would like to reorder", at once. */
class InstantStt implements SttProvider {
  readonly name = 'instant';
  createStream(): SttStream {
    const s = new EventEmitter() as SttStream;
    s.push = () => {};
    s.abort = () => {};
    s.end = async (): Promise<SttResult> => ({ text: 'i would like to reorder', confidence: 1, inDomain: true, ms: 0 });
    return s;
  }
}

/** TTS: the same precomputed tone (8 kHz) for every sentence, yielded at once. */
class ToneTts implements TtsProvider {
  readonly name = 'tone';
  constructor(private readonly pcm: Int16Array) {}
  async *synthesize(): AsyncIterable<Int16Array> {
    yield this.pcm;
  }
}

/** Agent: no greeting; every caller turn → one `say` immediately. */
class InstantAgent implements Agent {
  readonly state;
  constructor(ctx: CallContext) {
    this.state = newState(ctx);
  }
  async *start(): AsyncIterable<AgentAction> { /* no greeting: the caller speaks first */ }
  async *turn(): AsyncIterable<AgentAction> {
    yield { type: 'say', text: 'Okay.', final: true };
  }
}

const noTools: ToolGateway = {
  listTools: () => [],
  call: async () => { throw new Error('no tools in the turn-gap benchmark'); },
  close: async () => {},
};

function tone(ms: number): Int16Array {
  const n = Math.round(ms * 8);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
  return out;
}

const env = { ...process.env, EDGE: 'builtin', SIP_ADDRESS: '127.0.0.1', SIP_TRANSPORTS: 'udp', DRACHTIO_SECRET: 'cymru' };
const config = loadConfig({ argv: [], env });
const tenants = loadTenants(config.tenantsFile);
const engine = MediaEngine.create({ bindAddress: config.rtp.bindAddress, portMin: config.rtp.portMin, portMax: config.rtp.portMax });
await engine.vadReady();
const stt = new InstantStt();
const tts = new ToneTts(tone(Number(process.env.TURN_GAP_REPLY_MS ?? 400)));
const edge = new SipEdge({
  sip: { address: config.sip.address, port: config.sip.port, transports: config.sip.transports },
  control: { address: config.drachtio.host, port: config.drachtio.port, secret: config.drachtio.secret },
});
await edge.start();
config.sip.port = edge.sipPort;
config.drachtio.port = edge.controlPort;

const live = new Set<DialogueController>();
function attach(call: Call): void {
  const session = call.session as unknown as MediaSession;
  const ctx: CallContext = { tenant: call.tenant, callId: call.callId, ani: call.from, dnis: call.to, tools: noTools, now: new Date() };
  const dialogue = new DialogueController({
    media: session as unknown as DialogueMedia, agent: new InstantAgent(ctx), ctx, stt, tts,
    onHangup: async () => { await call.hangup('agent-hangup'); },
  });
  live.add(dialogue);
  queue({ t: 'call', callId: call.callId, vad: session.vad, tunables: session.turnTunables });
  // registered before the controller's own 'speechEnd' handling runs (it is async anyway)
  session.on('speechEnd', () => queue({ t: 'speechEnd', callId: call.callId, at: nowMs() }));
  dialogue.on('turn', (timing) => {
    const at = nowMs();
    let jitter: { bufferDelayMs: number; targetDelayMs: number; jitterMs: number } | null = null;
    if (turnCount++ % JITTER_SAMPLE_EVERY === 0) {
      try {
        const j = session.stats().jitter;
        if (j) jitter = { bufferDelayMs: j.bufferDelayMs, targetDelayMs: j.targetDelayMs, jitterMs: j.jitterMs };
      } catch { /* closed */ }
    }
    queue({ t: 'turn', callId: call.callId, at, timing, jitter });
  });
  call.once('ended', () => {
    live.delete(dialogue);
    void dialogue.stop('call ended');
  });
  void dialogue.start();
}

const app = new VoiceApp({ config, tenants, engine, synthesize, supportedCodecs, conversation: attach, vad: true });
await app.connect();

const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
let cpu = process.cpuUsage();
let wall = nowMs();
process.on('message', (m: { t: string }) => {
  if (m.t === 'stats') {
    flush(); // the records before the stats answer
    const c = process.cpuUsage(cpu);
    const w = nowMs() - wall;
    const vs = engine.vadStats();
    send({
      t: 'stats',
      cpuPct: Math.round(((c.user + c.system) / 1000 / w) * 100),
      loopP99Ms: Math.round(loop.percentile(99) / 1e4) / 100,
      loopMaxMs: Math.round(loop.max / 1e4) / 100,
      pacing: engine.pacingStats(),
      vad: { handovers: vs.handovers, skipped: vs.skipped, batcher: vs.batcher },
    });
    loop.reset();
    engine.resetPacingStats();
    cpu = process.cpuUsage();
    wall = nowMs();
  } else if (m.t === 'stop') {
    void (async () => {
      await app.shutdown(1000);
      await Promise.all([...live].map((d) => d.stop('shutdown')));
      await edge.stop().catch(() => {});
      engine.close();
      process.exit(0);
    })();
  }
});
process.on('disconnect', () => process.exit(0));
send({ t: 'ready', scheduling: engine.scheduling, sipPort: edge.sipPort });
