// The login page: focuses the right field, and signs in with a per-rep login link
// (`/login#rep=<id>&token=<secret>`): the secret stays in the fragment, which browsers
// never send to a server, and is removed from the address bar before the form is posted.
(function () {
  'use strict';
  var form = document.getElementById('login-form');
  var rep = document.getElementById('rep');
  var pw = document.getElementById('password');
  var token = document.getElementById('token');
  var notice = document.getElementById('login-notice');
  if (!notice.textContent) notice.hidden = true;
  var frag = new URLSearchParams(location.hash.replace(/^#/, ''));
  if (frag.get('token')) {
    history.replaceState(null, '', location.pathname + location.search);
    rep.value = frag.get('rep') || '';
    token.value = frag.get('token');
    pw.value = '';
    notice.textContent = 'Logging in with your link\u2026';
    notice.hidden = false;
    form.submit();
    return;
  }
  (rep.value ? pw : rep).focus();
})();
