"""Analyses built on the query engine: trends, comparisons, correlations, drill-down, investigations."""
