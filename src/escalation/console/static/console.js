// The rep console's browser code: plain ES2017, DOM built with textContent only.
(function () {
  'use strict';
  var pops = new Map();      // id -> pop
  var selected = null;       // id shown in the detail pane
  var es = null;
  var retryTimer = null;
  var ext = '';
  var listEl = document.getElementById('pops');
  var emptyEl = document.getElementById('pops-empty');
  var paneEl = document.getElementById('pop');
  var connEl = document.getElementById('conn');
  var input = document.getElementById('ext');

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] != null) n.setAttribute(k, attrs[k]);
    if (text != null) n.textContent = String(text);
    return n;
  }
  function txt(s) { return document.createTextNode(s == null ? '' : String(s)); }
  function fmtTime(ms) {
    var d = new Date(ms);
    return isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }
  function fmtValue(v) {
    if (v == null) return '';
    if (typeof v === 'string') return v;
    try { return typeof v === 'object' ? JSON.stringify(v) : String(v); } catch (e) { return String(v); }
  }
  function sorted() {
    return Array.from(pops.values()).sort(function (a, b) { return (b.createdAt || 0) - (a.createdAt || 0); });
  }
  function badge(status, id) {
    var b = el('span', { 'class': 'badge ' + status, 'data-status': status }, status);
    if (id) b.id = id;
    return b;
  }

  function renderList() {
    var all = sorted();
    listEl.textContent = '';
    emptyEl.hidden = all.length > 0;
    all.forEach(function (p) {
      var li = el('li', { 'data-id': p.id, 'class': p.id === selected ? 'selected' : null });
      var top = el('div');
      top.appendChild(badge(p.status));
      top.appendChild(txt(' '));
      top.appendChild(el('span', { 'class': 'who' }, (p.caller && (p.caller.name || p.caller.phone)) || 'Unknown caller'));
      li.appendChild(top);
      li.appendChild(el('div', { 'class': 'line' }, p.reason));
      li.appendChild(el('div', { 'class': 'meta' },
        fmtTime(p.createdAt) + (p.account ? ' · ' + p.account.name : '') + ' · ' + p.trigger));
      li.addEventListener('click', function () { selected = p.id; renderList(); renderDetail(); });
      listEl.appendChild(li);
    });
  }

  function renderDetail() {
    var p = selected != null ? pops.get(selected) : null;
    paneEl.textContent = '';
    if (!p) {
      paneEl.removeAttribute('data-id');
      paneEl.appendChild(el('p', { 'class': 'empty' }, 'No screen pop selected.'));
      return;
    }
    paneEl.setAttribute('data-id', p.id);
    var caller = p.caller || {};
    var h2 = el('h2', { id: 'pop-caller' });
    h2.appendChild(el('span', { 'class': 'name' }, caller.name || 'Unknown caller'));
    h2.appendChild(txt(' '));
    h2.appendChild(el('span', { 'class': 'phone sub' }, caller.phone || ''));
    paneEl.appendChild(h2);

    var st = el('div');
    st.appendChild(badge(p.status, 'pop-status'));
    st.appendChild(el('span', { id: 'pop-status-reason', 'class': 'status-reason' }, p.statusReason || ''));
    paneEl.appendChild(st);
    paneEl.appendChild(el('p', { id: 'pop-reason' }, p.reason));
    if (p.recording) {
      paneEl.appendChild(el('p', { id: 'pop-recording', 'class': p.recording.recorded ? 'recorded' : 'not-recorded' },
        (p.recording.recorded ? 'This call is RECORDED' : 'This call is not recorded') +
        ' · ' + p.recording.posture + ' · ' + p.recording.jurisdiction + ' · consent ' + p.recording.consent));
    }

    var dl = el('dl', { id: 'pop-meta' });
    function row(label, value, id) { dl.appendChild(el('dt', null, label)); dl.appendChild(el('dd', { id: id }, value)); }
    var t = p.target || {};
    row('Trigger', p.trigger, 'pop-trigger');
    row('Target', (t.name || '') + ' (' + (t.kind || 'rep') + ' ' + (t.extension || '') + ')', 'pop-target');
    row('Tenant', p.tenantName, 'pop-tenant');
    row('Language', caller.language || '');
    row('Received', fmtTime(p.createdAt), 'pop-time');
    paneEl.appendChild(dl);

    paneEl.appendChild(el('h3', null, 'Account'));
    var acct = el('div', { id: 'pop-account' });
    if (p.account) {
      acct.appendChild(el('span', { 'class': 'name' }, p.account.name));
      if (p.account.number) { acct.appendChild(txt(' ')); acct.appendChild(el('span', { 'class': 'number sub' }, '#' + p.account.number)); }
      if (p.account.tier) { acct.appendChild(txt(' ')); acct.appendChild(el('span', { 'class': 'tier badge' }, p.account.tier)); }
    } else acct.appendChild(el('span', { 'class': 'sub' }, 'no account matched'));
    paneEl.appendChild(acct);

    paneEl.appendChild(el('h3', null, 'Transcript'));
    var ol = el('ol', { id: 'pop-transcript' });
    (p.transcript || []).forEach(function (l) {
      var li = el('li', { 'class': l.role === 'agent' ? 'agent' : 'caller' });
      li.appendChild(el('span', { 'class': 'role' }, l.role));
      li.appendChild(txt(' '));
      li.appendChild(el('span', { 'class': 'text' }, l.text));
      if (l.at) li.appendChild(el('span', { 'class': 'at' }, fmtTime(l.at)));
      ol.appendChild(li);
    });
    paneEl.appendChild(ol);

    paneEl.appendChild(el('h3', null, 'Order context'));
    var od = el('div', { id: 'pop-order' });
    var o = p.order || {};
    var any = false;
    if (o.pending && o.pending.lines && o.pending.lines.length) {
      any = true;
      var pend = el('div', { id: 'pop-order-pending' });
      pend.appendChild(el('strong', null, 'Pending order'));
      if (o.pending.po_number) { pend.appendChild(txt(' ')); pend.appendChild(el('span', { 'class': 'sub' }, 'PO ' + o.pending.po_number)); }
      var tb = el('tbody');
      o.pending.lines.forEach(function (l) {
        var tr = el('tr');
        tr.appendChild(el('td', null, l.sku));
        tr.appendChild(el('td', null, '\u00d7 ' + l.qty));
        tr.appendChild(el('td', null, l.description || ''));
        tb.appendChild(tr);
      });
      var table = el('table'); table.appendChild(tb); pend.appendChild(table);
      od.appendChild(pend);
    }
    if (o.placed && o.placed.length) {
      any = true;
      var pl = el('div', { id: 'pop-order-placed' });
      pl.appendChild(el('strong', null, 'Placed on this call'));
      var ul = el('ul');
      o.placed.forEach(function (x) {
        var li = el('li', null, x.order_number);
        if (x.ship_date) { li.appendChild(txt(' ')); li.appendChild(el('span', { 'class': 'sub' }, 'ships ' + x.ship_date)); }
        ul.appendChild(li);
      });
      pl.appendChild(ul);
      od.appendChild(pl);
    }
    if (o.status && typeof o.status === 'object' && Object.keys(o.status).length) {
      any = true;
      var sd = el('div', { id: 'pop-order-status' });
      sd.appendChild(el('strong', null, 'Last order status'));
      var sdl = el('dl');
      Object.keys(o.status).forEach(function (k) {
        sdl.appendChild(el('dt', null, k));
        sdl.appendChild(el('dd', null, fmtValue(o.status[k])));
      });
      sd.appendChild(sdl);
      od.appendChild(sd);
    }
    if (!any) od.appendChild(el('span', { 'class': 'sub' }, 'none'));
    paneEl.appendChild(od);
  }

  function parse(ev) {
    try { var p = JSON.parse(ev.data); return p && typeof p.id === 'string' ? p : null; } catch (e) { return null; }
  }
  function onPop(ev) {
    var p = parse(ev);
    if (!p) return;
    var known = pops.has(p.id);
    pops.set(p.id, p);
    // a new pop that is the newest for this extension opens in the detail pane
    if (!known) {
      var newest = sorted()[0];
      if (newest && newest.id === p.id) selected = p.id;
    }
    if (selected == null) selected = p.id;
    renderList();
    if (selected === p.id) renderDetail();
  }
  function drop(id) {
    pops.delete(id);
    if (selected === id) { var n = sorted()[0]; selected = n ? n.id : null; renderDetail(); }
    renderList();
  }
  function onUpdate(ev) {
    var p = parse(ev);
    if (!p) return;
    if (ext && p.target && p.target.extension !== ext) return drop(p.id);   // handed to another extension

    if (!pops.has(p.id)) return onPop(ev);
    pops.set(p.id, p);
    renderList();
    if (selected === p.id) renderDetail();
  }

  function setConn(text, live) {
    connEl.textContent = text;
    connEl.className = live ? 'live' : '';
  }
  function onRemove(ev) {   // the pop left what this rep may see: forget it
    var p = parse(ev);
    if (p) drop(p.id);
  }
  // a closed stream after the session ended (logout elsewhere, expiry): back to the login page
  function checkSession() {
    fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
      else retryTimer = setTimeout(connect, 3000);
    }, function () { retryTimer = setTimeout(connect, 3000); });
  }
  function connect() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    if (es) { es.close(); es = null; }
    setConn('connecting\u2026', false);
    es = new EventSource('/events' + (ext ? '?ext=' + encodeURIComponent(ext) : ''));
    es.addEventListener('open', function () { setConn('live \u00b7 ' + (ext ? 'ext ' + ext : 'all my extensions'), true); });
    es.addEventListener('pop', onPop);
    es.addEventListener('update', onUpdate);
    es.addEventListener('remove', onRemove);
    es.addEventListener('error', function () {
      // the browser reconnects by itself unless the stream is CLOSED (e.g. 401)
      setConn('reconnecting\u2026', false);
      if (es && es.readyState === EventSource.CLOSED) { es.close(); es = null; checkSession(); }
    });
  }
  function watch(next) {
    ext = (next || '').trim();
    pops.clear();
    selected = null;
    renderList();
    renderDetail();
    var mine = (document.body.getAttribute('data-exts') || '').split(' ');
    emptyEl.textContent = !ext ? 'No screen pops yet.'
      : mine.indexOf('*') < 0 && mine.indexOf(ext) < 0 ? 'Extension ' + ext + ' is not one of yours (' + mine.join(', ') + ').'
      : 'No screen pops yet for this extension.';
    document.title = ext ? 'Rep console \u00b7 ' + ext : 'Rep console';
    connect();
  }

  document.getElementById('ext-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = input.value.trim();
    var u = new URL(location.href);
    if (v) u.searchParams.set('ext', v); else u.searchParams.delete('ext');
    history.replaceState(null, '', u.pathname + u.search);
    watch(v);
  });
  watch(new URLSearchParams(location.search).get('ext') || input.value || '');
})();
