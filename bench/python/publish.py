"""Publisher for `cargo xtask bench`: nost_tools 3.6.0 send_message in a loop.

Usage: python publish.py PREFIX CONFIG.yaml COUNT   (body in NOST_BENCH_BODY)
Prints `ready` once connected, publishes COUNT messages, and on a line on
stdin prints `cpu USER_S SYS_S` (getrusage of this process since `ready`).
"""
import logging
import os
import resource
import sys

from nost_tools.application import Application
from nost_tools.configuration import ConnectionConfig

prefix, yaml_file, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
for _ in range(count):
    app.send_message("sat", "status.time", body)
sys.stdin.readline()
u1, s1 = cpu()
print(f"cpu {u1 - u0:.6f} {s1 - s0:.6f}", flush=True)
app.shut_down()
