// When the portal's session expires, callbacks answer 401: say so above the page instead of
// leaving the charts silently stale. Dash loads this file from the assets folder.
(function () {
  var original = window.fetch;
  if (!original) { return; }

  function show(loginUrl) {
    if (document.getElementById('session-expired')) { return; }
    var bar = document.createElement('div');
    bar.id = 'session-expired';
    bar.className = 'alert alert-warning m-0 rounded-0 text-center';
    bar.setAttribute('role', 'alert');
    bar.appendChild(document.createTextNode('Your session has expired — '));
    var link = document.createElement('a');
    link.href = loginUrl + '?next=' + encodeURIComponent(window.location.pathname + window.location.search);
    link.textContent = 'log in again';
    bar.appendChild(link);
    bar.appendChild(document.createTextNode('. The charts below stopped updating.'));
    document.body.insertBefore(bar, document.body.firstChild);
  }

  window.fetch = function (resource, init) {
    return original.apply(this, arguments).then(function (response) {
      var url = typeof resource === 'string' ? resource : (resource && resource.url) || '';
      if (response.status === 401 && url.indexOf('_dash-update-component') !== -1) {
        response.clone().json().then(function (body) { show((body && body.login) || '/login'); },
                                      function () { show('/login'); });
      }
      return response;
    });
  };
}());
