"""A constellation for `cargo xtask bench`: N basic-mode nost_tools 3.6.0
Applications in one process, started one after another, each sends
status.ready; then each sends a status.time per second for SECS seconds.

Usage: python constellation.py PREFIX CONFIG.yaml N SECS   (body in NOST_BENCH_BODY)
Prints `ready STARTUP_S N RSS_KIB THREADS`, waits for a line on stdin, then
`done USER_S SYS_S RSS_KIB THREADS SENT` (getrusage since the line).
"""
import logging
import os
import resource
import sys
import time

from nost_tools.application import Application
from nost_tools.configuration import ConnectionConfig

prefix, yaml_file, n, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = os.environ["NOST_BENCH_BODY"]
logging.basicConfig(level=logging.WARNING)


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


t0 = time.monotonic()
apps = []
for i in range(n):
    name = f"sat{i}"
    config = ConnectionConfig(yaml_file=yaml_file, app_name=name)
    app = Application(name, setup_signal_handlers=False)
    app.start_up(prefix, config, set_offset=False)
    app.ready()
    apps.append(app)
startup = time.monotonic() - t0
print(f"ready {startup:.6f} {len(apps)} {status('VmRSS:')} {status('Threads:')}", flush=True)
sys.stdin.readline()
u0, s0 = cpu()
sent = 0
due = time.monotonic()
for _ in range(secs):
    for i, app in enumerate(apps):
        app.send_message(f"sat{i}", "status.time", body)
        sent += 1
    due += 1.0
    time.sleep(max(0.0, due - time.monotonic()))
u1, s1 = cpu()
print(
    f"done {u1 - u0:.6f} {s1 - s0:.6f} {status('VmRSS:')} {status('Threads:')} {sent}",
    flush=True,
)
for app in apps:
    app.shut_down()
