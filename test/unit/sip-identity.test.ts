/**
 * Caller identity and dialed number as carriers send them (src/sip/identity.ts): PAI → RPID →
 * From with trust by source address, Privacy, tel:/user=phone/%-escaped numbers to E.164,
 * Request-URI → To, History-Info / Diversion, and the tenant lookup order.
 */
import t from 'tap';
import {
  readCallIdentity, TrunkMatcher, parseUri, parseNameAddr, splitHeaderList, normalizeUriNumber, type IdentityRequest,
} from '../../src/sip/identity.ts';
import type { TrunkSettings } from '../../src/config.ts';

function req(uri: string, headers: Record<string, string>, source = '127.0.0.1'): IdentityRequest {
  const h = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { uri, source_address: source, get: (name: string) => h.get(name.toLowerCase()) };
}
const num = (uri: string, country: 'US' | 'GB' = 'US') => normalizeUriNumber(parseUri(uri)!, country);

const CARRIER: TrunkSettings = { name: 'carrier', sources: ['203.0.113.0/24', '2001:db8:5::/48'], trustIdentity: true, country: 'US' };
const UK_PBX: TrunkSettings = { name: 'uk-pbx', sources: ['198.51.100.7/32'], trustIdentity: true, country: 'GB' };
const SIPPHONES: TrunkSettings = { name: 'phones', sources: ['192.0.2.0/24'], trustIdentity: false, country: 'US' };

t.test('header and URI parsing', async (t) => {
  t.same(splitHeaderList('"Doe, John" <sip:+1@a>;tag=1, <tel:+2>'), ['"Doe, John" <sip:+1@a>;tag=1', '<tel:+2>']);
  t.same(splitHeaderList('<sip:a@b;x=1,2>'), ['<sip:a@b;x=1,2>'], 'comma inside <> is not a separator');
  t.same(parseNameAddr('"Acme \\"HQ\\"" <sip:+14155550100@carrier.example;user=phone>;party=calling;privacy=full'), {
    display: 'Acme "HQ"', uri: 'sip:+14155550100@carrier.example;user=phone', params: { party: 'calling', privacy: 'full' },
  });
  t.same(parseNameAddr('Bob <sip:bob@b>'), { display: 'Bob', uri: 'sip:bob@b', params: {} });
  t.same(parseNameAddr('sip:+1415@b;tag=x'), { uri: 'sip:+1415@b', params: { tag: 'x' } }, 'addr-spec: params belong to the header');
  const u = parseUri('sip:%2B1-415-555-0100;npdi;rn=+14155550000@10.0.0.1:5060;user=phone;transport=udp')!;
  t.equal(u.user, '+1-415-555-0100');
  t.same(u.userParams, { npdi: '', rn: '+14155550000' });
  t.same(u.params, { user: 'phone', transport: 'udp' });
  t.equal(u.host, '10.0.0.1:5060');
  const tel = parseUri('tel:5550100;phone-context=+1-415')!;
  t.same([tel.scheme, tel.user, tel.userParams['phone-context']], ['tel', '5550100', '+1-415']);
  t.equal(parseUri('mailto:x@y'), null);
  t.equal(parseUri('sip:alice:secret@host')!.user, 'alice', 'password dropped');
  t.equal(parseUri('sip:%ZZ12@h')!.user, '%ZZ12', 'a malformed escape stays as it is');
});

t.test('numbers to E.164', async (t) => {
  t.equal(num('tel:+1-415-555-0100').e164, '+14155550100');
  t.equal(num('tel:5550100;phone-context=+1-415').e164, '+14155550100', 'global phone-context prefixed');
  t.equal(num('tel:4155550100;phone-context=example.com').e164, '+14155550100', 'domain context: national per country');
  t.equal(num('sip:4155550100@carrier;user=phone').e164, '+14155550100', 'national (US)');
  t.equal(num('sip:%2B18005550100@carrier').e164, '+18005550100', '%-escaped +');
  t.equal(num('sip:18005550100@carrier').e164, '+18005550100');
  t.equal(num('sip:011442079460000@carrier').e164, '+442079460000', 'US international prefix');
  t.equal(num('sip:02079460000@pbx', 'GB').e164, '+442079460000', 'national (GB)');
  t.equal(num('sip:+1%20(415)%20555-0100@x').e164, '+14155550100', 'escaped visual separators');
  const ext = num('sip:100@pbx');
  t.equal(ext.e164, undefined, 'an extension is no telephone number');
  t.equal(ext.value, '100');
  t.equal(num('sip:alice@pbx').value, 'alice');
});

t.test('trunk matching and trust', async (t) => {
  const none = new TrunkMatcher([]);
  t.same(none.match('127.0.0.1'), { trusted: true, country: 'US' }, 'no trunks: loopback trusted');
  t.same(none.match('::1'), { trusted: true, country: 'US' });
  t.same(none.match('::ffff:127.0.0.1'), { trusted: true, country: 'US' }, 'IPv4-mapped loopback');
  t.same(none.match('198.51.100.7'), { trusted: false, country: 'US' });
  t.same(none.match(undefined), { trusted: false, country: 'US' });
  t.same(none.match('not-an-ip'), { trusted: false, country: 'US' });

  const m = new TrunkMatcher([CARRIER, UK_PBX, SIPPHONES], 'DE');
  t.equal(m.match('203.0.113.77').trunk?.name, 'carrier');
  t.equal(m.match('2001:db8:5:1::9').trunk?.name, 'carrier', 'IPv6 CIDR');
  t.equal(m.match('[2001:db8:5::1]').trunk?.name, 'carrier', 'bracketed IPv6');
  t.same(m.match('198.51.100.7'), { trunk: UK_PBX, trusted: true, country: 'GB' });
  t.same(m.match('192.0.2.10'), { trunk: SIPPHONES, trusted: false, country: 'US' }, 'trustIdentity: false');
  t.same(m.match('127.0.0.1'), { trusted: false, country: 'DE' }, 'with trunks configured loopback is not implicitly trusted');
});

t.test('ANI: PAI, then RPID, then From — PAI/RPID only from trusted sources', async (t) => {
  const trunks = new TrunkMatcher([CARRIER, SIPPHONES]);
  const headers = {
    From: '"Front desk" <sip:200@pbx.example>;tag=a',
    To: '<sip:+18005550100@us.example>',
    'P-Asserted-Identity': '<sip:+14155550101@carrier.example;user=phone>, <tel:+14155550101>',
    'Remote-Party-ID': '<sip:+15105550170@carrier.example>;party=calling;screen=yes',
  };
  let id = readCallIdentity(req('sip:+18005550100@us.example', headers, '203.0.113.5'), trunks);
  t.same([id.ani, id.aniSource, id.presentation, id.privacy, id.trunk, id.trusted], ['+14155550101', 'pai', '+14155550101', false, 'carrier', true]);

  const noPai = { ...headers } as Record<string, string>;
  delete noPai['P-Asserted-Identity'];
  id = readCallIdentity(req('sip:+18005550100@us.example', noPai, '203.0.113.5'), trunks);
  t.same([id.ani, id.aniSource], ['+15105550170', 'rpid']);

  id = readCallIdentity(req('sip:+18005550100@us.example', headers, '192.0.2.44'), trunks);
  t.same([id.ani, id.aniSource, id.trusted], ['200', 'from', false], 'untrusted trunk: From');
  t.same(id.ignored, ['P-Asserted-Identity', 'Remote-Party-ID']);

  id = readCallIdentity(req('sip:+18005550100@us.example', headers, '198.51.100.99'), trunks);
  t.same([id.ani, id.aniSource, id.trunk], ['200', 'from', undefined], 'unknown source: From, identity headers ignored');

  const rpidCalled = { From: '<sip:anonymous@anonymous.invalid>', 'Remote-Party-ID': '<sip:+18005550100@x>;party=called, <sip:4155550100@x>;party=calling;privacy=full' };
  id = readCallIdentity(req('sip:18005550100@x', rpidCalled, '203.0.113.5'), trunks);
  t.same([id.ani, id.aniSource, id.privacy, id.presentation], ['+14155550100', 'rpid', true, 'anonymous'], 'party=calling entry, privacy=full');
});

t.test('From as tel: URI, user=phone, %-escaped, national', async (t) => {
  const trunks = new TrunkMatcher([]);
  const ani = (from: string, source = '127.0.0.1') => readCallIdentity(req('sip:18005550100@h', { From: from }, source), trunks).ani;
  t.equal(ani('<tel:+14155550101>;tag=x'), '+14155550101');
  t.equal(ani('"Acme" <tel:+1-415-555-0101>;tag=x'), '+14155550101');
  t.equal(ani('<sip:4155550101@carrier;user=phone>;tag=x'), '+14155550101');
  t.equal(ani('<sip:%2B14155550101@carrier>;tag=x'), '+14155550101');
  t.equal(ani('sip:+14155550101@carrier;tag=x'), '+14155550101', 'addr-spec form');
  t.equal(ani('<sip:caller@127.0.0.1:5070>;tag=x'), 'caller', 'a name stays a name');
});

t.test('Privacy: withheld from people, kept for the lookup', async (t) => {
  const trunks = new TrunkMatcher([CARRIER]);
  const h = {
    From: '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
    'P-Asserted-Identity': '<tel:+14155550101>',
    Privacy: 'id',
  };
  let id = readCallIdentity(req('sip:+18005550100@h', h, '203.0.113.5'), trunks);
  t.same([id.ani, id.presentation, id.privacy], ['+14155550101', 'anonymous', true]);

  id = readCallIdentity(req('sip:+18005550100@h', { From: '<sip:+14155550101@h>', Privacy: 'none' }, '203.0.113.5'), trunks);
  t.same([id.presentation, id.privacy], ['+14155550101', false], 'Privacy: none');
  id = readCallIdentity(req('sip:+18005550100@h', { From: '<sip:+14155550101@h>', Privacy: 'header;id' }, '203.0.113.5'), trunks);
  t.equal(id.presentation, 'anonymous');
  id = readCallIdentity(req('sip:+18005550100@h', { From: '<sip:restricted@h>' }, '203.0.113.5'), trunks);
  t.same([id.ani, id.presentation, id.privacy], ['', 'anonymous', true], 'anonymous From, no PAI: nothing to look up');
  id = readCallIdentity(req('sip:+18005550100@h', h, '198.51.100.1'), trunks);
  t.same([id.ani, id.presentation], ['', 'anonymous'], 'untrusted PAI is not used even for the lookup');
});

t.test('DNIS: Request-URI, then To; tel: and escaped Request-URIs; forwarded calls', async (t) => {
  const trunks = new TrunkMatcher([CARRIER, UK_PBX]);
  let id = readCallIdentity(req('tel:+1-800-555-0100', { From: '<sip:1@h>', To: '<tel:+18005550100>' }), trunks);
  t.same([id.dnis, id.dnisSource], ['+18005550100', 'request-uri']);
  t.same(id.tenantCandidates, ['+18005550100']);

  id = readCallIdentity(req('sip:%2B18005550100@h;user=phone', { To: '<sip:x@h>' }), trunks);
  t.equal(id.dnis, '+18005550100');

  id = readCallIdentity(req('sip:h', { To: '<sip:8005550100@h>' }), trunks);
  t.same([id.dnis, id.dnisSource], ['+18005550100', 'to'], 'no user in the Request-URI: To');
  t.same(id.tenantCandidates, ['+18005550100', '8005550100'], 'E.164 first, then the digits as sent');

  id = readCallIdentity(req('sip:02079460000@h', { To: '<sip:02079460000@h>' }, '198.51.100.7'), trunks);
  t.equal(id.dnis, '+442079460000', 'the trunk\'s country for national forms');

  // History-Info (RFC 7044): first entry is the original called number
  id = readCallIdentity(req('sip:+18005550199@h', {
    To: '<sip:+18005550100@h>',
    'History-Info': '<sip:+18005550100@h?Reason=SIP%3Bcause%3D302>;index=1, <sip:+18005550199@h;cause=302>;index=1.1',
    Diversion: '<sip:+18005550111@h>;reason=unconditional',
  }), trunks);
  t.same([id.dnis, id.originalCalled, id.originalCalledSource], ['+18005550199', '+18005550100', 'history-info']);
  t.same(id.tenantCandidates, ['+18005550199', '+18005550100'], 'delivered number first, then the original');

  // Diversion (RFC 5806): the last entry is the original called number
  id = readCallIdentity(req('sip:+18005550199@h', {
    Diversion: '<sip:+18005550150@h>;reason=no-answer;counter=1, <tel:8005550100>;reason=unconditional;counter=1',
  }), trunks);
  t.same([id.originalCalled, id.originalCalledSource], ['+18005550100', 'diversion']);

  id = readCallIdentity(req('sip:+18005550100@h', { 'History-Info': '<sip:+18005550100@h>;index=1' }), trunks);
  t.equal(id.originalCalled, undefined, 'not forwarded: no original called number');
});
