"""Releases: the engine — strategies, runs, each host's pipeline, records, locks, recovery.

Owns a release from its start to its final state. May import: build, git, ssh, registry,
events, team (for the user starting a release), settings, store, errors.
"""
