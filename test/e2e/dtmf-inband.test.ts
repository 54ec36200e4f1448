/**
 * In-band DTMF end to end: a caller whose offer has no telephone-event keys digits as tones
 * in its audio (PCMU and PCMA); the server's media core detects them and the conversation
 * takes them as a keyed turn (`msg="caller keyed" digits=…`), exactly as RFC 4733 digits.
 * A caller that speaks (flite) and keys nothing produces no digits.
 */
import t from 'tap';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { placeCall } from '../helpers/caller.ts';
import { dtmfTones } from '../helpers/dtmf-tones.ts';
import { fliteSay } from '../helpers/audio.ts';

/** Overload admission off: a loaded test box must not turn these calls away (503); they test something else. */
const NO_ADMISSION = { ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0' };

let server: ServerHandle;
t.before(async () => {
  server = await startServer({ LOG_LEVEL: 'info', VOICE_MEDIA_RT_PRIORITY: '0', ...NO_ADMISSION }, { rtpPorts: 20 });
});
t.teardown(async () => {
  await server?.stop();
});

const keyedIn = (log: string): string[] => [...log.matchAll(/msg="?caller keyed"?[^\n]*? digits=(\S+)/g)].map((m) => m[1]!);

async function waitKeyed(mark: number, n: number): Promise<string[]> {
  for (let i = 0; i < 50 && keyedIn(server.log().slice(mark)).length < n; i++) await new Promise((r) => setTimeout(r, 100));
  return keyedIn(server.log().slice(mark));
}

for (const codec of ['PCMU', 'PCMA'] as const) {
  t.test(`${codec} without telephone-event: tones in the audio reach the conversation as digits`, async (t) => {
    const mark = server.log().length;
    const r = await placeCall({
      port: server.sipPort,
      offer: [codec === 'PCMU' ? { pt: 0, name: 'PCMU' } : { pt: 8, name: 'PCMA' }],
      maxCallMs: 20000,
      script: async (ctl) => {
        await ctl.pause(1000);
        await ctl.say(dtmfTones('1470#', { toneMs: 90, gapMs: 70 }));
        await ctl.pause(800);
      },
    });
    t.equal(r.status, 200, 'answered');
    t.notMatch(r.answerSdp ?? '', /telephone-event/, 'no telephone-event in the answer');
    t.same(await waitKeyed(mark, 1), ['1470'], 'one keyed turn "1470"');
  });
}

t.test('speech without keys gives no digits', async (t) => {
  const mark = server.log().length;
  const speech = fliteSay('Where is my order? The P O number is four seven one two nine.', 'kal');
  const r = await placeCall({
    port: server.sipPort,
    offer: [{ pt: 0, name: 'PCMU' }],
    maxCallMs: 20000,
    script: async (ctl) => {
      await ctl.pause(800);
      await ctl.say(speech);
      await ctl.pause(3000);
    },
  });
  t.equal(r.status, 200);
  const log = server.log().slice(mark);
  t.same(keyedIn(log), [], 'no keyed turn');
  t.notMatch(log, /dtmf received/, 'no digit detected');
});
