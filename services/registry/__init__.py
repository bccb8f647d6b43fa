"""Registry: the hosts and projects users register, the validators for their fields, and
the masking of their secrets with field-level changes for the audit log (redact.py).

May import: git (URL and ref checks), ssh (key scans), releases.strategies (a project's
strategy is checked when saved), settings, store, errors.
"""
