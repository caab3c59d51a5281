"""Questions asked of the rollups: the metric catalogue and saved metrics, time ranges, the planner and its execution."""
