/**
 * Built-in CRM/ERP: SQLite demo data of a B2B distributor served as MCP tools.
 * In-process: `createCrmErpServer()` + InMemoryTransport; standalone: `voice-agent crm-erp-mcp`.
 */
export { createCrmErpServer, sharedCrmErpStore, setSharedCrmErpStore, CRM_ERP_TOOLS, type CrmErpToolName, type CreateCrmErpServerOptions } from './server.ts';
export { CrmErpStore, CrmErpError, phoneCandidates, type CrmErpStoreOptions, type AccountRef, type ContactRef } from './store.ts';
export { runStdio, runHttp, type CrmErpHttpServer, DEFAULT_HTTP_PORT, DEFAULT_HTTP_HOST } from './cli.ts';
export { ACCOUNTS, CONTACTS, SKUS, ORDERS, REPS, QUEUES, WAREHOUSES, BUSINESS_HOURS } from './seed.ts';
