"""The rollup scheduler: one declarative job list, run by exactly one leader."""
