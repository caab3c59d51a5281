// The Overview time chart's anomaly and incident marks (callbacks.overview): worked out on the
// server after the chart is drawn, then drawn onto it here, as a patch of its layout. Marks of
// a view the chart no longer shows are left out: that view's chart draws its own.
// Dash loads this file from the assets folder.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  analytics: Object.assign({}, (window.dash_clientside || {}).analytics, {
    drawMarks: function (fresh, drawn) {
      var clientside = window.dash_clientside;
      if (!fresh || !fresh.marks || !drawn || fresh.search !== drawn.search) {
        return clientside.no_update;
      }
      return new clientside.Patch()
        .assign(['layout', 'shapes'], fresh.marks.shapes)
        .assign(['layout', 'annotations'], fresh.marks.annotations)
        .build();
    },
  }),
});
