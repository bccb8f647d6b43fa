"""Hostile-input suite: one attack per test, each named after what it attacks."""
