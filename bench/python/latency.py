"""Paced publisher for `cargo xtask bench` latency: nost_tools 3.6.0.

Usage: python latency.py PREFIX CONFIG.yaml COUNT RATE   (body in NOST_BENCH_BODY)
Prints `ready` once connected, sends message i at start + i / RATE with the
wallclock of the send call (µs since the epoch, 16 characters) before the
body, and on a line on stdin prints `cpu USER_S SYS_S` since `ready`.
"""
import logging
import os
import resource
import sys
import time

from nost_tools.application import Application
from nost_tools.configuration import ConnectionConfig

prefix, yaml_file, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
body = os.environ["NOST_BENCH_BODY"]
logging.basicConfig(level=logging.WARNING)
config = ConnectionConfig(yaml_file=yaml_file, app_name="sat")
app = Application("sat", setup_signal_handlers=False)
app.start_up(prefix, config, set_offset=False)


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


u0, s0 = cpu()
print("ready", flush=True)
start = time.monotonic()
for i in range(count):
    wait = start + i / rate - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    app.send_message("sat", "status.time", f"{time.time_ns() // 1000:>16}|{body}")
sys.stdin.readline()
u1, s1 = cpu()
print(f"cpu {u1 - u0:.6f} {s1 - s0:.6f}", flush=True)
app.shut_down()
