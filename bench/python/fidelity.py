"""Managed applications for `cargo xtask bench` fidelity: nost_tools 3.6.0.

Usage: python fidelity.py PREFIX CONFIG.yaml N
Starts N ManagedApplications sat0..satN-1 in this process, prints `ready`,
waits until every simulator executed and terminated (a Manager elsewhere
runs the scenario), prints `done` and shuts them down.
"""
import logging
import sys
import time

from nost_tools.configuration import ConnectionConfig
from nost_tools.managed_application import ManagedApplication
from nost_tools.simulator import Mode

prefix, yaml_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
logging.basicConfig(level=logging.WARNING)
apps = []
for i in range(n):
    name = f"sat{i}"
    app = ManagedApplication(name, setup_signal_handlers=False)
    app.start_up(prefix, ConnectionConfig(yaml_file=yaml_file, app_name=name))
    apps.append(app)
print("ready", flush=True)
deadline = time.time() + 120
executed = set()
while time.time() < deadline:
    for i, app in enumerate(apps):
        if app.simulator.get_mode() == Mode.EXECUTING:
            executed.add(i)
    if len(executed) == n and all(a.simulator.get_mode() == Mode.TERMINATED for a in apps):
        break
    time.sleep(0.05)
print("done", flush=True)
time.sleep(0.5)
for app in apps:
    app.shut_down()
