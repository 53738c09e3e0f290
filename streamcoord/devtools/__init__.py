"""Developer tools: things that help run streamcoord on one machine (a local Kafka broker).

Nothing in the coordinator depends on this package; the CLI and the test suite use it.
"""
