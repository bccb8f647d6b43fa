"""Events: ordered, resumable topics — the bus, topic logs, live fan-out and chunked storage.

Owns the event bus every other package publishes through and every transport reads from.
May import: services.settings, services.store, services.errors. Never imports releases,
git, ssh or registry: they depend on it, not the other way round.
"""
