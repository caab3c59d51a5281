// One moment across a tab's time charts: hovering a point of a chart marked `hover-sync`
// shows the same bucket's values on the tab's other `hover-sync` charts, as a dashboard's
// shared crosshair does. Dash loads this file from the assets folder.
(function () {
  var mirroring = false;

  function plots() {
    return Array.prototype.slice.call(document.querySelectorAll('.hover-sync .js-plotly-plot'));
  }

  function instant(x) {  // Plotly writes "2026-11-25 06:00", our figures "2026-11-25T06:00:00Z"
    var text = String(x).replace(' ', 'T');
    return Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(text) ? text : text + 'Z');
  }

  function pointsAt(gd, when) {
    var found = [];
    (gd.data || []).forEach(function (trace, curve) {
      if (trace.visible === false || !trace.x) { return; }
      for (var i = 0; i < trace.x.length; i++) {
        if (instant(trace.x[i]) === when) { found.push({curveNumber: curve, pointNumber: i}); break; }
      }
    });
    return found;
  }

  function mirror(source, action) {
    if (mirroring) { return; }
    mirroring = true;
    try {
      plots().forEach(function (gd) {
        if (gd !== source && gd._fullLayout) { try { action(gd); } catch (e) { /* a chart mid-redraw */ } }
      });
    } finally { mirroring = false; }
  }

  function bind(gd) {
    if (gd.__hoverSync === gd._ev || typeof gd.on !== 'function') { return; }
    gd.__hoverSync = gd._ev;  // bound to this set of listeners (Plotly.purge starts a new one)
    gd.on('plotly_hover', function (event) {
      if (!event || !event.points || !event.points.length) { return; }
      var when = instant(event.points[0].x);
      mirror(gd, function (other) {
        var points = pointsAt(other, when);
        if (points.length) { Plotly.Fx.hover(other, points); } else { Plotly.Fx.unhover(other); }
      });
    });
    gd.on('plotly_unhover', function () { mirror(gd, function (other) { Plotly.Fx.unhover(other); }); });
  }

  new MutationObserver(function () { plots().forEach(bind); })
    .observe(document.documentElement, {childList: true, subtree: true});
})();
