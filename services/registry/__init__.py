"""Registry: the hosts and projects users register, and the validators for their fields.

May import: git (URL and ref checks), ssh (key scans), releases.strategies (a project's
strategy is checked when saved), settings, store, errors.
"""
