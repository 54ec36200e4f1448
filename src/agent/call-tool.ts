/**
 * One tool call through the gateway, as both agents make it: a filler line when the call is
 * slow (no dead air), a `tool` action for the record, never a throw.
 */
import type { AgentAction, CallContext, ToolResult } from './types.ts';

/** Per-turn filler bookkeeping so a turn says at most one filler. */
export interface FillerState {
  said: boolean;
  /**
   * When the caller's turn started (ms). The filler is due `fillerAfterMs` after this, over the
   * whole turn: several quick model rounds and tool calls add up to dead air just as one slow one
   * does. Without it the wait starts at each call.
   */
  since?: number;
}

/** How long to wait before a filler: what is left of `fillerAfterMs` since the turn started. */
export function fillerWaitMs(filler: FillerState, fillerAfterMs: number, now = Date.now()): number {
  return filler.since === undefined ? fillerAfterMs : Math.max(0, filler.since + fillerAfterMs - now);
}

export interface CallToolOptions {
  /** say a filler when the tool has not answered after this many ms. @defaultValue 700 */
  fillerAfterMs: number;
  /** the filler line. @defaultValue 'Let me check that for you.' */
  fillerText: string;
  filler: FillerState;
}

/** Default filler delay in ms. @defaultValue 700 */
export const DEFAULT_FILLER_AFTER_MS = 700;
/** Default filler line. @defaultValue 'Let me check that for you.' */
export const DEFAULT_FILLER_TEXT = 'Let me check that for you.';

/** Run a tool; yields `filler` (maybe) then `tool`; returns the result. */
export async function* callTool(
  ctx: CallContext,
  name: string,
  args: Record<string, unknown>,
  opts: CallToolOptions,
): AsyncGenerator<AgentAction, ToolResult> {
  const t0 = Date.now();
  const p: Promise<ToolResult> = ctx.tools
    .call(name, args, {
      tenantId: ctx.tenant.id, callId: ctx.callId,
      ...(ctx.tenant.toolTimeoutMs ? { timeoutMs: ctx.tenant.toolTimeoutMs } : {}),
      ...(ctx.privacy && ctx.ani ? { redact: [ctx.ani] } : {}),
    })
    .catch((err: unknown): ToolResult => ({ ok: false, error: (err as Error)?.message ?? String(err), code: 'failed', ms: Date.now() - t0 }));
  if (!opts.filler.said && opts.fillerAfterMs >= 0) {
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((resolve) => { timer = setTimeout(() => resolve('slow'), fillerWaitMs(opts.filler, opts.fillerAfterMs)); });
    const first = await Promise.race([p, slow]);
    clearTimeout(timer);
    if (first === 'slow') {
      opts.filler.said = true;
      yield { type: 'filler', text: opts.fillerText };
    }
  }
  const result = await p;
  yield { type: 'tool', name, args, result };
  return result;
}
