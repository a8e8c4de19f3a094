"""FireSat's ground stations as a Python nost_tools 3.6.0 ManagedApplication.

Usage: python ground.py PREFIX FIRESAT.yaml GROUNDS.csv
Publishes every station on PREFIX.ground.location (GroundLocation JSON, the
fields of nost_tools' FireSat example) when its simulator starts executing,
and shuts down once it has executed and terminated.
"""
import csv
import json
import logging
import os
import sys
import time

from nost_tools.configuration import ConnectionConfig
from nost_tools.managed_application import ManagedApplication
from nost_tools.observer import Observer
from nost_tools.simulator import Mode

prefix, yaml_file, grounds_csv = sys.argv[1:4]
logging.basicConfig(level=logging.WARNING)

with open(grounds_csv) as f:
    stations = [
        {
            "groundId": int(r["groundId"]),
            "latitude": float(r["latitude"]),
            "longitude": float(r["longitude"]),
            "elevAngle": float(r["elevAngle"]),
            "operational": r["operational"].strip().lower() == "true",
        }
        for r in csv.DictReader(f)
    ]


class Announcer(Observer):
    def __init__(self, app):
        self.app = app

    def on_change(self, source, property_name, old_value, new_value):
        if property_name == "mode" and new_value == Mode.EXECUTING and old_value == Mode.INITIALIZED:
            for s in stations:
                self.app.send_message(self.app.app_name, "location", json.dumps(s))


config = ConnectionConfig(yaml_file=yaml_file, app_name="ground")
app = ManagedApplication("ground", setup_signal_handlers=False)
app.simulator.add_observer(Announcer(app))
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
