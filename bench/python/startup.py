"""Start-up for `cargo xtask bench`: a basic-mode nost_tools 3.6.0 Application
starts, sends status.ready and shuts down. The parent times the whole process
from spawn to the status.ready at its consumer.

Usage: python startup.py PREFIX CONFIG.yaml
"""
import logging
import sys

from nost_tools.application import Application
from nost_tools.configuration import ConnectionConfig

prefix, yaml_file = sys.argv[1], sys.argv[2]
logging.basicConfig(level=logging.WARNING)
config = ConnectionConfig(yaml_file=yaml_file, app_name="sat")
app = Application("sat", setup_signal_handlers=False)
app.start_up(prefix, config, set_offset=False)
app.ready()
app.shut_down()
