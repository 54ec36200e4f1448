/**
 * `voice-agent serve`: load config and tenants, start the media engine, start the built-in
 * SIP edge (unless a drachtio-server is configured), connect the drachtio-srf app, and
 * print one ready line:
 *
 * `ts=… level=info mod=main msg="voice-agent ready" sip=udp+tcp/127.0.0.1:5060 edge=builtin control=127.0.0.1:9022 rtp=40000-40999 tenants=1`
 *
 * SIGTERM drains (see {@link Running.drain}): /readyz fails, OPTIONS and new INVITEs get 503,
 * live calls run to their end for at most DRAIN_SECONDS, then the agent says goodbye and
 * hangs up; exit 0. SIGINT, or a second SIGTERM, hangs up live calls (BYE) and exits at once.
 * A config error prints `config error: <file>: <field>: <problem>` and exits 2; any other
 * start-up failure exits 1.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig, ConfigError, describeSip, sipTlsMaterial, type Config } from './config.ts';
import { loadTenants, type TenantDirectory } from './tenants/index.ts';
import { logger, setLogLevel, setLogFormat } from './ops/log.ts';
import { startOpsServer, type OpsServer, type HealthCheck } from './ops/http.ts';
import { metrics, registerCollector } from './ops/metrics.ts';
import { Admission } from './sip/admission.ts';
import { VoiceApp } from './sip/app.ts';
import { checkTrunkTenants, TrunkPolicy } from './sip/trunk-policy.ts';
import { SipGuard } from './sip/sip-guard.ts';
import { SipEdge } from './sip-edge/index.ts';
import type { MediaEngine } from './media/index.ts';
import type { RtpengineAnchor } from './media/rtpengine/index.ts';
import type { DialogueService } from './dialogue/service.ts';
import { ScreenPopStore } from './escalation/screen-pop.ts';
import { SharedPops } from './escalation/shared-pops.ts';
import { startCdr, type CdrService } from './cdr/index.ts';
import { RecordingService } from './consent/recording.ts';
import { BYE_REASON, type Call } from './call/call.ts';
import type { RepConsole } from './escalation/console/server.ts';

const log = logger('main');

/** Exit codes of the serve command. */
export const EXIT_OK = 0;
export const EXIT_STARTUP_FAILED = 1;
export const EXIT_CONFIG = 2;

export interface Running {
  config: Config;
  app: VoiceApp;
  edge: SipEdge | null;
  engine: MediaEngine;
  /** rtpengine anchor (null unless `RTPENGINE_URL` is set). */
  rtpengine: RtpengineAnchor | null;
  /** The conversation in each call (STT → agent → TTS), its tool gateways and case queue. */
  dialogue: DialogueService;
  /** Screen pops of hand-offs (served by the rep console). */
  pops: ScreenPopStore;
  /** The rep console (null when disabled or its port was taken). */
  repConsole: RepConsole | null;
  /** Call detail records (null when cdr.db is off). */
  cdr: CdrService | null;
  /** The ops listener (/metrics, /livez, /readyz); null when disabled. */
  ops: OpsServer | null;
  /** Overload admission in front of the app. */
  admission: Admission;
  /**
   * Graceful drain: readiness fails, OPTIONS and new INVITEs get 503 + Retry-After, live
   * calls go on until they end or `seconds` pass; then the agent says the tenant's drain
   * goodbye and hangs up (at most `goodbyeSeconds` more), and everything stops.
   * Resolves when stopped. Idempotent.
   */
  drain(seconds?: number, goodbyeSeconds?: number): Promise<void>;
  /** Hang up calls, stop edge and engine. Idempotent. */
  stop(): Promise<void>;
}

/** Load config + tenants or exit 2 with one clear line. */
function loadOrExit(argv: readonly string[]): { config: Config; tenants: TenantDirectory } {
  try {
    const config = loadConfig({ argv });
    const tenants = loadTenants(config.tenantsFile);
    checkTrunkTenants(config.trunks, tenants.tenants.map((t) => t.id), config.configFile ?? 'environment');
    return { config, tenants };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

/** Start everything; resolves once the app is connected to the edge. */
export async function start(config: Config, tenants: TenantDirectory): Promise<Running> {
  // Loaded here, not statically, so a missing native addon is one clear start-up error line.
  const { MediaEngine, synthesize, supportedCodecs } = await import('./media/index.ts');
  const engine = MediaEngine.create({
    bindAddress: config.rtp.bindAddress, portMin: config.rtp.portMin, portMax: config.rtp.portMax,
    ...(config.rtp.bindAddress6 ? { bindAddress6: config.rtp.bindAddress6 } : {}),
  });
  let rtpengine: RtpengineAnchor | null = null;
  if (config.rtpengine) {
    const { RtpengineAnchor } = await import('./media/rtpengine/index.ts');
    rtpengine = new RtpengineAnchor(config.rtpengine);
    log.info('rtpengine anchoring on', { url: config.rtpengine.url, timeoutMs: config.rtpengine.timeoutMs, transcode: config.rtpengine.transcode.join(',') || undefined });
    // Not fatal: rtpengine may start after us; calls get 503 until it answers.
    await rtpengine.ping().catch((err: unknown) => log.warn('rtpengine does not answer ping yet', { url: config.rtpengine!.url, err: err as Error }));
  }
  const dialogue = await startDialogue(config, tenants);
  const cdr = await startCdr({ settings: config.cdr, tenants: tenants.tenants, releaseCauses: BYE_REASON });
  // recording posture per tenant (src/consent): disclosure + consent in every call of a tenant with one; retention purge now and hourly
  const recordings = new RecordingService(tenants.tenants).start();
  dialogue.setRecordings(recordings);
  if (cdr) {
    dialogue.setObserver({
      conversation: (call, c) => cdr.recorder.conversation(call, c),
      caseCreated: (m, caseNumber) => cdr.recorder.caseCreated(m.callId, m.id, caseNumber),
    });
  }
  let edge: SipEdge | null = null;
  let app: VoiceApp | null = null;
  let repConsole: RepConsole | null = null;
  let ops: OpsServer | null = null;
  const pops = new ScreenPopStore();
  // several nodes on one Redis: a pop raised on any node shows on every node's console (docs/SCALE.md)
  const sharedPops = process.env.REDIS_URL
    ? await SharedPops.start({ redisUrl: process.env.REDIS_URL, store: pops }).catch((err: unknown) => {
      log.warn('screen pops not shared: Redis unreachable at start; this node\'s console shows its own pops only', { err: err as Error });
      return null;
    })
    : null;
  // Trunk access and flood defence (src/sip/sip-guard.ts): in the built-in edge before any
  // transaction, or as drachtio-srf middleware when drachtio-server is the edge.
  const trunkPolicy = new TrunkPolicy({ trunks: config.trunks, unknownSources: config.sipGuard.unknownSources });
  const guard = new SipGuard(config.sipGuard, trunkPolicy);
  for (const w of trunkPolicy.startupWarnings(config.edge === 'builtin' ? config.sip.address : config.drachtio.host, config.sipGuard.rateLimit.trunkRequests)) log.warn(w);
  const admission = new Admission({
    activeCalls: () => app?.activeCalls ?? 0,
    tenantCalls: (id) => app?.callsOf(id) ?? 0,
    pacingHistogram: () => engine.pacingHistogram(),
  }, config.admission).start();
  registerMediaCollectors(engine, dialogue);
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      admission.stop();
      if (app) await app.shutdown();
      await dialogue.close().catch((err: unknown) => log.warn('dialogue close failed', { err: err as Error }));
      await cdr?.close().catch((err: unknown) => log.warn('CDR store close failed', { err: err as Error }));
      recordings.close();
      await repConsole?.close().catch(() => {});
      await sharedPops?.close().catch(() => {});
      await rtpengine?.close().catch((err: unknown) => log.warn('rtpengine close failed', { err: err as Error }));
      if (edge) await edge.stop().catch((err: unknown) => log.warn('edge stop failed', { err: err as Error }));
      guard.close();
      await ops?.close().catch(() => {});
      engine.close();
    })();
    return stopped;
  };
  let drained: Promise<void> | null = null;
  const drain = (seconds = config.drainSeconds, goodbyeSeconds = 20): Promise<void> => {
    drained ??= (async () => {
      if (!app) return stop();
      app.startDrain();
      const a = app;
      const waitCalls = (ms: number): Promise<boolean> => new Promise((resolve) => {
        if (a.activeCalls === 0) return resolve(true);
        const timer = setTimeout(() => { a.off('call-ended', onEnded); resolve(false); }, ms);
        const onEnded = (): void => {
          if (a.activeCalls > 0) return;
          clearTimeout(timer);
          a.off('call-ended', onEnded);
          resolve(true);
        };
        a.on('call-ended', onEnded);
      });
      if (!(await waitCalls(seconds * 1000))) {
        const told = await dialogue.endAll('drain deadline');
        log.info('drain deadline: the agent says goodbye and hangs up', { calls: a.activeCalls, told, drainSeconds: seconds });
        if (!(await waitCalls(goodbyeSeconds * 1000))) log.warn('calls still up after the goodbye; hanging up', { calls: a.activeCalls });
      } else log.info('drained: no calls left');
      await stop();
    })();
    return drained;
  };
  try {
    if (config.edge === 'builtin') {
      const tlsPem = sipTlsMaterial(config);
      edge = new SipEdge({
        sip: {
          address: config.sip.address, port: config.sip.port, transports: config.sip.transports,
          ...(config.sip.tls && tlsPem ? {
            tls: {
              ...tlsPem, port: config.sip.tls.port,
              verifyClient: config.sip.tls.verifyClient, rejectUnauthorized: config.sip.tls.rejectUnauthorized,
            },
          } : {}),
          guard,
        },
        control: { address: config.drachtio.host, port: config.drachtio.port, secret: config.drachtio.secret },
        timers: { T1: config.sip.t1Ms, T2: Math.max(4000, config.sip.t1Ms) },
      });
      await edge.start();
      // Ports may have been 0 (OS-assigned): point the app at what was bound.
      config.sip.port = edge.sipPort;
      if (config.sip.tls) config.sip.tls.port = edge.tlsPort;
      config.drachtio.port = edge.controlPort;
    }
    app = new VoiceApp({
      config, tenants, engine, synthesize, supportedCodecs, rtpengine, admission,
      trunkPolicy, ...(edge ? {} : { guard }),
      conversation: (call) => dialogue.attach(call), vad: vadEnabled(),
    });
    if (cdr) app.on('call', (call: Call) => cdr.recorder.track(call));
    if (config.console.enabled) {
      const { startRepConsole } = await import('./escalation/console/server.ts');
      const { address: host, port, publicUrl, reps, sessionMinutes, popLinkMinutes } = config.console;
      repConsole = await startRepConsole({ store: pops, host, port, publicUrl, reps, sessionMinutes, popLinkMinutes }).catch((err: unknown) => {
        log.error('rep console not started; screen pops still go to the CRM and the SIP headers', { err: err as Error, port: config.console.port });
        return null;
      });
    }
    const { HandoffService } = await import('./escalation/handoff.ts');
    dialogue.setHandoff(new HandoffService({
      srf: app.uac, engine, pops,
      // X-Screen-Pop-Url: publicUrl (or the console's address) + /pops/<id>?t=<short-lived read-only token>
      ...(repConsole ? { popUrl: repConsole.popLink } : {}),
      gatewayFor: (t) => dialogue.gateway(t),
      repUri: config.handoff.repUri, ringTimeoutMs: config.handoff.ringSeconds * 1000,
      advertisedAddress: config.rtp.publicAddress,
      referredBy: `sip:voice-agent@${config.sip.address === '0.0.0.0' ? config.rtp.publicAddress : config.sip.address}:${config.sip.port}`,
    }));
    const hostport = await app.connect();
    await app.prewarm();
    if (vadEnabled()) void engine.vadReady().catch(() => undefined);
    if (config.ops.enabled) {
      const readyApp = app;
      ops = await startOpsServer({
        host: config.ops.address, port: config.ops.port, ...(process.env.OPS_TOKEN ? { token: process.env.OPS_TOKEN } : {}),
        liveness: [
          { name: 'media-loop', check: async () => ((await engine.alive()) ? null : 'the media thread did not run its loop within 500 ms') },
        ],
        readiness: readinessChecks(config, tenants, readyApp, edge, engine, dialogue),
      }).catch((err: unknown) => {
        log.error('ops listener not started (no /metrics, /livez, /readyz)', { err: err as Error, address: config.ops.address, port: config.ops.port });
        return null;
      });
    }
    log.info('voice-agent ready', {
      sip: config.edge === 'builtin' ? describeSip(config.sip) : hostport,
      edge: config.edge,
      control: `${config.drachtio.host}:${config.drachtio.port}`,
      rtp: `${config.rtp.portMin}-${config.rtp.portMax}`,
      rtpAddress: config.rtp.publicAddress,
      codecs: supportedCodecs.join(','),
      rtpengine: config.rtpengine?.url,
      tenants: tenants.size,
      console: repConsole?.url ?? 'off',
      ops: ops?.url ?? 'off',
      maxCalls: config.admission.maxCalls || 'unlimited',
    });
    return { config, app, edge, engine, rtpengine, dialogue, pops, repConsole, cdr, ops, admission, drain, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/** What /readyz checks: each failing one is named in the 503 body. */
function readinessChecks(config: Config, tenants: TenantDirectory, app: VoiceApp, edge: SipEdge | null, engine: MediaEngine, dialogue: DialogueService): HealthCheck[] {
  const checks: HealthCheck[] = [
    { name: 'draining', check: () => (app.draining ? 'the node is draining (SIGTERM); new calls go elsewhere' : null) },
    {
      name: 'sip',
      check: () => {
        if (edge && !edge.listening) return 'the built-in SIP edge is not listening';
        return app.isConnected ? null : `the app is not connected to the ${config.edge === 'builtin' ? 'built-in edge' : 'drachtio-server'} at ${config.drachtio.host}:${config.drachtio.port}`;
      },
    },
    { name: 'media', check: async () => ((await engine.alive()) ? null : 'the native media loop is not running') },
    { name: 'redis', check: () => dialogue.redisHealth() },
    { name: 'spool', check: () => dialogue.spoolHealth() },
    {
      name: 'tools',
      check: async () => {
        const bad = (await Promise.all(tenants.tenants.map((t) => dialogue.gatewayHealth(t)))).filter((x): x is string => x !== null);
        return bad.length ? bad.join('; ') : null;
      },
    },
  ];
  if (vadEnabled()) {
    checks.push({ name: 'vad', check: () => (engine.vadStats().ready ? null : 'the Silero VAD model is not loaded (yet)') });
  }
  return checks;
}

/** Scrape-time readers of what the media engine and the case queue know. */
function registerMediaCollectors(engine: MediaEngine, dialogue: DialogueService): void {
  registerCollector('media_loop_lateness_seconds', 'Outbound RTP send time minus its ideal 20 ms deadline, every packet since start (the native media loop)', 'histogram', () => {
    const h = engine.pacingHistogram();
    return h ? { bounds: h.boundsUs.map((b) => b / 1e6), counts: h.counts, count: h.count, sum: h.sumUs / 1e6 } : undefined;
  });
  registerCollector('media_sessions', 'RTP sessions open in the media engine', 'gauge', () => engine.activeSessions);
  registerCollector('vad_streams', 'Live streams in the batched Silero VAD', 'gauge', () => engine.vadStats().sessions);
  registerCollector('vad_runs_total', 'Batched Silero model runs', 'counter', () => engine.vadStats().batcher?.runs ?? 0);
  registerCollector('vad_frames_total', 'Stream-frames the batched model inferred (runs × batch size)', 'counter', () => engine.vadStats().batcher?.frames ?? 0);
  registerCollector('vad_run_seconds_total', 'Time spent in batched model runs', 'counter', () => (engine.vadStats().batcher?.totalRunUs ?? 0) / 1e6);
  registerCollector('vad_last_run_seconds', 'Duration of the last batched model run', 'gauge', () => (engine.vadStats().batcher?.lastRunUs ?? 0) / 1e6);
  registerCollector('vad_max_batch', 'Largest VAD batch so far', 'gauge', () => engine.vadStats().batcher?.maxBatch ?? 0);
  registerCollector('vad_handovers_total', 'VAD hand-overs from the media thread', 'counter', () => engine.vadStats().handovers);
  registerCollector('vad_handovers_shed_total', 'VAD hand-overs answered unknown (model not loaded, or shed under overload)', 'counter', () => engine.vadStats().skipped);
  registerCollector('jobs_queue_depth', 'Jobs of the after-hours case queue by state (waiting, active, delayed, failed)', 'gauge', async () => {
    const q = await dialogue.queueCounts();
    if (!q) return undefined;
    const { completed: _done, ...rest } = q.counts;
    return rest;
  }, 'state');
  registerCollector('jobs_spooled', 'After-hours messages waiting in the disk spool for Redis', 'gauge', async () => (await dialogue.queueCounts())?.spooled);
}

/**
 * Native VAD (Silero) for turn-taking and barge-in; `VAD=off` falls back to the dialogue's
 * energy endpointing. Env `VAD`. @defaultValue on
 */
export function vadEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return !['off', '0', 'false', 'no'].includes((env.VAD ?? 'on').toLowerCase());
}

/**
 * The conversation: the speech providers per tenant (the config's `stt`/`tts` under each
 * tenant's; pocketsphinx and flite locally, and as the fallback of cloud ones), the rules or
 * LLM agent per tenant, tool gateways and the case queue.
 * @throws ConfigError when a tenant's speech settings cannot work in this process
 */
async function startDialogue(config: Config, tenants: TenantDirectory): Promise<DialogueService> {
  const [{ DialogueService }, { createStt }, { FliteTts }, { sharedCrmErpStore }, { SpeechProviders, checkSpeech, tenantSpeech }] = await Promise.all([
    import('./dialogue/service.ts'), import('./stt/index.ts'), import('./tts/index.ts'), import('./crm-erp/server.ts'), import('./speech/providers.ts'),
  ]);
  const defaults = { stt: config.stt, tts: config.tts };
  checkSpeech(defaults, tenants.tenants, { config: config.configFile ?? 'environment', tenantsFile: config.tenantsFile });
  // every espeak-ng voice a tenant's `voices` names exists here (ConfigError naming the field)
  (await import('./tts/voices.ts')).checkTenantVoices(tenants.tenants, config.tenantsFile);
  const vocabulary = sharedCrmErpStore().vocabulary();
  const stt = createStt('pocketsphinx');
  await stt.prepare?.(vocabulary).catch((err: unknown) => log.warn('speech recognition warm-up failed', { err: err as Error }));
  const tts = new FliteTts();
  const speech = new SpeechProviders({ defaults, local: { stt, tts } });
  for (const t of tenants.tenants) {
    const s = tenantSpeech(defaults, t);
    if (s.stt.provider !== 'pocketsphinx' || s.tts.provider !== 'flite') {
      const p = speech.primary(t);
      log.info('tenant speech', { tenant: t.id, stt: p.stt.name, tts: p.tts.name, ...(s.stt.provider === 'openai' ? { sttUrl: s.stt.baseUrl ?? process.env.OPENAI_BASE_URL } : {}), ...(s.tts.provider === 'openai' ? { ttsUrl: s.tts.baseUrl ?? process.env.OPENAI_BASE_URL } : {}) });
    }
  }
  return new DialogueService({ stt, tts, vocabulary, speechFor: (tenant, clog) => speech.forCall(tenant, clog) });
}

/** The `serve` command. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const { config, tenants } = loadOrExit(argv);
  setLogLevel(config.logLevel);
  setLogFormat(config.logFormat);
  let running: Running;
  try {
    running = await start(config, tenants);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    log.error('start-up failed', { err: err as Error });
    process.exit(EXIT_STARTUP_FAILED);
  }
  let signaled = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signaled) {
      log.warn('second signal, stopping now', { signal: sig, calls: running.app.activeCalls });
      const hard = setTimeout(() => process.exit(EXIT_STARTUP_FAILED), 3000);
      hard.unref();
      running.stop().finally(() => process.exit(EXIT_OK));
      return;
    }
    signaled = true;
    const draining = sig === 'SIGTERM' && running.config.drainSeconds > 0;
    log.info(draining ? 'SIGTERM: draining' : 'shutting down', { signal: sig, calls: running.app.activeCalls, ...(draining ? { drainSeconds: running.config.drainSeconds } : {}) });
    (draining ? running.drain() : running.stop()).then(
      () => {
        log.info('voice-agent stopped');
        process.exit(EXIT_OK);
      },
      (err: unknown) => {
        log.error('shutdown failed', { err: err as Error });
        process.exit(EXIT_STARTUP_FAILED);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) => {
    log.error('fatal', { err: err as Error });
    process.exit(EXIT_STARTUP_FAILED);
  });
}
