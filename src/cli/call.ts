/**
 * `voice-agent call`: dial the agent like a customer would and print the conversation.
 *
 * ```
 * voice-agent call --port 5060 --from +14155550142 \
 *     --say "I need twenty of H X four four one zero" --say "Yes" --out call.wav
 * voice-agent call --port 5060 --wav question.wav --dtmf 12345#
 * ```
 * Turns run in the order given: after the greeting, each `--say` / `--wav` / `--dtmf` is
 * sent and the caller waits until the agent has answered and gone quiet. The agent's
 * answers are transcribed with the local recogniser (when it loads); the received audio is
 * saved as an 8 kHz WAV with `--out`. Exit code 0 when the call was answered, 1 otherwise,
 * 2 on bad arguments.
 */
import { writeFileSync } from 'node:fs';
import { runConversation, type CallerTurn, type ConversationLine } from './conversation.ts';
import { wavBytes } from './rtp.ts';

export const USAGE = `usage: voice-agent call [options] [--say TEXT | --wav FILE | --dtmf DIGITS]...

  --host ADDR         SIP address of the agent (default 127.0.0.1)
  --port N            SIP port (UDP) of the agent (default 5060)
  --to NUMBER         dialed number (default 18005550100)
  --from NUMBER       calling number / ANI (default +14155550142, a demo customer)
  --codec PCMU|PCMA   codec to offer (default PCMU)
  --say TEXT          a turn spoken by flite (repeatable)
  --wav FILE          a turn from a 16-bit PCM WAV file (repeatable)
  --dtmf DIGITS       a turn keyed as RFC 4733 DTMF (repeatable)
  --voice NAME        flite voice for --say: kal, slt, rms, awb, kal16 (default slt)
  --noise DB          add white noise this many dB below the speech (--say turns)
  --silence-ms N      agent quiet time that ends its turn (default 1500)
  --no-greeting       do not wait for the greeting before the first turn
  --no-transcribe     do not transcribe the agent's speech
  --out FILE          save the received audio as WAV
  --json              print the result as JSON instead of lines
`;

interface Args {
  host: string;
  port: number;
  to: string;
  from: string;
  codec: 'PCMU' | 'PCMA';
  turns: CallerTurn[];
  voice: string;
  noise?: number;
  silenceMs: number;
  greeting: boolean;
  transcribe: boolean;
  out?: string;
  json: boolean;
}

export function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    host: '127.0.0.1', port: 5060, to: '18005550100', from: '+14155550142', codec: 'PCMU', turns: [], voice: 'slt',
    silenceMs: 1500, greeting: true, transcribe: true, json: false,
  };
  const says: Array<{ i: number }> = [];
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    const num = (): number => {
      const s = v();
      const n = Number(s);
      if (!Number.isFinite(n)) throw new Error(`${k} needs a number, got "${s}"`);
      return n;
    };
    switch (k) {
      case '--host': a.host = v(); break;
      case '--port': a.port = num(); break;
      case '--to': a.to = v(); break;
      case '--from': a.from = v(); break;
      case '--codec': {
        const c = v().toUpperCase();
        if (c !== 'PCMU' && c !== 'PCMA') throw new Error(`--codec must be PCMU or PCMA, got "${c}"`);
        a.codec = c;
        break;
      }
      case '--say': says.push({ i: a.turns.length }); a.turns.push({ say: v() }); break;
      case '--wav': a.turns.push({ wav: v() }); break;
      case '--dtmf': a.turns.push({ dtmf: v() }); break;
      case '--voice': a.voice = v(); break;
      case '--noise': a.noise = num(); break;
      case '--silence-ms': a.silenceMs = num(); break;
      case '--no-greeting': a.greeting = false; break;
      case '--no-transcribe': a.transcribe = false; break;
      case '--out': a.out = v(); break;
      case '--json': a.json = true; break;
      default: throw new Error(`unknown option "${k}"`);
    }
  }
  for (const { i } of says) {
    const t = a.turns[i] as { say: string; voice?: string; noiseSnrDb?: number };
    t.voice = a.voice;
    if (a.noise !== undefined) t.noiseSnrDb = a.noise;
  }
  return a;
}

function show(l: ConversationLine): string {
  if (l.role === 'call') return `-- ${l.text}`;
  const extra = l.role === 'agent' && (l.gapMs !== undefined || l.durationMs !== undefined)
    ? `  [${[l.gapMs !== undefined ? `gap ${l.gapMs} ms` : '', l.durationMs !== undefined ? `${(l.durationMs / 1000).toFixed(1)} s` : ''].filter(Boolean).join(', ')}]`
    : '';
  return `${l.role === 'agent' ? 'agent ' : 'caller'}: ${l.text}${extra}`;
}

/** The `call` command. Returns the exit code (also sets process.exitCode). */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`voice-agent call: ${(err as Error).message}\n${USAGE}`);
    process.exitCode = 2;
    return 2;
  }
  if (!args.json) process.stdout.write(`-- calling ${args.to} at ${args.host}:${args.port} from ${args.from}\n`);
  const r = await runConversation({
    host: args.host, port: args.port, to: args.to, from: args.from, codec: args.codec, turns: args.turns, voice: args.voice,
    silenceMs: args.silenceMs, waitForGreeting: args.greeting, ...(args.transcribe ? {} : { stt: false as const }),
    onLine: args.json ? undefined : (l) => process.stdout.write(`${show(l)}\n`),
  });
  const ok = r.call.status >= 200 && r.call.status < 300;
  if (args.out) {
    writeFileSync(args.out, wavBytes(r.call.pcm, 8000));
    if (!args.json) process.stdout.write(`-- saved ${(r.call.pcm.length / 8000).toFixed(1)} s of received audio to ${args.out}\n`);
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({
      status: r.call.status, reason: r.call.reason, callId: r.call.callId, hangup: r.call.hangup,
      lines: r.lines, gapsMs: r.gapsMs, receivedMs: Math.round(r.call.pcm.length / 8),
    }, null, 2) + '\n');
  } else if (r.gapsMs.length) {
    const s = [...r.gapsMs].sort((x, y) => x - y);
    process.stdout.write(`-- turn gaps (our last voiced packet → agent's first): ${r.gapsMs.join(', ')} ms (median ${s[Math.floor(s.length / 2)]} ms)\n`);
  }
  const code = ok ? 0 : 1;
  process.exitCode = code;
  return code;
}
