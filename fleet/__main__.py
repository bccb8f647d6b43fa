"""`python -m fleet`: run a simulated fleet until SIGINT or SIGTERM."""

from fleet.simulator import main

main()
