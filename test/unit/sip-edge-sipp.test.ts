/**
 * The built-in SIP edge against SIPp (Debian `sip-tester`), with the real drachtio-srf
 * client as the application: SIPp's built-in `uac` calls in (UDP and TCP), and the app
 * calls SIPp's built-in `uas` with createUAC. Skipped when `sipp` is not installed.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { harness, sleep, APP_SDP } from './sip-edge-helpers.ts';
import { requireTool } from '../helpers/require.ts';

const haveSipp = spawnSync('sipp', ['-v']).error === undefined;

/** Run SIPp to completion; resolves with its exit code and output. */
function sipp(args: string[], ms = 20000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

t.test('SIPp interop', { skip: requireTool(t, 'SIPp interop', !!haveSipp, 'sipp', 'sip-tester') }, async (t) => {
  for (const [i, transport] of (['udp', 'tcp'] as const).entries()) {
    t.test(`SIPp uac calls in over ${transport}, app answers with createUAS, SIPp hangs up`, async (t) => {
      let destroyed = 0;
      const h = await harness((srf) => {
        srf.invite(async (req: any, res: any) => {
          const d = await srf.createUAS(req, res, { localSdp: APP_SDP });
          d.on('destroy', () => destroyed++);
        });
      }, { routes: 1 });
      t.teardown(h.close);
      const r = await sipp([
        '-sn', 'uac', `127.0.0.1:${h.edge.sipPort}`, '-i', '127.0.0.1', '-p', String(15520 + i), '-cp', String(15540 + i),
        '-m', '1', '-d', '200', '-nostdin', '-timeout', '15s', '-timeout_error', ...(transport === 'tcp' ? ['-t', 't1'] : []),
      ]);
      t.equal(r.code, 0, `sipp uac succeeded${r.code === 0 ? '' : `: ${r.out.slice(-800)}`}`);
      await sleep(100);
      t.equal(destroyed, 1, 'app saw the BYE');
      t.equal(h.edge.dialogCount, 0);
    });
  }

  t.test('app calls SIPp uas with createUAC and hangs up', async (t) => {
    const h = await harness(() => undefined);
    t.teardown(h.close);
    const port = 15530;
    const run = sipp(['-sn', 'uas', '-i', '127.0.0.1', '-p', String(port), '-cp', '15545', '-m', '1', '-nostdin', '-timeout', '15s', '-timeout_error']);
    await sleep(300); // let SIPp bind
    const dialog = await h.srf.createUAC(`sip:1001@127.0.0.1:${port}`, { localSdp: APP_SDP });
    t.ok(dialog.remote.sdp, 'answer SDP received');
    await sleep(100);
    await dialog.destroy();
    const r = await run;
    t.equal(r.code, 0, `sipp uas succeeded${r.code === 0 ? '' : `: ${r.out.slice(-800)}`}`);
    t.equal(h.edge.dialogCount, 0);
  });
});
