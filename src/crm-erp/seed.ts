/**
 * Schema and deterministic demo data of the built-in CRM/ERP: a plumbing/HVAC/industrial
 * distributor with three warehouses, eight customer accounts, ~40 SKUs, order history
 * with PO numbers, carriers and tracking numbers, reps with extensions and skills, and
 * business hours per tenant. No randomness: the only input is the seeding date, from
 * which order dates and ship dates are laid out in business days.
 */
import type Database from 'better-sqlite3';
import { addBusinessDays } from './time.ts';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reps (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, extension TEXT NOT NULL, skills TEXT NOT NULL, territory TEXT);
CREATE TABLE IF NOT EXISTS queues (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, extension TEXT NOT NULL, topics TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS warehouses (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL, handling_days INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, number TEXT NOT NULL UNIQUE, name TEXT NOT NULL, tier TEXT NOT NULL,
  phone TEXT, city TEXT, home_warehouse TEXT NOT NULL REFERENCES warehouses(id), rep_id TEXT REFERENCES reps(id),
  tenant TEXT NOT NULL DEFAULT 'default');
CREATE TABLE IF NOT EXISTS contacts (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL,
  phone TEXT NOT NULL, phone_digits TEXT NOT NULL, language TEXT NOT NULL, role TEXT);
CREATE INDEX IF NOT EXISTS contacts_phone ON contacts(phone_digits);
CREATE TABLE IF NOT EXISTS skus (
  sku TEXT PRIMARY KEY, sku_key TEXT NOT NULL, description TEXT NOT NULL, keywords TEXT NOT NULL,
  category TEXT NOT NULL, uom TEXT NOT NULL, price REAL NOT NULL, lead_time_days INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stock (
  sku TEXT NOT NULL REFERENCES skus(sku), warehouse TEXT NOT NULL REFERENCES warehouses(id),
  on_hand INTEGER NOT NULL, allocated INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (sku, warehouse));
CREATE TABLE IF NOT EXISTS orders (
  order_number TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, account_id TEXT NOT NULL REFERENCES accounts(id),
  po_number TEXT, po_key TEXT, po_digits TEXT, date TEXT NOT NULL, status TEXT NOT NULL,
  warehouse TEXT, carrier TEXT, tracking_number TEXT, ship_date TEXT, eta TEXT,
  total REAL NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT 'erp', idempotency_key TEXT UNIQUE,
  created_at TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS orders_po ON orders(po_key);
CREATE INDEX IF NOT EXISTS orders_account ON orders(account_id, date);
CREATE TABLE IF NOT EXISTS order_lines (
  order_number TEXT NOT NULL REFERENCES orders(order_number), line INTEGER NOT NULL,
  sku TEXT NOT NULL REFERENCES skus(sku), qty INTEGER NOT NULL, price REAL NOT NULL,
  PRIMARY KEY (order_number, line));
CREATE TABLE IF NOT EXISTS cases (
  case_number TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, account_id TEXT, caller_name TEXT NOT NULL,
  callback_number TEXT NOT NULL, reason TEXT NOT NULL, kind TEXT NOT NULL, transcript TEXT,
  idempotency_key TEXT UNIQUE, status TEXT NOT NULL DEFAULT 'open', created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS business_hours (
  tenant TEXT NOT NULL, weekday INTEGER NOT NULL, opens TEXT NOT NULL, closes TEXT NOT NULL,
  PRIMARY KEY (tenant, weekday));
CREATE TABLE IF NOT EXISTS tenant_settings (tenant TEXT PRIMARY KEY, timezone TEXT NOT NULL);
`;

/** Digits of a phone number in E.164 form without the `+`. */
export function e164Digits(phone: string): string {
  return phone.replace(/\D/g, '');
}

/** Canonical SKU key: upper-case letters and digits only (`hx 4410` → `HX4410`). */
export function skuKey(s: string): string {
  return s.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

/** PO key: upper-case alphanumerics without a leading `PO` (`P.O. 12345` → `12345`). */
export function poKey(s: string): string {
  return s.toUpperCase().replace(/[^A-Z0-9]/g, '').replace(/^PO(?=[A-Z0-9])/, '');
}

export const WAREHOUSES = [
  { id: 'WH-OAK', name: 'Oakland, California', timezone: 'America/Los_Angeles', handling_days: 1 },
  { id: 'WH-DAL', name: 'Dallas, Texas', timezone: 'America/Chicago', handling_days: 1 },
  { id: 'WH-EWR', name: 'Newark, New Jersey', timezone: 'America/New_York', handling_days: 1 },
] as const;

export const REPS = [
  { id: 'REP-01', name: 'Maria Chen', extension: '2101', skills: 'sales,key_accounts', territory: 'West' },
  { id: 'REP-02', name: 'James Okafor', extension: '2102', skills: 'sales,technical', territory: 'Central' },
  { id: 'REP-03', name: 'Priya Natarajan', extension: '2103', skills: 'sales,export', territory: 'East' },
  { id: 'REP-04', name: 'Tom Becker', extension: '2201', skills: 'billing,credit', territory: null },
  { id: 'REP-05', name: 'Luis Ortega', extension: '2301', skills: 'returns,warranty', territory: null },
  { id: 'REP-06', name: 'Grace Liu', extension: '2401', skills: 'technical,specification', territory: null },
] as const;

export const QUEUES = [
  { id: 'Q-CS', name: 'Customer Service', extension: '2000', topics: 'general,operator,other,help' },
  { id: 'Q-SALES', name: 'Inside Sales', extension: '2100', topics: 'sales,quote,pricing,order,orders,new account,purchase,buy' },
  { id: 'Q-AR', name: 'Accounts Receivable', extension: '2200', topics: 'billing,invoice,invoices,payment,pay,credit,statement,balance,accounts' },
  { id: 'Q-RET', name: 'Returns', extension: '2300', topics: 'returns,return,rma,damaged,damage,wrong item,warranty,refund' },
  { id: 'Q-TECH', name: 'Technical Support', extension: '2400', topics: 'technical,tech,support,specification,spec,specs,engineering,installation,install' },
] as const;

export const ACCOUNTS = [
  { id: 'ACC-10042', name: 'Acme Plumbing Supply', tier: 'gold', phone: '+14155550100', city: 'Oakland, CA', wh: 'WH-OAK', rep: 'REP-01' },
  { id: 'ACC-10057', name: 'Bayview Mechanical', tier: 'silver', phone: '+15105550170', city: 'San Leandro, CA', wh: 'WH-OAK', rep: 'REP-01' },
  { id: 'ACC-10113', name: 'Lone Star HVAC Services', tier: 'platinum', phone: '+12145550180', city: 'Dallas, TX', wh: 'WH-DAL', rep: 'REP-02' },
  { id: 'ACC-10208', name: 'Gulf Coast Fire Protection', tier: 'gold', phone: '+17135550120', city: 'Houston, TX', wh: 'WH-DAL', rep: 'REP-02' },
  { id: 'ACC-10315', name: 'Empire Building Services', tier: 'standard', phone: '+12125550160', city: 'New York, NY', wh: 'WH-EWR', rep: 'REP-03' },
  { id: 'ACC-10422', name: 'Garden State Pipe and Valve', tier: 'gold', phone: '+19735550130', city: 'Paterson, NJ', wh: 'WH-EWR', rep: 'REP-03' },
  { id: 'ACC-10509', name: 'Midwest Irrigation Co-op', tier: 'silver', phone: '+13125550150', city: 'Chicago, IL', wh: 'WH-DAL', rep: 'REP-02' },
  { id: 'ACC-10617', name: 'Thames Valley Fixings Ltd', tier: 'standard', phone: '+442079460120', city: 'Reading, UK', wh: 'WH-EWR', rep: 'REP-03' },
] as const;

export const CONTACTS = [
  { id: 'CON-2001', account: 'ACC-10042', name: 'Dana Reyes', phone: '+14155550142', language: 'en-US', role: 'purchasing manager' },
  { id: 'CON-2002', account: 'ACC-10042', name: 'Mike Tran', phone: '+14155550143', language: 'en-US', role: 'warehouse lead' },
  { id: 'CON-2003', account: 'ACC-10057', name: 'Sam Whitaker', phone: '+15105550177', language: 'en-US', role: 'owner' },
  { id: 'CON-2004', account: 'ACC-10113', name: 'Rosa Martinez', phone: '+12145550188', language: 'es-US', role: 'buyer' },
  { id: 'CON-2005', account: 'ACC-10113', name: 'Derek Hill', phone: '+12145550189', language: 'en-US', role: 'service manager' },
  { id: 'CON-2006', account: 'ACC-10208', name: 'Kevin Broussard', phone: '+17135550123', language: 'en-US', role: 'project manager' },
  { id: 'CON-2007', account: 'ACC-10315', name: 'Aisha Khan', phone: '+12125550161', language: 'en-US', role: 'facilities buyer' },
  { id: 'CON-2008', account: 'ACC-10422', name: 'Frank DeLuca', phone: '+19735550134', language: 'en-US', role: 'purchasing' },
  { id: 'CON-2009', account: 'ACC-10509', name: 'Hannah Olsen', phone: '+13125550156', language: 'en-US', role: 'operations' },
  { id: 'CON-2010', account: 'ACC-10617', name: 'Oliver Bennett', phone: '+442079460123', language: 'en-GB', role: 'buyer' },
] as const;

/** [sku, description, spoken keywords, category, uom, list price, replenishment lead time in business days] */
export const SKUS: ReadonlyArray<readonly [string, string, string, string, string, number, number]> = [
  ['HX-4410', '1/2 inch brass ball valve, full port, threaded', 'half inch ball valve brass', 'valves', 'EA', 12.85, 7],
  ['HX-4412', '1/2 inch brass ball valve, full port, sweat', 'half inch ball valve brass solder', 'valves', 'EA', 13.6, 7],
  ['HX-4420', '3/4 inch brass ball valve, full port, threaded', 'three quarter inch ball valve brass', 'valves', 'EA', 17.4, 7],
  ['HX-4430', '1 inch brass ball valve, full port, threaded', 'one inch ball valve brass', 'valves', 'EA', 26.9, 10],
  ['GV-2210', '1/2 inch bronze gate valve, threaded', 'half inch gate valve bronze', 'valves', 'EA', 21.75, 10],
  ['GV-2230', '1 inch bronze gate valve, threaded', 'one inch gate valve bronze', 'valves', 'EA', 38.2, 10],
  ['CV-3110', '1/2 inch brass swing check valve', 'half inch check valve brass', 'valves', 'EA', 15.3, 8],
  ['CV-3130', '1 inch brass swing check valve', 'one inch check valve brass', 'valves', 'EA', 29.95, 8],
  ['BV-6040', '4 inch cast iron butterfly valve, lug style', 'four inch butterfly valve lug', 'valves', 'EA', 189.0, 15],
  ['PRV-7720', '3/4 inch pressure reducing valve, lead free', 'three quarter inch pressure reducing valve regulator', 'valves', 'EA', 84.5, 12],
  ['CF-1050', '1/2 inch copper 90 degree elbow, bag of 25', 'half inch copper elbow ninety', 'fittings', 'BG', 18.75, 5],
  ['CF-1075', '3/4 inch copper 90 degree elbow, bag of 25', 'three quarter inch copper elbow ninety', 'fittings', 'BG', 29.4, 5],
  ['CF-2050', '1/2 inch copper tee, bag of 25', 'half inch copper tee', 'fittings', 'BG', 24.1, 5],
  ['CF-3050', '1/2 inch copper coupling, bag of 25', 'half inch copper coupling', 'fittings', 'BG', 11.9, 5],
  ['PF-4410', '1/2 inch PVC schedule 40 elbow, box of 50', 'half inch pvc elbow sch forty', 'fittings', 'BX', 9.8, 4],
  ['PF-4420', '3/4 inch PVC schedule 40 elbow, box of 50', 'three quarter inch pvc elbow sch forty', 'fittings', 'BX', 13.25, 4],
  ['PF-5020', '2 inch PVC schedule 40 tee', 'two inch pvc tee sch forty', 'fittings', 'EA', 3.45, 4],
  ['BA-8010', '1/2 inch brass hose barb adapter, male threaded', 'half inch hose barb brass adapter', 'fittings', 'EA', 2.15, 6],
  ['MF-9012', '1/2 inch black malleable iron 90 degree elbow', 'half inch black iron elbow ninety', 'fittings', 'EA', 1.95, 6],
  ['MF-9034', '3/4 inch black malleable iron tee', 'three quarter inch black iron tee', 'fittings', 'EA', 3.2, 6],
  ['PX-1210', '1/2 inch PEX crimp coupling, bag of 25', 'half inch pex coupling crimp', 'fittings', 'BG', 14.5, 5],
  ['PX-1250', '1/2 inch PEX copper crimp ring, bag of 100', 'half inch pex crimp ring rings', 'fittings', 'BG', 16.9, 5],
  ['CP-5010', '1/2 inch type L copper pipe, 10 foot length', 'half inch copper pipe tube ten foot', 'pipe', 'EA', 28.6, 6],
  ['CP-5075', '3/4 inch type L copper pipe, 10 foot length', 'three quarter inch copper pipe tube ten foot', 'pipe', 'EA', 44.8, 6],
  ['CP-5100', '1 inch type L copper pipe, 10 foot length', 'one inch copper pipe tube ten foot', 'pipe', 'EA', 68.25, 6],
  ['PP-2040', '2 inch PVC schedule 40 pipe, 20 foot length', 'two inch pvc pipe twenty foot sch forty', 'pipe', 'EA', 21.4, 5],
  ['PP-4040', '4 inch PVC schedule 40 pipe, 20 foot length', 'four inch pvc pipe twenty foot sch forty', 'pipe', 'EA', 52.7, 5],
  ['PX-3050', '1/2 inch PEX-A tubing, red, 100 foot coil', 'half inch pex tubing red hot coil', 'pipe', 'EA', 46.0, 6],
  ['PX-3051', '1/2 inch PEX-A tubing, blue, 100 foot coil', 'half inch pex tubing blue cold coil', 'pipe', 'EA', 46.0, 6],
  ['BP-6020', '2 inch black steel pipe, schedule 40, 21 foot length', 'two inch black steel pipe iron', 'pipe', 'EA', 96.4, 9],
  ['FS-1001', '3/8-16 x 1 inch hex bolt, grade 5, zinc, box of 100', 'three eighths hex bolt cap screw', 'fasteners', 'BX', 24.6, 4],
  ['FS-1002', '1/2-13 x 2 inch hex bolt, grade 5, zinc, box of 50', 'half inch hex bolt cap screw', 'fasteners', 'BX', 31.8, 4],
  ['FS-2001', '3/8-16 hex nut, zinc, box of 100', 'three eighths hex nut nuts', 'fasteners', 'BX', 7.9, 4],
  ['FS-3001', '3/8 inch flat washer, zinc, box of 100', 'three eighths flat washer washers', 'fasteners', 'BX', 5.4, 4],
  ['FS-4001', '3/8 x 3 inch wedge anchor, zinc, box of 50', 'three eighths wedge anchor concrete anchors', 'fasteners', 'BX', 38.5, 6],
  ['FS-5001', '#10 x 3/4 inch self drilling hex washer head screw, box of 500', 'number ten self drilling tek screw screws', 'fasteners', 'BX', 27.3, 4],
  ['HG-7001', '3/8 inch threaded rod, zinc, 10 foot length', 'three eighths all thread threaded rod', 'hangers', 'EA', 6.75, 5],
  ['HG-7101', '1/2 inch adjustable clevis hanger', 'half inch clevis hanger pipe hanger', 'hangers', 'EA', 3.1, 5],
  ['ST-1100', 'PTFE thread seal tape, 1/2 inch x 520 inch roll', 'teflon tape thread seal plumbers tape', 'supplies', 'EA', 0.95, 3],
  ['SD-2200', 'Lead free solder, 1 pound spool', 'solder lead free spool', 'supplies', 'EA', 32.4, 5],
  ['FX-3300', 'Water soluble soldering flux, 4 ounce', 'flux paste soldering', 'supplies', 'EA', 6.2, 5],
];

/** Stock overrides [sku, warehouse, on_hand] for the scenarios the tests rely on. */
const STOCK_OVERRIDES: ReadonlyArray<readonly [string, string, number]> = [
  ['HX-4410', 'WH-OAK', 240], ['HX-4410', 'WH-DAL', 120], ['HX-4410', 'WH-EWR', 60],
  ['HX-4430', 'WH-OAK', 0], ['HX-4430', 'WH-DAL', 35], ['HX-4430', 'WH-EWR', 0],
  ['BV-6040', 'WH-OAK', 0], ['BV-6040', 'WH-DAL', 0], ['BV-6040', 'WH-EWR', 0],
  ['CF-1050', 'WH-OAK', 80], ['PRV-7720', 'WH-OAK', 6], ['PRV-7720', 'WH-DAL', 2], ['PRV-7720', 'WH-EWR', 0],
];

/** Business hours per tenant: [tenant, timezone, [weekday, opens, closes][]] (weekday 0 = Sunday). */
export const BUSINESS_HOURS: ReadonlyArray<readonly [string, string, ReadonlyArray<readonly [number, string, string]>]> = [
  ['default', 'America/Chicago', [[1, '07:00', '18:00'], [2, '07:00', '18:00'], [3, '07:00', '18:00'], [4, '07:00', '18:00'], [5, '07:00', '18:00'], [6, '08:00', '12:00']]],
  ['northwind', 'America/Chicago', [[1, '07:00', '18:00'], [2, '07:00', '18:00'], [3, '07:00', '18:00'], [4, '07:00', '18:00'], [5, '07:00', '18:00'], [6, '08:00', '12:00']]],
  ['pacific', 'America/Los_Angeles', [[1, '06:00', '17:00'], [2, '06:00', '17:00'], [3, '06:00', '17:00'], [4, '06:00', '17:00'], [5, '06:00', '16:00']]],
];

interface SeedOrder {
  seq: number; account: string; po: string | null; dateOffset: number; status: string; wh: string;
  carrier?: string; tracking?: string; shipOffset?: number; etaOffset?: number; lines: ReadonlyArray<readonly [string, number]>;
}

/** Order history; offsets are business days relative to the seeding date. */
export const ORDERS: readonly SeedOrder[] = [
  { seq: 479850, account: 'ACC-10042', po: 'PO12001', dateOffset: -25, status: 'delivered', wh: 'WH-OAK', carrier: 'FedEx Ground', tracking: '794612345678', shipOffset: -24, etaOffset: -21, lines: [['HX-4410', 24], ['PX-3050', 6]] },
  { seq: 481200, account: 'ACC-10042', po: 'PO12345', dateOffset: -4, status: 'shipped', wh: 'WH-OAK', carrier: 'UPS Ground', tracking: '1Z999AA10123456784', shipOffset: -2, etaOffset: 1, lines: [['HX-4410', 24], ['CF-1050', 10], ['ST-1100', 50]] },
  { seq: 482310, account: 'ACC-10042', po: 'PO12388', dateOffset: -1, status: 'picking', wh: 'WH-OAK', shipOffset: 1, etaOffset: 3, lines: [['CP-5010', 20], ['SD-2200', 2]] },
  { seq: 481300, account: 'ACC-10057', po: 'PO40411', dateOffset: -9, status: 'delivered', wh: 'WH-OAK', carrier: 'UPS Ground', tracking: '1Z999AA10123459921', shipOffset: -8, etaOffset: -6, lines: [['CV-3110', 12], ['CF-2050', 4]] },
  { seq: 480775, account: 'ACC-10113', po: 'PO77410', dateOffset: -6, status: 'shipped', wh: 'WH-DAL', carrier: 'Estes Express', tracking: '2046613398', shipOffset: -3, etaOffset: 2, lines: [['BP-6020', 12], ['MF-9012', 100]] },
  { seq: 481990, account: 'ACC-10113', po: 'PO77452', dateOffset: -2, status: 'backordered', wh: 'WH-DAL', shipOffset: 13, etaOffset: 15, lines: [['BV-6040', 4]] },
  { seq: 481015, account: 'ACC-10208', po: 'PO55021', dateOffset: -12, status: 'delivered', wh: 'WH-DAL', carrier: 'UPS Ground', tracking: '1Z999AA10123457760', shipOffset: -11, etaOffset: -9, lines: [['GV-2230', 8], ['HG-7001', 40], ['HG-7101', 60]] },
  { seq: 481420, account: 'ACC-10315', po: 'EBS-2291', dateOffset: -5, status: 'shipped', wh: 'WH-EWR', carrier: 'FedEx Ground', tracking: '794698765432', shipOffset: -3, etaOffset: 0, lines: [['FS-1001', 10], ['FS-2001', 10], ['FS-3001', 10]] },
  { seq: 481777, account: 'ACC-10422', po: 'PO88120', dateOffset: -3, status: 'shipped', wh: 'WH-EWR', carrier: 'UPS Ground', tracking: '1Z999AA10123458873', shipOffset: -1, etaOffset: 1, lines: [['HX-4420', 30], ['CF-1075', 6]] },
  { seq: 481555, account: 'ACC-10509', po: 'PO66003', dateOffset: -1, status: 'booked', wh: 'WH-DAL', shipOffset: 1, etaOffset: 4, lines: [['PP-2040', 40], ['PF-5020', 25]] },
  { seq: 481600, account: 'ACC-10617', po: 'TVF-1009', dateOffset: -7, status: 'shipped', wh: 'WH-EWR', carrier: 'DHL Express', tracking: '1234567890', shipOffset: -5, etaOffset: 0, lines: [['FS-4001', 20], ['FS-5001', 4]] },
];

/** Discount off list price per account tier (fraction). */
export const TIER_DISCOUNT: Record<string, number> = { platinum: 0.12, gold: 0.08, silver: 0.04, standard: 0 };

/** First case sequence number: case numbers are `CS-` + seq. */
export const FIRST_CASE_SEQ = 700101;

/** Fill an empty database with the demo data; `today` (YYYY-MM-DD) anchors order dates. */
export function seedDatabase(db: Database.Database, today: string): void {
  db.transaction(() => {
    for (const w of WAREHOUSES) db.prepare('INSERT INTO warehouses VALUES (?,?,?,?)').run(w.id, w.name, w.timezone, w.handling_days);
    for (const r of REPS) db.prepare('INSERT INTO reps VALUES (?,?,?,?,?)').run(r.id, r.name, r.extension, r.skills, r.territory);
    for (const q of QUEUES) db.prepare('INSERT INTO queues VALUES (?,?,?,?)').run(q.id, q.name, q.extension, q.topics);
    for (const a of ACCOUNTS) {
      db.prepare('INSERT INTO accounts (id, number, name, tier, phone, city, home_warehouse, rep_id) VALUES (?,?,?,?,?,?,?,?)')
        .run(a.id, a.id, a.name, a.tier, a.phone, a.city, a.wh, a.rep);
    }
    for (const c of CONTACTS) {
      db.prepare('INSERT INTO contacts VALUES (?,?,?,?,?,?,?)').run(c.id, c.account, c.name, c.phone, e164Digits(c.phone), c.language, c.role);
    }
    const overrides = new Map(STOCK_OVERRIDES.map(([s, w, n]) => [`${s}|${w}`, n]));
    SKUS.forEach(([sku, desc, kw, cat, uom, price, lead], i) => {
      db.prepare('INSERT INTO skus VALUES (?,?,?,?,?,?,?,?)').run(sku, skuKey(sku), desc, kw, cat, uom, price, lead);
      WAREHOUSES.forEach((w, j) => {
        // deterministic spread of quantities, 20..419 (a few SKUs overridden above)
        const n = overrides.get(`${sku}|${w.id}`) ?? 20 + ((i * 37 + j * 53 + 11) % 400);
        db.prepare('INSERT INTO stock (sku, warehouse, on_hand) VALUES (?,?,?)').run(sku, w.id, n);
      });
    });
    const price = new Map(SKUS.map((s) => [s[0], s[5]]));
    const tier = new Map<string, string>(ACCOUNTS.map((a) => [a.id, a.tier]));
    for (const o of ORDERS) {
      const disc = TIER_DISCOUNT[tier.get(o.account)!] ?? 0;
      const lines = o.lines.map(([sku, qty]) => ({ sku, qty, price: round2(price.get(sku)! * (1 - disc)) }));
      const total = round2(lines.reduce((s, l) => s + l.qty * l.price, 0));
      const date = addBusinessDays(today, o.dateOffset);
      db.prepare(`INSERT INTO orders (order_number, seq, account_id, po_number, po_key, po_digits, date, status, warehouse, carrier,
        tracking_number, ship_date, eta, total, source, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`).run(
        `SO-${o.seq}`, o.seq, o.account, o.po, o.po ? poKey(o.po) : null, o.po ? o.po.replace(/\D/g, '') : null, date, o.status, o.wh,
        o.carrier ?? null, o.tracking ?? null, o.shipOffset !== undefined ? addBusinessDays(today, o.shipOffset) : null,
        o.etaOffset !== undefined ? addBusinessDays(today, o.etaOffset) : null, total, 'erp', `${date}T15:00:00Z`);
      lines.forEach((l, k) => db.prepare('INSERT INTO order_lines VALUES (?,?,?,?,?)').run(`SO-${o.seq}`, k + 1, l.sku, l.qty, l.price));
    }
    for (const [tenant, tz, days] of BUSINESS_HOURS) {
      db.prepare('INSERT INTO tenant_settings VALUES (?,?)').run(tenant, tz);
      for (const [wd, opens, closes] of days) db.prepare('INSERT INTO business_hours VALUES (?,?,?,?)').run(tenant, wd, opens, closes);
    }
    db.prepare("INSERT INTO meta VALUES ('seeded_on', ?)").run(today);
  })();
}

/** Round to cents. */
export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
