"""A Python nost_tools 3.6.0 ManagedApplication for the interop suite.

Usage: python managed.py PREFIX CONFIG.yaml APP_NAME
Runs until its simulator has executed and terminated, then shuts down.
"""
import logging
import os
import sys
import time

from nost_tools.configuration import ConnectionConfig
from nost_tools.managed_application import ManagedApplication
from nost_tools.simulator import Mode

prefix, yaml_file, name = sys.argv[1:4]
logging.basicConfig(level=logging.WARNING)
config = ConnectionConfig(yaml_file=yaml_file, app_name=name)
app = ManagedApplication(name, setup_signal_handlers=False)
app.start_up(prefix, config)
print("STARTED", flush=True)
deadline = time.time() + float(os.environ.get("NOST_INTEROP_TIMEOUT", "120"))
executed = False
while time.time() < deadline:
    mode = app.simulator.get_mode()
    if mode == Mode.EXECUTING:
        executed = True
    if mode == Mode.TERMINATED and executed:
        break
    time.sleep(0.05)
else:
    print("TIMEOUT", flush=True)
    app.shut_down()
    sys.exit(3)
time.sleep(0.5)
app.shut_down()
print("TERMINATED", flush=True)
