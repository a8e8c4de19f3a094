"""A Python nost_tools 3.6.0 LoggerApplication for the logger interop test.

Usage: python logger.py PREFIX CONFIG.yaml LOG_DIR
Logs PREFIX.*.# (log_app "*": its default "+" receives nothing in AMQP)
until a line arrives on stdin, then shuts down and prints DONE.
"""
import logging
import sys

from nost_tools.configuration import ConnectionConfig
from nost_tools.logger_application import LoggerApplication

prefix, yaml_file, log_dir = sys.argv[1:4]
logging.basicConfig(level=logging.WARNING)
config = ConnectionConfig(yaml_file=yaml_file)
app = LoggerApplication("pylogger")
app.start_up(prefix, config, log_app="*", log_topic="#", log_dir=log_dir)
print("STARTED", app.log_file.name, flush=True)
sys.stdin.readline()
app.shut_down()
print("DONE", flush=True)
