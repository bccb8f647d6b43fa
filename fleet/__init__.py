"""The fleet simulator: real SSH servers on loopback addresses, each with its own /srv.

Product code, not a test: `make demo` runs it, and so do the tests and the benchmarks.
`python -m fleet --hosts 20 --root DIR` runs one until SIGINT or SIGTERM.
fleet/openssh.py is the same with real OpenSSH servers (`python -m fleet.openssh`).
"""
