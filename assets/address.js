// The address bar shows the view's canonical address (callbacks.shell: the ADDRESS store),
// replacing the one the page was opened with in place: no new history entry, so Back leaves
// the dashboard instead of landing on the same view. Dash loads this file from the assets folder.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  analytics: Object.assign({}, (window.dash_clientside || {}).analytics, {
    showAddress: function (address) {
      if (typeof address === 'string' && address !== window.location.search) {
        window.history.replaceState(window.history.state, '', window.location.pathname + address + window.location.hash);
      }
    },
  }),
});
