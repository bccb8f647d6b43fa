"""Releases: the engine — strategies, runs, each host's pipeline, records, locks, recovery,
retries and rollbacks planned (followups); reading releases (reads); and the read-only
views over what releases did: logs to download (logexport), a host's
history and the commits a release ships (history); and the gates before a release starts
(gates: approval, freeze windows, start times, with held.py, approval.py, freeze.py,
schedule.py).

Owns a release from its start to its final state. May import: build, git, ssh, registry,
events, team (for the user starting a release), settings, store, errors.
"""
