/**
 * Languages over SIP, end to end on embedded defaults (pocketsphinx is English only, so
 * Spanish calls run the keypad path): real calls through the built-in edge, the agent's audio
 * checked from the caller's side against speech made outside the product — the Debian
 * `espeak-ng` command speaking the same sentence with the tenant's voice (envelope match,
 * test/helpers/espeak.ts) — and against flite's English for the opposite.
 *
 * - Rosa Martinez (es-US in the CRM) calls Northwind: greeted by name in Spanish with the
 *   espeak-ng voice, told the line serves her by keypad, keys 1 and PO 77410 and hears its
 *   status in Spanish.
 * - Dana (en-US) calls Northwind: English greeting, then the offer "Para español, oprima 2" in
 *   the Spanish voice; she presses 2 and is greeted again in Spanish.
 * - The second tenant's DID: its own Spanish greeting and voice (female variant), its menu
 *   has no ordering, and Northwind's greeting never plays.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { placeCall, type CallControl, type CallResult } from '../helpers/caller.ts';
import { envelopeMatch, espeakSay } from '../helpers/espeak.ts';
import { fliteSay, wavBuffer } from '../helpers/audio.ts';

const ROSA = '+12145550188';
const DANA = '+14155550142';
const OPEN_AT = '2026-12-02T16:00:00Z'; // Wed 10:00 in Chicago: open

t.setTimeout(300_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'languages-e2e-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

let server: ServerHandle;
t.before(async () => {
  server = await startServer({ DATA_DIR: path.join(tmp, 'var'), VOICE_AGENT_NOW: OPEN_AT, VOICE_MEDIA_RT_PRIORITY: '0' }, { readyTimeoutMs: 60000, rtpPorts: 40 });
});
t.teardown(() => server?.stop());

/** Northwind's Spanish voice and the second tenant's (tenants.yaml `voices`). */
const NW_ES = (s: string) => espeakSay(s, 'es-419', 160);
const SUR_ES = (s: string) => espeakSay(s, 'es-419+f3', 150);

async function call(to: string, from: string, script: (c: CallControl) => Promise<void>): Promise<CallResult> {
  const r = await placeCall({ port: server.sipPort, to, from, maxCallMs: 90_000, script });
  if (process.env.LANGUAGES_E2E_DUMP) writeFileSync(path.join(process.env.LANGUAGES_E2E_DUMP, `${to}-${from.replace('+', '')}.wav`), wavBuffer(r.pcm));
  t.equal(r.status, 200, `${from} → ${to} answered`);
  t.notOk(r.scriptError, r.scriptError?.message ?? 'script ran');
  return r;
}

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// ≥ 0.7 is the same sentence in the same voice (espeak-ng's intonation carries a little from
// the sentence before); other words, another voice or flite's English measured ≤ 0.6.
function heard(t: Test, audio: Int16Array, ref: Int16Array, what: string, min = 0.7): number {
  const m = envelopeMatch(audio, ref);
  t.ok(m.score >= min, `${what}: heard (match ${m.score.toFixed(3)} at ${m.atSec.toFixed(1)} s)`);
  return m.score;
}

t.test('Rosa (es-US in the CRM) is greeted and served in Spanish by keypad: order status by PO digits', async (t) => {
  const mark = server.log().length;
  let greeting: Int16Array = new Int16Array(0);
  let poPrompt: Int16Array = new Int16Array(0);
  const r = await call('18005550100', ROSA, async (c) => {
    greeting = (await c.waitForAgent({ silenceMs: 1500, timeoutMs: 40000 })).pcm;
    await c.dtmf('1');
    poPrompt = (await c.waitForAgent({ silenceMs: 1500, timeoutMs: 20000 })).pcm;
    await c.dtmf('77410#');
    await c.pause(8000); // the status sentence (≈ 5 s); the rest of the menu is not needed
  });
  heard(t, greeting, NW_ES('Gracias por llamar a Northwind Industrial Supply.'), 'the Spanish greeting in the espeak-ng voice');
  heard(t, greeting, NW_ES('Hola Rosa, veo que llama de Lone Star HVAC Services.'), 'greeted by name');
  heard(t, greeting, NW_ES('Por ahora nuestro asistente solo entiende inglés por voz, así que le atenderé con el teclado del teléfono.'), 'told why the keypad');
  heard(t, greeting, NW_ES('Para el estado de un pedido, oprima uno.'), 'the keypad menu');
  const english = envelopeMatch(greeting, fliteSay('Thank you for calling Northwind Industrial Supply.', 'slt')).score;
  t.ok(english < 0.6, `not the English greeting (match ${english.toFixed(3)})`);
  heard(t, r.pcm, NW_ES('Marque los dígitos del número de su orden de compra y después la tecla de número.'), 'asked for the PO digits');
  heard(t, r.pcm, NW_ES('El pedido con orden de compra P O 7 7 4 1 0 está enviado.'), 'the status of PO77410 in Spanish');
  const log = server.log().slice(mark);
  t.match(log, /msg="call language".*language=es-US.*why="crm \(es-US\)".*path=keypad/, 'the language came from the CRM');
  t.match(log, /msg="conversation start".*tts=espeak-ng.*language=es-US/);
});

t.test('an English caller chooses Spanish with key 2 after the offer said in Spanish', async (t) => {
  let first: Int16Array = new Int16Array(0);
  let after: Int16Array = new Int16Array(0);
  const r = await call('18005550100', DANA, async (c) => {
    first = (await c.waitForAgent({ silenceMs: 1500, timeoutMs: 40000 })).pcm;
    await c.dtmf('2#');
    after = (await c.waitForAgent({ silenceMs: 1500, timeoutMs: 40000 })).pcm;
  });
  heard(t, first, fliteSay('Thank you for calling Northwind Industrial Supply.', 'slt'), 'the English greeting (flite slt)');
  const offer = envelopeMatch(r.pcm, NW_ES('Para español, oprima 2.'));
  const spanish = envelopeMatch(r.pcm, NW_ES('Gracias por llamar a Northwind Industrial Supply.'));
  t.ok(offer.score >= 0.7, `the offer in the Spanish voice (match ${offer.score.toFixed(3)} at ${offer.atSec.toFixed(1)} s)`);
  t.ok(offer.atSec < spanish.atSec, `offered before the Spanish greeting (${spanish.atSec.toFixed(1)} s)`);
  t.ok(envelopeMatch(r.pcm, fliteSay('Para español, oprima 2.', 'slt')).score < offer.score - 0.2, 'not said by the English voice');
  heard(t, after, NW_ES('Gracias por llamar a Northwind Industrial Supply.'), 'after 2: greeted in Spanish');
  heard(t, after, NW_ES('Para el estado de un pedido, oprima uno.'), 'and served by keypad');
  t.ok(envelopeMatch(after, fliteSay('Thank you for calling Northwind Industrial Supply.', 'slt')).score < 0.6, 'no more English');
});

t.test('the second tenant\'s DID: its Spanish prompts and voice, no ordering, nothing of Northwind', async (t) => {
  const mark = server.log().length;
  const segs: Int16Array[] = [];
  let consentAsked = false;
  const r = await call('18005550122', DANA, async (c) => {
    // a consent tenant: the disclosure and the consent question come first; decline (2).
    // Listen until the question (or, without a consent flow, the greeting) has been heard.
    const ask = SUR_ES('Oprima uno para sí o dos para no.');
    const hello = SUR_ES('Bienvenido a Suministros del Sur.');
    for (let i = 0; i < 3; i++) {
      segs.push((await c.waitForAgent({ silenceMs: 1500, timeoutMs: 40000 })).pcm);
      const all = concat(segs);
      if (envelopeMatch(all, ask).score >= 0.7) {
        consentAsked = true;
        await c.dtmf('2');
        segs.push((await c.waitForAgent({ silenceMs: 1500, timeoutMs: 40000 })).pcm);
        break;
      }
      if (envelopeMatch(all, hello).score >= 0.7) break;
    }
    await c.dtmf('1');
    segs.push((await c.waitForAgent({ silenceMs: 1500, timeoutMs: 20000 })).pcm);
    await c.dtmf('12345#');
    await c.pause(7000); // the status sentence (≈ 3 s)
  });
  t.comment(consentAsked ? 'the consent question was asked in Spanish; declined with 2' : 'no consent question on this build');
  if (consentAsked) heard(t, r.pcm, SUR_ES('De acuerdo, no grabaremos la llamada.'), 'the decline acknowledged in Spanish');
  heard(t, r.pcm, SUR_ES('Bienvenido a Suministros del Sur.'), 'its own greeting in its own voice');
  const nwVoice = envelopeMatch(r.pcm, NW_ES('Bienvenido a Suministros del Sur.')).score;
  t.ok(nwVoice < envelopeMatch(r.pcm, SUR_ES('Bienvenido a Suministros del Sur.')).score - 0.2, `in its own voice, not Northwind's Spanish voice (${nwVoice.toFixed(3)})`);
  heard(t, r.pcm, SUR_ES('Hola Dana, de Acme Plumbing Supply.'), 'Dana greeted by name on this line too (same CRM)');
  heard(t, r.pcm, SUR_ES('Para consultar un pedido, oprima uno.'), 'its own menu');
  heard(t, r.pcm, SUR_ES('Su pedido P O 1 2 3 4 5 está enviado.'), 'its own status wording');
  const nw = envelopeMatch(r.pcm, NW_ES('Gracias por llamar a Northwind Industrial Supply.')).score;
  t.ok(nw < 0.6, `Northwind's greeting never plays (match ${nw.toFixed(3)})`);
  const log = server.log().slice(mark);
  t.match(log, /msg="call language".*language=es-US.*why=tenant/);
  t.notMatch(log, /tool=place_order|name=place_order/, 'no order placement attempted');
  t.notOk(readdirSync(path.join(tmp, 'var'), { recursive: true }).some((f) => String(f).startsWith('recordings') && String(f).endsWith('.wav')), 'declined (or no consent flow): nothing recorded');
});
