"""Development tools, apart from the services: local infrastructure, harness, demo, sim, bench, faults."""
