"""Component ids, defined once so layouts, callbacks and browser tests agree."""

# shell
URL = "url"
TABS = "tabs"
TAB_CONTENT = "tab-content"
RANGE = "range"
CUSTOM_RANGE = "custom-range"
CUSTOM_RANGE_WRAPPER = "custom-range-wrapper"
CHANNELS = "channels"
STATUS_ALERT = "status-alert"
STATUS_POLL = "status-poll"
REFRESH = "refresh"
REFRESH_CHOICE = "refresh-choice"
DATA_AS_OF = "data-as-of"

# overview
KPI_ROW = "kpi-row"
METRIC_PICKER = "metric-picker"
TIMESERIES = "timeseries"
CHANNEL_BAR = "channel-bar"
STATUS_BAR = "status-bar"
HEATMAP = "heatmap"
OVERVIEW_ALERT = "overview-alert"

# trends
TREND_METRIC = "trend-metric"
TREND_DETECTOR = "trend-detector"
TREND_HEADLINE = "trend-headline"
TREND_CHART = "trend-chart"
TREND_HOURS = "trend-hours"
TREND_WEEKDAYS = "trend-weekdays"
TREND_ALERT = "trend-alert"
TREND_ANOMALIES = "trend-anomalies"

# compare
COMPARE_METRIC = "compare-metric"
COMPARE_TO = "compare-to"
COMPARE_SUMMARY = "compare-summary"
COMPARE_CARDS = "compare-cards"
COMPARE_CHART = "compare-chart"
COMPARE_PERIOD = "compare-period"
COMPARE_TEMPLATES = "compare-templates"
COMPARE_ALERT = "compare-alert"

# correlations
CORR_METRICS = "corr-metrics"
CORR_LAG = "corr-lag"
CORR_DETREND = "corr-detrend"
CORR_MATRIX = "corr-matrix"
CORR_PAIR = "corr-pair"
CORR_OVERLAY = "corr-overlay"
CORR_SCATTER = "corr-scatter"
CORR_LAGS = "corr-lags"
CORR_SENTENCE = "corr-sentence"
CORR_ALERT = "corr-alert"
CORR_REPORT = "corr-report"

# metrics
FORMULA_NAME = "formula-name"
FORMULA_DISPLAY = "formula-display"
FORMULA_TEXT = "formula-text"
FORMULA_UNIT = "formula-unit"
FORMULA_DESCRIPTION = "formula-description"
FORMULA_FEEDBACK = "formula-feedback"
FORMULA_PREVIEW = "formula-preview"
FORMULA_SAVE = "formula-save"
FORMULA_MESSAGE = "formula-message"
SAVED_METRICS = "saved-metrics"
METRICS_VERSION = "metrics-version"

# drill-down
BREADCRUMB = "breadcrumb"
DRILL_CHART = "drill-chart"
DRILL_CHART_WRAPPER = "drill-chart-wrapper"
DRILL_ALERT = "drill-alert"
DRILL_TITLE = "drill-title"
EVENTS_WRAPPER = "events-wrapper"
EVENTS_HOLDER = "events-holder"
EVENTS_COUNT = "events-count"


def events_grid(key: str) -> dict:
    """The events grid is rebuilt for each selection, so its id carries the selection."""
    return {"type": "events-grid", "key": key}


def events_cursors(key: str) -> dict:
    return {"type": "events-cursors", "key": key}
EVENTS_CSV = "events-csv"
