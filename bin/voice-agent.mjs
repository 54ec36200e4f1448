#!/usr/bin/env node
// voice-agent command-line launcher: runs the TypeScript sources through tsx.
//   voice-agent serve [--config file.yaml]   start the SIP voice agent (default command)
//   voice-agent crm-erp-mcp [--stdio | --http [--port N]]   the built-in CRM/ERP as a standalone MCP server
//   voice-agent call [--say TEXT | --wav FILE | --dtmf DIGITS]... [--port N] [--out FILE]   dial the agent as a test caller
//   voice-agent cdr list [--tenant ID] [--since D] [--until D] [--outcome O] [--caller N] [--csv | --json]   call detail records
//   voice-agent cdr show <call-id>           one call with its transcript
//   voice-agent recordings purge [--config file.yaml]   delete call recordings past their tenant's retention
//   voice-agent console-hash [--link --rep ID [--url BASE]]   a rep console password hash (password on stdin) or login link
//   voice-agent impair --target HOST:PORT [--profile P] [--seed N]   QA: SIP-aware UDP relay that impairs RTP (loss, jitter, delay, duplication)
//   voice-agent loadtest --target HOST:PORT [--ops-url URL] [--profile status|reorder|silent] [--cps N] [--concurrency N] [--calls N]   QA: SIPp load with real audio, report
//   voice-agent drachtio-router --node URI,OPS_URL [--node ...] [--listen HOST:PORT]   request handler of one drachtio-server in front of several nodes
//   voice-agent help                         list commands
import { register } from 'tsx/esm/api';

const COMMANDS = {
  serve: { module: '../src/main.ts', run: (m, args) => m.main(args), help: 'start the SIP voice agent [--config file.yaml]' },
  call: { module: '../src/cli/call.ts', run: async (m, args) => process.exit(await m.main(args)), help: 'dial the agent as a test caller [--port N] [--say TEXT | --wav FILE | --dtmf DIGITS]... [--out FILE] (--help)' },
  cdr: { module: '../src/cdr/cli.ts', run: async (m, args) => process.exit(await m.main(args)), help: 'call detail records: list [--tenant ID] [--since D] [--until D] [--outcome O] [--caller N] [--csv | --json] | show <call-id> (--help)' },
  recordings: { module: '../src/consent/cli.ts', run: async (m, args) => process.exit(await m.main(args)), help: 'call recordings: purge [--config FILE] — delete recordings past their tenant\'s retentionDays' },
  'console-hash': { module: '../src/escalation/console/hash-cli.ts', run: async (m, args) => process.exit(await m.main(args)), help: 'rep console credentials: a passwordHash for the password on stdin, or --link --rep ID [--url BASE] (--help)' },
  impair: { module: '../src/qa/impair-cli.ts', run: async (m, args) => process.exit(await m.main(args)), help: 'QA: impairment relay in front of a server --target HOST:PORT [--listen HOST:PORT] [--profile clean|loss1|loss3|loss5|burst2|jitter30|jitter60|delay150|dup2] [--seed N] (--help)' },
  loadtest: { module: '../src/qa/loadtest.ts', run: async (m, args) => process.exit(await m.main(args)), help: 'QA: SIPp callers with real audio against a server, report (text, JSON, HTML) --target HOST:PORT [--ops-url URL] [--profile status|reorder|silent] [--cps N] [--concurrency N] [--calls N] [--duration MS] (--help)' },
  'drachtio-router': { module: '../src/sip/drachtio-router-cli.ts', run: async (m, args) => process.exit(await m.main(args)), help: 'request handler drachtio-server asks which node takes a new call (outbound connections) --node URI,OPS_URL [--node ...] [--listen HOST:PORT] [--policy least-calls|round-robin] [--probe-ms N] (--help)' },
  'crm-erp-mcp': { module: '../src/crm-erp/cli.ts', run: (m, args) => m.main(args), help: 'built-in CRM/ERP MCP server [--stdio | --http [--port N] [--host H]] [--db FILE]' },
};

const argv = process.argv.slice(2);
// `voice-agent --config x.yaml` means `voice-agent serve --config x.yaml`
const [cmd = 'serve', ...args] = argv.length > 0 && argv[0].startsWith('-') && !['--help', '-h'].includes(argv[0]) ? ['serve', ...argv] : argv;
if (cmd === 'help' || cmd === '--help' || cmd === '-h') {
  process.stdout.write('usage: voice-agent <command> [options]\n\ncommands:\n');
  for (const [name, c] of Object.entries(COMMANDS)) process.stdout.write(`  ${name.padEnd(12)} ${c.help}\n`);
  process.exit(0);
}
const command = COMMANDS[cmd];
if (!command) {
  process.stderr.write(`voice-agent: unknown command "${cmd}" (try: voice-agent help)\n`);
  process.exit(2);
}
register();
const mod = await import(new URL(command.module, import.meta.url).href);
await command.run(mod, args);
