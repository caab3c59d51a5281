// A chart redraws only when its box changed size. dcc.Graph asks Plotly to fit each chart to
// its box after the chart's first draw and on every notice of its resize observer (a new
// observer always gives one), and Plotly redraws the whole chart each time, at the size it
// already has: three draws per chart on a page load instead of one. A chart whose box is the
// size it is drawn at is left as it is; any other goes to Plotly's own resize. Dash loads this
// file from the assets folder, after Plotly.
(function () {
  var Plotly = window.Plotly;
  if (!Plotly || !Plotly.Plots || !Plotly.Plots.resize) { return; }
  var resize = Plotly.Plots.resize;

  function fits(gd) {
    var full = gd && gd._fullLayout;
    if (!full || !gd.layout || !gd.isConnected) { return false; }
    var box = window.getComputedStyle(gd);
    var width = parseFloat(box.width), height = parseFloat(box.height);
    return Math.abs(width - full.width) <= 1 && Math.abs(height - full.height) <= 1;  // Plotly's own tolerance
  }

  Plotly.Plots.resize = function (gd) {
    var element = typeof gd === 'string' ? document.getElementById(gd) : gd;
    return fits(element) ? Promise.resolve(element) : resize.apply(this, arguments);
  };
}());
