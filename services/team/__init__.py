"""Team: users, password hashing, sessions, API tokens, global roles (auth.py), who may do
what on which project (access.py), sign-in throttling (throttle.py) and the audit log.

May import: settings, store, errors, registry.validation.
"""
