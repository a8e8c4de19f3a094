"""A Python nost_tools 3.6.0 Manager for the interop suite.

Usage: python manager.py PREFIX CONFIG.yaml
Executes the test plan of execution.manager and exits when it terminated.
"""
import logging
import os
import sys
import time

from nost_tools.configuration import ConnectionConfig
from nost_tools.manager import Manager
from nost_tools.simulator import Mode

prefix, yaml_file = sys.argv[1:3]
logging.basicConfig(level=logging.WARNING)
config = ConnectionConfig(yaml_file=yaml_file)
manager = Manager(setup_signal_handlers=False)
manager.start_up(prefix, config)
print("STARTED", flush=True)
manager.execute_test_plan()
deadline = time.time() + float(os.environ.get("NOST_INTEROP_TIMEOUT", "120"))
executed = False
while time.time() < deadline:
    mode = manager.simulator.get_mode()
    if mode == Mode.EXECUTING:
        executed = True
    if mode == Mode.TERMINATED and executed:
        break
    time.sleep(0.05)
else:
    print("TIMEOUT", flush=True)
    manager.shut_down()
    sys.exit(3)
time.sleep(0.5)
manager.shut_down()
print("TERMINATED", flush=True)
