"""Time limits of the tests' waits: safety nets against a hang, never a speed check.

Sized for a busy 2-core machine: the suite must pass beside two busy processes
(scripts/test_under_load.sh), where a command that takes a minute on an idle machine can take
several. A test that hits one of these has hung, not merely run slowly.
"""
COMMAND_SECONDS = 900   # a whole command in a subprocess, start to exit
EVENT_SECONDS = 300     # one awaited event: a first output file, a job's stop after a signal
