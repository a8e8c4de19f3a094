"""Print the effective configuration nost_tools 3.6.0 derives from a YAML file, as JSON.

Usage: python effective_config.py CONFIG.yaml
"""
import json
import sys

from nost_tools.configuration import ConnectionConfig

config = ConnectionConfig(yaml_file=sys.argv[1])
sim = config.rc.simulation_configuration
servers = config.rc.server_configuration.servers
print(json.dumps({
    "rabbitmq": servers.rabbitmq.model_dump(mode="json"),
    "keycloak": servers.keycloak.model_dump(mode="json") if servers.keycloak else None,
    "execution": sim.execution_parameters.model_dump(mode="json"),
}, default=str))
