// Keeps the status badge of a server-rendered screen-pop page current. Opened with a
// screen-pop link (`?t=`), the stream is authorised by the same link and ends with it.
(function () {
  'use strict';
  var pane = document.getElementById('pop');
  if (!pane || typeof EventSource === 'undefined') return;
  var id = pane.getAttribute('data-id');
  var conn = document.getElementById('conn');
  var t = new URLSearchParams(location.search).get('t');
  var es = new EventSource('/events?pop=' + encodeURIComponent(id) + (t ? '&t=' + encodeURIComponent(t) : ''));
  function onData(ev) {
    var p;
    try { p = JSON.parse(ev.data); } catch (e) { return; }
    if (!p || p.id !== id) return;
    var s = document.getElementById('pop-status');
    s.textContent = p.status; s.className = 'badge ' + p.status; s.setAttribute('data-status', p.status);
    document.getElementById('pop-status-reason').textContent = p.statusReason || '';
  }
  es.addEventListener('open', function () { conn.textContent = 'live'; conn.className = 'live'; });
  es.addEventListener('pop', onData);
  es.addEventListener('update', onData);
  es.addEventListener('error', function () {
    if (es.readyState === EventSource.CLOSED) { conn.textContent = 'updates stopped (log in to follow this call)'; conn.className = ''; }
    else { conn.textContent = 'reconnecting\u2026'; conn.className = ''; }
  });
})();
