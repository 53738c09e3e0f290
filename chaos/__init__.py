"""The chaos suite: coordinators killed, the broker restarted, members joining and leaving and
network faults between coordinators and the broker, under a steady load; then exactly-once checks.

``python -m chaos [--quick] [--seed N]`` (``make chaos``); see docs/chaos.md.
"""
