// C++ unit tests of native/vad (FrameCutter, TurnState): the driver is built with
// g++ -std=c++17 -Wall -Wextra -Werror into build/vad-test/ and its "ok"/"not ok"
// lines become tap assertions. Also checks the TS mirror of the tunables.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureVadTool } from '../audio/pipeline.ts';
import {
  TURN_DEFAULTS, TURN_DEFAULTS_8K, TurnEvent, awaitingDigits, endsInDigits, isBackchannel, resolveTurnTunables, turnDefaults,
  turnEventNames, validateTurnTunables,
} from '../../src/vad/policy.ts';
import { vadSampleRate } from '../../src/vad/rate.ts';

t.test('native selftest (FrameCutter, TurnState)', async (t) => {
  const tool = ensureVadTool();
  let out = '';
  try {
    out = execFileSync(tool, ['selftest']).toString();
  } catch (e) {
    out = String((e as { stdout?: Buffer }).stdout ?? e);
  }
  const lines = out.split('\n').filter((l) => /^(not )?ok \d+ /.test(l));
  t.ok(lines.length >= 30, `${lines.length} native checks ran`);
  for (const l of lines) t.ok(l.startsWith('ok '), l.replace(/^(not )?ok \d+ /, ''));
});

t.test('TS tunables mirror the C++ defaults', async (t) => {
  const h = readFileSync(join(import.meta.dirname, '..', '..', 'native', 'vad', 'turn_state.h'), 'utf8');
  for (const [k, v] of Object.entries(TURN_DEFAULTS)) {
    const m = new RegExp(`\\b(?:int|float) ${k} = ([0-9.]+)f?;`).exec(h);
    t.ok(m, `${k} declared in turn_state.h`);
    t.equal(Number(m?.[1]), v, `${k} default`);
  }
  const ev = /kEvSpeechStart = 1u << 0[\s\S]*kEvSpeechEnd = 1u << 1[\s\S]*kEvBargeIn = 1u << 2[\s\S]*kEvFalseInterruption = 1u << 3[\s\S]*kEvBackchannel = 1u << 4/;
  t.match(h, ev, 'event bits match');
  t.same(turnEventNames(TurnEvent.SpeechStart | TurnEvent.BargeIn), ['SpeechStart', 'BargeIn']);
  t.equal(validateTurnTunables({ ...TURN_DEFAULTS }), null);
  t.throws(() => resolveTurnTunables({ deactivationThreshold: 0.9 }), /deactivationThreshold/);
  t.throws(() => resolveTurnTunables({ digitsEndpointSilenceMs: 300 }), /digitsEndpointSilenceMs/);
  t.equal(resolveTurnTunables({ minInterruptionMs: 400 }).minInterruptionMs, 400);
});

t.test('the model rate: VOICE_VAD_RATE (default 8000) and the tunables that depend on it', async (t) => {
  t.equal(vadSampleRate({}), 8000, 'unset: 8 kHz');
  t.equal(vadSampleRate({ VOICE_VAD_RATE: '' }), 8000, 'empty: 8 kHz');
  t.equal(vadSampleRate({ VOICE_VAD_RATE: '16000' }), 16000);
  t.equal(vadSampleRate({ VOICE_VAD_RATE: ' 8000 ' }), 8000);
  t.throws(() => vadSampleRate({ VOICE_VAD_RATE: '44100' }), /VOICE_VAD_RATE/);
  const h = readFileSync(join(import.meta.dirname, '..', '..', 'native', 'vad', 'frame_cutter.h'), 'utf8');
  t.match(h, /constexpr int kDefaultVadRate = 8000;/, 'the media thread has the same default');
  // 16 kHz: exactly the C++ defaults (checked above); 8 kHz: only the deactivation threshold differs.
  t.same(turnDefaults(16000), TURN_DEFAULTS);
  t.same(resolveTurnTunables({}, 16000), TURN_DEFAULTS);
  t.same(turnDefaults(8000), { ...TURN_DEFAULTS, ...TURN_DEFAULTS_8K });
  t.same(resolveTurnTunables({}, 8000), { ...TURN_DEFAULTS, activationThreshold: 0.6, deactivationThreshold: 0.6 });
  // never above a tenant's own activation threshold; an explicit value wins
  t.same(resolveTurnTunables({ activationThreshold: 0.45 }, 8000), { ...TURN_DEFAULTS, activationThreshold: 0.45, deactivationThreshold: 0.45 });
  t.equal(resolveTurnTunables({ activationThreshold: 0.7 }, 8000).deactivationThreshold, 0.6);
  t.same(resolveTurnTunables({ deactivationThreshold: 0.3 }, 8000), { ...TURN_DEFAULTS, activationThreshold: 0.6, deactivationThreshold: 0.3 });
  t.equal(resolveTurnTunables({ activationThreshold: 0.45 }, 16000).deactivationThreshold, 0.35);
});

t.test('digits and backchannel transcript helpers', async (t) => {
  t.ok(endsInDigits('my PO is one two three'));
  t.ok(endsInDigits('PO12345'));
  t.ok(endsInDigits('five five five dash'));
  t.ok(endsInDigits('four oh'));
  t.notOk(endsInDigits('oh'));
  t.notOk(endsInDigits('where is my order'));
  t.notOk(endsInDigits(''));
  t.ok(awaitingDigits('my P O number is'));
  t.ok(awaitingDigits('the account number'));
  t.ok(awaitingDigits('call me back at 555'));
  t.notOk(awaitingDigits('I want to talk to a person'));
  t.ok(isBackchannel('yeah'));
  t.ok(isBackchannel('Mm-hm.'));
  t.ok(isBackchannel('okay, right'));
  t.ok(isBackchannel(''));
  t.notOk(isBackchannel('wait, that is wrong'));
  t.notOk(isBackchannel('no stop'));
});
