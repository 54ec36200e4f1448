/**
 * `voice-agent console-hash`: credentials for `console.reps` in the config.
 *
 *   voice-agent console-hash < password.txt      prints a passwordHash (scrypt) for the
 *                                                 password on stdin (first line; a terminal
 *                                                 asks twice without echo)
 *   voice-agent console-hash --link --rep ID [--url https://console.example.com]
 *                                                 prints a loginTokenHash and the rep's login link
 *
 * Exit codes: 0 printed, 2 usage or an unusable password.
 */
import { hashPassword, newLoginToken } from './auth.ts';

const USAGE = `usage: voice-agent console-hash                 (password on stdin) → passwordHash for console.reps
       voice-agent console-hash --link --rep ID [--url BASE]  → loginTokenHash + the rep's login link
`;
const MIN_LENGTH = 8;

export async function main(args: string[], io: { stdin?: NodeJS.ReadStream; stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream } = {}): Promise<number> {
  const stdin = io.stdin ?? process.stdin;
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  let link = false;
  let rep: string | undefined;
  let base = '';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') {
      out.write(USAGE);
      return 0;
    }
    if (a === '--link') link = true;
    else if (a === '--rep') rep = args[++i];
    else if (a === '--url') base = (args[++i] ?? '').replace(/\/+$/, '');
    else {
      err.write(`console-hash: unknown argument ${JSON.stringify(a)}\n${USAGE}`);
      return 2;
    }
  }

  if (link) {
    if (!rep || !/^[A-Za-z0-9._@-]{1,64}$/.test(rep)) {
      err.write(`console-hash: --link needs --rep <the rep's id in console.reps>\n${USAGE}`);
      return 2;
    }
    const { token, hash } = newLoginToken();
    out.write(`loginTokenHash: ${hash}\n`);
    out.write(`link: ${base}/login#rep=${encodeURIComponent(rep)}&token=${token}\n`);
    err.write('Put loginTokenHash in the rep\'s console.reps entry; give the link to the rep only (it logs in as them until the hash is removed).\n');
    return 0;
  }

  const password = stdin.isTTY ? await promptTwice(stdin, err) : firstLine(await readAll(stdin));
  if (password === null) {
    err.write('console-hash: the two passwords differ\n');
    return 2;
  }
  if (password.length < MIN_LENGTH) {
    err.write(`console-hash: the password must have at least ${MIN_LENGTH} characters\n`);
    return 2;
  }
  out.write(`${await hashPassword(password)}\n`);
  return 0;
}

function firstLine(s: string): string {
  return s.split(/\r?\n/)[0] ?? '';
}

function readAll(stdin: NodeJS.ReadStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    stdin.setEncoding('utf8');
    stdin.on('data', (d: string) => (s += d));
    stdin.on('end', () => resolve(s));
    stdin.on('error', reject);
  });
}

/** Read a password twice from a terminal without echo; null when the two differ. */
async function promptTwice(stdin: NodeJS.ReadStream, err: NodeJS.WritableStream): Promise<string | null> {
  const a = await prompt(stdin, err, 'Password: ');
  const b = await prompt(stdin, err, 'Again: ');
  stdin.pause();
  return a === b ? a : null;
}

function prompt(stdin: NodeJS.ReadStream, err: NodeJS.WritableStream, label: string): Promise<string> {
  err.write(label);
  return new Promise((resolve) => {
    let s = '';
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.resume();
    const onData = (d: string): void => {
      for (const ch of d) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.off('data', onData);
          stdin.setRawMode(false);
          err.write('\n');
          resolve(s);
          return;
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          err.write('\n');
          process.exit(130);
        }
        if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
        else s += ch;
      }
    };
    stdin.on('data', onData);
  });
}
