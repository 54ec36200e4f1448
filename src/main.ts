/**
 * `voice-agent serve`: load config and tenants, start the media engine, start the built-in
 * SIP edge (unless a drachtio-server is configured), connect the drachtio-srf app, and
 * print one ready line:
 *
 * `ts=… level=info mod=main msg="voice-agent ready" sip=udp+tcp/127.0.0.1:5060 edge=builtin control=127.0.0.1:9022 rtp=40000-40999 tenants=1`
 *
 * SIGINT/SIGTERM hang up live calls (BYE), stop the edge, close the engine, exit 0.
 * A config error prints `config error: <file>: <field>: <problem>` and exits 2; any other
 * start-up failure exits 1.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig, ConfigError, describeSip, sipTlsMaterial, type Config } from './config.ts';
import { loadTenants, type TenantDirectory } from './tenants/index.ts';
import { logger, setLogLevel } from './ops/log.ts';
import { VoiceApp } from './sip/app.ts';
import { checkTrunkTenants, TrunkPolicy } from './sip/trunk-policy.ts';
import { SipGuard } from './sip/sip-guard.ts';
import { SipEdge } from './sip-edge/index.ts';
import type { MediaEngine } from './media/index.ts';
import type { RtpengineAnchor } from './media/rtpengine/index.ts';
import type { DialogueService } from './dialogue/service.ts';
import { ScreenPopStore } from './escalation/screen-pop.ts';
import { startCdr, type CdrService } from './cdr/index.ts';
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
  const dialogue = await startDialogue();
  const cdr = await startCdr({ settings: config.cdr, tenants: tenants.tenants, releaseCauses: BYE_REASON });
  if (cdr) {
    dialogue.setObserver({
      conversation: (call, c) => cdr.recorder.conversation(call, c),
      caseCreated: (m, caseNumber) => cdr.recorder.caseCreated(m.callId, m.id, caseNumber),
    });
  }
  let edge: SipEdge | null = null;
  let app: VoiceApp | null = null;
  let repConsole: RepConsole | null = null;
  const pops = new ScreenPopStore();
  // Trunk access and flood defence (src/sip/sip-guard.ts): in the built-in edge before any
  // transaction, or as drachtio-srf middleware when drachtio-server is the edge.
  const trunkPolicy = new TrunkPolicy({ trunks: config.trunks, unknownSources: config.sipGuard.unknownSources });
  const guard = new SipGuard(config.sipGuard, trunkPolicy);
  for (const w of trunkPolicy.startupWarnings(config.edge === 'builtin' ? config.sip.address : config.drachtio.host, config.sipGuard.rateLimit.trunkRequests)) log.warn(w);
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (app) await app.shutdown();
      await dialogue.close().catch((err: unknown) => log.warn('dialogue close failed', { err: err as Error }));
      await cdr?.close().catch((err: unknown) => log.warn('CDR store close failed', { err: err as Error }));
      await repConsole?.close().catch(() => {});
      await rtpengine?.close().catch((err: unknown) => log.warn('rtpengine close failed', { err: err as Error }));
      if (edge) await edge.stop().catch((err: unknown) => log.warn('edge stop failed', { err: err as Error }));
      guard.close();
      engine.close();
    })();
    return stopped;
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
      });
      await edge.start();
      // Ports may have been 0 (OS-assigned): point the app at what was bound.
      config.sip.port = edge.sipPort;
      if (config.sip.tls) config.sip.tls.port = edge.tlsPort;
      config.drachtio.port = edge.controlPort;
    }
    app = new VoiceApp({
      config, tenants, engine, synthesize, supportedCodecs, rtpengine,
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
    });
    return { config, app, edge, engine, rtpengine, dialogue, pops, repConsole, cdr, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/**
 * Native VAD (Silero) for turn-taking and barge-in; `VAD=off` falls back to the dialogue's
 * energy endpointing. Env `VAD`. @defaultValue on
 */
export function vadEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return !['off', '0', 'false', 'no'].includes((env.VAD ?? 'on').toLowerCase());
}

/**
 * The conversation on embedded defaults: pocketsphinx STT with the CRM/ERP vocabulary,
 * flite TTS, the rules or LLM agent per tenant, tool gateways and the case queue.
 */
async function startDialogue(): Promise<DialogueService> {
  const [{ DialogueService }, { createStt }, { FliteTts }, { sharedCrmErpStore }] = await Promise.all([
    import('./dialogue/service.ts'), import('./stt/index.ts'), import('./tts/index.ts'), import('./crm-erp/server.ts'),
  ]);
  const vocabulary = sharedCrmErpStore().vocabulary();
  const stt = createStt('pocketsphinx');
  await stt.prepare?.(vocabulary).catch((err: unknown) => log.warn('speech recognition warm-up failed', { err: err as Error }));
  return new DialogueService({ stt, tts: new FliteTts(), vocabulary });
}

/** The `serve` command. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const { config, tenants } = loadOrExit(argv);
  setLogLevel(config.logLevel);
  let running: Running;
  try {
    running = await start(config, tenants);
  } catch (err) {
    log.error('start-up failed', { err: err as Error });
    process.exit(EXIT_STARTUP_FAILED);
  }
  let signaled = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signaled) {
      log.warn('second signal, exiting now', { signal: sig });
      process.exit(EXIT_STARTUP_FAILED);
    }
    signaled = true;
    log.info('shutting down', { signal: sig, calls: running.app.activeCalls });
    running.stop().then(
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
