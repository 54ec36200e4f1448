// Keeps the status badge of a server-rendered screen-pop page current.
(function () {
  'use strict';
  var pane = document.getElementById('pop');
  if (!pane || typeof EventSource === 'undefined') return;
  var id = pane.getAttribute('data-id');
  var es = new EventSource('/events?ext=' + encodeURIComponent(pane.getAttribute('data-ext') || ''));
  function onData(ev) {
    var p;
    try { p = JSON.parse(ev.data); } catch (e) { return; }
    if (!p || p.id !== id) return;
    var s = document.getElementById('pop-status');
    s.textContent = p.status; s.className = 'badge ' + p.status; s.setAttribute('data-status', p.status);
    document.getElementById('pop-status-reason').textContent = p.statusReason || '';
  }
  es.addEventListener('pop', onData);
  es.addEventListener('update', onData);
})();
