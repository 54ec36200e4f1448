/**
 * The agent's clock for a new call: `VOICE_AGENT_NOW` (an ISO 8601 instant, for demos and
 * tests of the after-hours lane) when set, else the real time.
 * @throws Error when `VOICE_AGENT_NOW` is set but not a valid date
 */
export function agentNow(env: NodeJS.ProcessEnv = process.env): Date {
  const v = env.VOICE_AGENT_NOW;
  if (!v) return new Date();
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new Error(`VOICE_AGENT_NOW must be an ISO 8601 time, got "${v}"`);
  return d;
}
