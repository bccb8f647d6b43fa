"""Team: users, password hashing, sessions, API tokens and roles.

May import: settings, store, errors.
"""
