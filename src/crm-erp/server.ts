/**
 * The built-in CRM/ERP as an MCP server (@modelcontextprotocol/sdk McpServer). Every tool
 * returns its JSON result both as `structuredContent` and as one JSON text block; invalid
 * input comes back as an error result (`isError: true`, a sentence saying what is wrong).
 *
 * Transports: in-process ({@link createCrmErpServer} + InMemoryTransport, used by the tool
 * gateway), stdio and streamable HTTP at `/mcp` (see `cli.ts`: `voice-agent crm-erp-mcp`).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { CrmErpStore, CrmErpError, type CrmErpStoreOptions } from './store.ts';
import { logger } from '../ops/log.ts';

const log = logger('crm-erp');

/** Names of the tools the built-in server offers (the contract with src/tools and src/agent). */
export const CRM_ERP_TOOLS = [
  'identify_caller', 'find_sku', 'last_orders', 'check_atp', 'place_order',
  'order_status', 'create_case', 'business_hours', 'route_request', 'log_activity',
] as const;
export type CrmErpToolName = (typeof CRM_ERP_TOOLS)[number];

let shared: CrmErpStore | undefined;

/**
 * The process-wide CRM/ERP store the tool gateways use by default (opened on first use
 * from `CRM_DB` or in memory), so an order booked on one call is seen by the next.
 */
export function sharedCrmErpStore(): CrmErpStore {
  shared ??= new CrmErpStore();
  return shared;
}

/** Replace (tests: inject a store with a fixed clock) or clear the process-wide store. */
export function setSharedCrmErpStore(store: CrmErpStore | undefined): void {
  shared = store;
}

export interface CreateCrmErpServerOptions extends CrmErpStoreOptions {
  /** An existing store to serve (shared between servers/transports); otherwise one is opened from `db`/`now`. */
  store?: CrmErpStore;
}

function ok(data: object): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data as Record<string, unknown> };
}

function fail(message: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: message }], structuredContent: { error: message } };
}

/** Run a tool body; input errors become error results, anything else is logged and reported. */
function run(tool: string, fn: () => object): CallToolResult {
  try {
    return ok(fn());
  } catch (err) {
    if (err instanceof CrmErpError) return fail(err.message);
    log.error('tool crashed', { tool, err: err as Error });
    return fail(`${tool} failed: ${(err as Error).message}`);
  }
}

/**
 * A new McpServer exposing the CRM/ERP tools over `store` (or a store opened from
 * `opts.db` / `CRM_DB` / in-memory). Connect it to any transport; the store is exposed as
 * `server.store` for in-process inspection, and closed with the server when it was opened here.
 */
export function createCrmErpServer(opts: CreateCrmErpServerOptions = {}): McpServer & { store: CrmErpStore } {
  const store = opts.store ?? new CrmErpStore(opts);
  const server = new McpServer({ name: 'voice-agent-crm-erp', version: '0.1.0' }, { capabilities: { tools: {} } });

  server.registerTool('identify_caller', {
    description: 'Identify the caller from their phone number (E.164, national, or a SIP URI user part). Returns the account and contact when known.',
    inputSchema: { phone: z.string().min(1).describe('calling number, e.g. +14155550142') },
    annotations: { readOnlyHint: true },
  }, ({ phone }) => run('identify_caller', () => store.identifyCaller(phone)));

  server.registerTool('find_sku', {
    description: 'Find products by SKU code (e.g. "HX-4410", as spoken or typed) or by words ("half inch brass ball valve"). Prices are the account\'s when account_id is given.',
    inputSchema: { query: z.string().min(1), account_id: z.string().optional() },
    annotations: { readOnlyHint: true },
  }, ({ query, account_id }) => run('find_sku', () => store.findSku(query, account_id)));

  server.registerTool('last_orders', {
    description: 'The account\'s most recent orders with their lines, newest first ("same as last time").',
    inputSchema: { account_id: z.string().min(1), limit: z.number().int().min(1).max(20).optional() },
    annotations: { readOnlyHint: true },
  }, ({ account_id, limit }) => run('last_orders', () => store.lastOrders(account_id, limit ?? 3)));

  server.registerTool('check_atp', {
    description: 'Available-to-promise for a quantity of a SKU: which warehouse, how many are available, ship date (YYYY-MM-DD) and lead time in business days.',
    inputSchema: { sku: z.string().min(1), qty: z.coerce.number().describe('quantity in the SKU unit of measure'), account_id: z.string().optional() },
    annotations: { readOnlyHint: true },
  }, ({ sku, qty, account_id }) => run('check_atp', () => store.checkAtp(sku, qty, account_id)));

  server.registerTool('place_order', {
    description: 'Book a sales order for the account after the caller confirmed the read-back. The same idempotency_key always returns the same order (no duplicates).',
    inputSchema: {
      account_id: z.string().min(1),
      lines: z.array(z.object({ sku: z.string(), qty: z.coerce.number() })).min(1),
      po_number: z.string().optional(),
      idempotency_key: z.string().min(1),
    },
    annotations: { readOnlyHint: false, idempotentHint: true, destructiveHint: false },
  }, (args) => run('place_order', () => store.placeOrder(args)));

  server.registerTool('order_status', {
    description: 'Status of an order by PO number ("PO12345" or just the digits), order number, or the account\'s latest order: status, carrier, tracking number, ship date and ETA.',
    inputSchema: { po_number: z.string().optional(), order_number: z.string().optional(), account_id: z.string().optional() },
    annotations: { readOnlyHint: true },
  }, (args) => run('order_status', () => store.orderStatus(args)));

  server.registerTool('create_case', {
    description: 'Create a CRM case (after-hours message, callback request, handoff note). The same idempotency_key always returns the same case.',
    inputSchema: {
      account_id: z.string().optional(),
      caller_name: z.string().min(1),
      callback_number: z.string().min(1),
      reason: z.string().min(1),
      kind: z.enum(['after_hours_message', 'callback', 'handoff', 'general']),
      transcript: z.string().optional(),
      idempotency_key: z.string().min(1),
    },
    annotations: { readOnlyHint: false, idempotentHint: true, destructiveHint: false },
  }, (args) => run('create_case', () => store.createCase(args)));

  server.registerTool('business_hours', {
    description: 'Whether the business is open now (or at an ISO time), with the time zone, today\'s opening and closing times and the next opening.',
    inputSchema: { tenant: z.string().optional(), at: z.string().optional() },
    annotations: { readOnlyHint: true },
  }, ({ tenant, at }) => run('business_hours', () => store.businessHours(tenant, at)));

  server.registerTool('route_request', {
    description: 'Who should take a request: the rep or queue (with extension) for a topic such as billing, returns, technical, sales, or "my rep".',
    inputSchema: { topic: z.string().min(1), account_id: z.string().optional() },
    annotations: { readOnlyHint: true },
  }, ({ topic, account_id }) => run('route_request', () => store.routeRequest(topic, account_id)));

  server.registerTool('log_activity', {
    description: 'Record an activity on the account, e.g. a hand-off to a rep with the screen pop summary. The account may be given directly or through the contact; unknown ids are refused. The same idempotency_key always returns the same activity (no duplicates).',
    inputSchema: {
      account_id: z.string().optional().describe('account id or number, e.g. ACC-10042'),
      contact_id: z.string().optional().describe('contact id, e.g. CON-2001'),
      kind: z.string().min(1).describe('kind of activity, a lower-case word: handoff, transfer_failed, callback, note'),
      call_id: z.string().min(1).describe('the call this activity belongs to'),
      summary: z.string().min(1).describe('what the rep needs to know (the screen pop summary)'),
      reason: z.string().optional().describe('why, e.g. "caller asked for a human"'),
      transcript: z.string().optional(),
      target: z.string().optional().describe('who it went to, e.g. "Maria Chen x2101"'),
      idempotency_key: z.string().optional(),
    },
    annotations: { readOnlyHint: false, idempotentHint: true, destructiveHint: false },
  }, (args) => run('log_activity', () => store.logActivity(args)));

  const owned = !opts.store;
  const close = server.close.bind(server);
  server.close = async () => {
    await close();
    if (owned) store.close();
  };
  return Object.assign(server, { store });
}
