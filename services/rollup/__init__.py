"""Rollups: deltas folded into minute, hour and day tables, rebuilds, the data version, retention."""
