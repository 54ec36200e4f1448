/**
 * Call recordings: one stereo WAV per recorded call (left = caller, right = what the caller
 * hears: the agent, and the rep after a warm transfer — the native recorder taps the
 * caller's session, whose outbound carries the bridged rep audio), written by the native
 * recorder (native/recorder.cc) and started ONLY when {@link CallRecording.allow} is called
 * (after the caller's yes, or after the notice played). Next to each WAV a JSON sidecar with
 * the call's facts: call id, tenant, jurisdiction, posture, consent event and time.
 *
 * Files: the directory is created 0700, the WAV and the sidecar are 0600 (created empty with
 * that mode before the native writer opens the WAV, so no moment exists where they are
 * readable by others). Retention: {@link purgeRecordings} deletes a recording and its sidecar
 * older than its tenant's `recording.retentionDays` — at start, hourly, and by
 * `voice-agent recordings purge`.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { logger, type Logger } from '../ops/log.ts';
import type { RecordingPosture, Tenant, TenantRecording } from '../tenants/tenant.ts';
import { jurisdictionOf, type ConsentRule } from './jurisdiction.ts';
import { resolvePosture } from './posture.ts';

/** What happened about consent on a call. */
export type ConsentEvent =
  /** posture off: nothing asked, nothing recorded */
  | 'none'
  /** the question was asked, no answer yet */
  | 'pending'
  /** yes (word or key 1) */
  | 'granted'
  /** no (word or key 2) */
  | 'declined'
  /** no clear answer after the reprompts: treated as a no */
  | 'no-answer'
  /** notify posture: the notice was played */
  | 'notified';

/** A call's recording facts: the CDR, the screen pop and the sidecar carry them. */
export interface RecordingFacts {
  /** the posture the call ran under (after the legal floor) */
  posture: RecordingPosture;
  /** what the tenant's config said, and which key said it (`overrides.US-TX`, `posture`) */
  configured: RecordingPosture;
  source: string;
  /** `US-CA`, `GB`, `US` (state unknown), `unknown` */
  jurisdiction: string;
  rule: ConsentRule;
  why: string;
  consent: ConsentEvent;
  /** how the answer came: `speech` or `dtmf` */
  consentBy?: 'speech' | 'dtmf';
  /** ISO time of the consent event (the answer, or the end of the notice) */
  consentAt?: string;
  /** the call is (or was) being recorded */
  recorded: boolean;
  /** absolute path of the WAV */
  path?: string;
  /** ISO time the recording started */
  recordingStartedAt?: string;
}

/** What a call needs from its media session to be recorded (src/media MediaSession fits). */
export interface RecordableSession {
  startRecording?(path: string): void;
  stopRecording?(): { path: string; frames: number; dropped: number; sampleRate: number } | null;
}

export interface RecordableCall {
  readonly callId: string;
  readonly tenant: Tenant;
  /** E.164 calling number (the CRM lookup number, also when withheld from people) */
  readonly ani?: string;
  readonly from: string;
  readonly session: RecordableSession;
}

/** The recording directory of a tenant: an absolute `dir`, or `dir` under the data directory. */
export function recordingDir(rec: Pick<TenantRecording, 'dir'>, dataDir: string): string {
  return path.resolve(dataDir, rec.dir);
}

function safeName(callId: string): string {
  const s = callId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 48);
  return `${s}-${createHash('sha256').update(callId).digest('hex').slice(0, 8)}`;
}

/** Write (or rewrite) a file with mode 0600, whatever the umask. */
function writePrivate(file: string, data: string): void {
  writeFileSync(file, data, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** One call's recording: decided at answer, started only by {@link allow}. */
export class CallRecording {
  readonly facts: RecordingFacts;
  private readonly dir: string;
  private wav: string | null = null;
  private stopped = false;

  constructor(private readonly call: RecordableCall, private readonly rec: TenantRecording | undefined, dataDir: string, private readonly log: Logger = logger('recording', { callId: call.callId })) {
    const j = jurisdictionOf(call.ani || call.from);
    const d = resolvePosture(rec, j);
    this.dir = recordingDir(rec ?? { dir: 'recordings' }, dataDir);
    this.facts = {
      posture: d.posture, configured: d.configured, source: d.source,
      jurisdiction: j.key, rule: j.rule, why: j.why,
      consent: d.posture === 'off' ? 'none' : d.posture === 'consent' ? 'pending' : 'pending',
      recorded: false,
    };
    this.log.info('recording posture', { posture: d.posture, configured: d.configured, source: d.source, jurisdiction: j.key, rule: j.rule, raised: d.raised || undefined });
  }

  get posture(): RecordingPosture {
    return this.facts.posture;
  }

  get onDecline(): 'continue' | 'human' {
    return this.rec?.onDecline ?? 'continue';
  }

  /**
   * The consent event happened. `granted` / `notified` start the recording now (the only
   * path to `startRecording`); `declined` / `no-answer` make sure nothing is recorded.
   */
  allow(event: 'granted' | 'notified', by?: 'speech' | 'dtmf'): void {
    if (this.stopped || this.facts.recorded) return;
    if (this.facts.posture === 'off') return;
    if (this.facts.consent === 'declined' || this.facts.consent === 'no-answer') return; // a no stays a no
    if (event === 'notified' && this.facts.posture !== 'notify') return; // consent needs a yes
    this.facts.consent = event;
    this.facts.consentAt = new Date().toISOString();
    if (by) this.facts.consentBy = by;
    let base: string | null = null;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      chmodSync(this.dir, 0o700);
      const stamp = this.facts.consentAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      base = path.join(this.dir, `${stamp}-${this.call.tenant.id}-${safeName(this.call.callId)}`);
      const wav = `${base}.wav`;
      closeSync(openSync(wav, 'wx', 0o600)); // exists 0600 before the native writer opens it ("wb" keeps the mode)
      chmodSync(wav, 0o600);
      if (!this.call.session.startRecording) throw new Error('this media session cannot record');
      this.call.session.startRecording(wav);
      this.wav = wav;
      this.facts.recorded = true;
      this.facts.path = wav;
      this.facts.recordingStartedAt = new Date().toISOString();
      this.writeSidecar();
      this.log.info('recording started', { consent: event, by, path: wav });
    } catch (err) {
      this.log.error('recording could not start; the call goes on unrecorded', { err: err as Error, dir: this.dir });
      if (!this.wav && base) rmSync(`${base}.wav`, { force: true });
      this.facts.recorded = false;
      delete this.facts.path;
    }
  }

  /** The caller said no (or never answered clearly): nothing is recorded. */
  refuse(event: 'declined' | 'no-answer', by?: 'speech' | 'dtmf'): void {
    if (this.facts.recorded) return;
    this.facts.consent = event;
    this.facts.consentAt = new Date().toISOString();
    if (by) this.facts.consentBy = by;
    this.log.info('recording declined; not recorded', { consent: event, by });
  }

  /** The call ended: finish the WAV, complete the sidecar. Idempotent. */
  finish(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.wav) return;
    let frames: number | undefined;
    let rate: number | undefined;
    try {
      const r = this.call.session.stopRecording?.() ?? null;
      if (r) { frames = r.frames; rate = r.sampleRate; }
    } catch (err) {
      this.log.warn('recording stop failed (closing the session finishes the file)', { err: err as Error });
    }
    if (frames === undefined) {
      // the session closed first (it finished the file itself): the length from the WAV header
      try {
        const h = readFileSync(this.wav).subarray(0, 44);
        if (h.length === 44 && h.toString('ascii', 0, 4) === 'RIFF') { rate = h.readUInt32LE(24); frames = h.readUInt32LE(40) / 4; }
      } catch { /* no length */ }
    }
    this.writeSidecar({ endedAt: new Date().toISOString(), ...(frames !== undefined && rate ? { seconds: Math.round((frames / rate) * 100) / 100 } : {}) });
    this.log.info('recording finished', { path: this.wav, seconds: frames !== undefined && rate ? Math.round((frames / rate) * 10) / 10 : undefined });
  }

  private writeSidecar(extra: Record<string, unknown> = {}): void {
    if (!this.wav) return;
    const f = this.facts;
    const doc = {
      callId: this.call.callId, tenant: this.call.tenant.id,
      jurisdiction: f.jurisdiction, rule: f.rule, posture: f.posture, configured: f.configured, source: f.source,
      consent: f.consent, consentBy: f.consentBy ?? null, consentAt: f.consentAt ?? null,
      startedAt: f.recordingStartedAt, wav: path.basename(this.wav), channels: { left: 'caller', right: 'agent / rep' },
      retentionDays: this.rec?.retentionDays ?? null,
      ...extra,
    };
    try {
      writePrivate(this.wav.replace(/\.wav$/, '.json'), `${JSON.stringify(doc, null, 2)}\n`);
    } catch (err) {
      this.log.warn('recording sidecar not written', { err: err as Error });
    }
  }
}

/** Every tenant's recording directory with the tenants that write there. */
export function recordingDirs(tenants: readonly Tenant[], dataDir: string): Map<string, Tenant[]> {
  const out = new Map<string, Tenant[]>();
  for (const t of tenants) {
    if (!t.recording) continue;
    const d = recordingDir(t.recording, dataDir);
    out.set(d, [...(out.get(d) ?? []), t]);
  }
  return out;
}

/**
 * Delete recordings (WAV + sidecar) older than their tenant's retention. The tenant and start
 * time come from the sidecar; a WAV without one (or of a tenant no longer configured) is
 * judged by its file time and the shortest retention of the tenants sharing the directory.
 * Retention 0 keeps forever. Returns the recordings deleted.
 */
export function purgeRecordings(tenants: readonly Tenant[], dataDir: string, now = new Date(), log: Logger = logger('recording')): number {
  let purged = 0;
  for (const [dir, owners] of recordingDirs(tenants, dataDir)) {
    if (!existsSync(dir)) continue;
    const days = new Map(owners.map((t) => [t.id, t.recording!.retentionDays]));
    const finite = [...days.values()].filter((d) => d > 0);
    const fallback = finite.length === days.size && finite.length ? Math.min(...finite) : 0;
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.wav')) continue;
      const wav = path.join(dir, name);
      const side = wav.replace(/\.wav$/, '.json');
      let tenant: string | undefined;
      let started: number | undefined;
      try {
        const doc = JSON.parse(readFileSync(side, 'utf8')) as { tenant?: string; startedAt?: string };
        tenant = doc.tenant;
        if (doc.startedAt) started = Date.parse(doc.startedAt);
      } catch { /* no sidecar: file time */ }
      const keep = tenant !== undefined && days.has(tenant) ? days.get(tenant)! : fallback;
      if (!(keep > 0)) continue;
      const at = started !== undefined && Number.isFinite(started) ? started : statSync(wav).mtimeMs;
      if (now.getTime() - at <= keep * 86_400_000) continue;
      rmSync(wav, { force: true });
      rmSync(side, { force: true });
      purged++;
      log.info('recording purged', { file: name, tenant, retentionDays: keep });
    }
  }
  return purged;
}

/** One per process: per-call recordings and the retention purge (at start, then hourly). */
export class RecordingService {
  private timer: NodeJS.Timeout | null = null;
  private readonly log = logger('recording');

  /** @param dataDir base of relative recording dirs. @defaultValue env DATA_DIR, else './var' */
  constructor(private tenants: readonly Tenant[], readonly dataDir: string = process.env.DATA_DIR ?? './var') {}

  /** The recording of a call of a tenant with a `recording` block; null otherwise (no disclosure, no recording). */
  forCall(call: RecordableCall): CallRecording | null {
    if (!call.tenant.recording) return null;
    return new CallRecording(call, call.tenant.recording, this.dataDir, logger('recording', { callId: call.callId }));
  }

  purge(now = new Date()): number {
    try {
      return purgeRecordings(this.tenants, this.dataDir, now, this.log);
    } catch (err) {
      this.log.error('recording purge failed', { err: err as Error });
      return 0;
    }
  }

  /** Purge now and every `everyMs`. @param everyMs @defaultValue 3600000 */
  start(everyMs = 3_600_000): this {
    const n = this.purge();
    if (n) this.log.info('recordings past retention purged at start', { purged: n });
    this.timer = setInterval(() => this.purge(), everyMs);
    this.timer.unref?.();
    return this;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
