"""Component ids, defined once so layouts, callbacks and browser tests agree."""

# shell
URL = "url"
TAB_NAV = "tab-nav"
TAB_CONTENT = "tab-content"
RANGE = "range"
RANGE_FROM = "range-from"
RANGE_TO = "range-to"
CHANNELS = "channels"
STATUS_ALERT = "status-alert"
STATUS_POLL = "status-poll"
REFRESH = "refresh"
REFRESH_CHOICE = "refresh-choice"
DATA_AS_OF = "data-as-of"
FIRING_BADGE = "firing-badge"
RENDERED_TAB = "rendered-tab"  # what the tab's content was built from (callbacks.shell.content_key)
ADDRESS = "address"  # the view's address in canonical form, which the address bar is set to
PAGE = "page"
THEME_DARK = "theme-dark"
DENSITY_COMPACT = "density-compact"
FIND_INPUT = "find-input"
FIND_BUTTON = "find-button"
FIND_MESSAGE = "find-message"
ALERTS_VERSION = "alerts-version"  # bumped by every rule save or delete: the table and the badge follow

# overview
KPI_ROW = "kpi-row"
METRIC_PICKER = "metric-picker"
TIMESERIES = "timeseries"
TIMESERIES_DRAWN = "timeseries-drawn"    # what the time chart shows: view, first and last point, step
TIMESERIES_MARKS = "timeseries-marks"    # its anomaly and incident marks, for the next draw of that view
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
TREND_ALERT_ME = "trend-alert-me"

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
METRIC_CONFIRM_DELETE = "metric-confirm-delete"
METRIC_PENDING_DELETE = "metric-pending-delete"

# alerts
ALERTS_MESSAGE = "alerts-message"
ALERT_RULES = "alert-rules"
ALERT_HISTORY = "alert-history"
ALERT_FORM_TITLE = "alert-form-title"
ALERT_DRAFT_NOTE = "alert-draft-note"
ALERT_EDITING = "alert-editing"
ALERT_NAME = "alert-name"
ALERT_METRIC = "alert-metric"
ALERT_CHANNEL = "alert-channel"
ALERT_GRANULARITY = "alert-granularity"
ALERT_CONDITION = "alert-condition"
ALERT_ANOMALY_FIELDS = "alert-anomaly-fields"
ALERT_THRESHOLD_FIELDS = "alert-threshold-fields"
ALERT_FOR_FIELDS = "alert-for-fields"
ALERT_SEVERITY = "alert-severity"
ALERT_DIRECTION = "alert-direction"
ALERT_THRESHOLD = "alert-threshold"
ALERT_THRESHOLD_UNIT = "alert-threshold-unit"
ALERT_FOR_BUCKETS = "alert-for-buckets"
ALERT_MIN_VOLUME = "alert-min-volume"
ALERT_WEBHOOK = "alert-webhook"
ALERT_NOTIFY = "alert-notify"
ALERT_SILENCE_UNTIL = "alert-silence-until"
ALERT_ENABLED = "alert-enabled"
ALERT_SAVE = "alert-save"
ALERT_NEW = "alert-new"
ALERT_FORM_MESSAGE = "alert-form-message"
ALERT_PREVIEW = "alert-preview"
ALERT_PREVIEW_RESULT = "alert-preview-result"
ALERT_ERROR_FIELD = "alert-error-field"
ALERT_CONFIRM_DELETE = "alert-confirm-delete"
ALERT_PENDING_DELETE = "alert-pending-delete"


def tab_link(tab: str) -> dict:
    """A tab's link in the tab bar (ALL for every tab)."""
    return {"type": "tab-link", "tab": tab}


def alert_select(rule_id: int | str) -> dict:
    """A rule's name in the table: picks it, to show its history."""
    return {"type": "alert-select", "id": rule_id}


def alert_edit(rule_id: int | str) -> dict:
    return {"type": "alert-edit", "id": rule_id}


def alert_delete(rule_id: int | str) -> dict:
    return {"type": "alert-delete", "id": rule_id}


# investigate
INVESTIGATE_ALERT = "investigate-alert"
INVESTIGATE_BODY = "investigate-body"
INVESTIGATE_TIMELINE = "investigate-timeline"
LIFECYCLE_TABLE = "lifecycle-table"
USER_COUNTS = "user-counts"
USER_COMPARISON = "user-comparison"
USER_NOTIFICATIONS = "user-notifications"

# drill-down
BREADCRUMB = "breadcrumb"
DRILL_CHART = "drill-chart"
DRILL_METRIC = "drill-metric"
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
