"""SSH: connections to the hosts, commands with caps and timeouts, Ferry's known_hosts.

May import: settings, errors.
"""
