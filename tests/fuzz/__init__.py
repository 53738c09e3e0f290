"""Fuzzing the coordinator's decision path: hypothesis strategies (run by the unit suite) and a
coverage-guided atheris target (``make fuzz``); see docs/edges.md."""
