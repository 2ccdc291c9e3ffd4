"""Pulumi components for the fleet. What each server runs is derived once, whatever the target, in
components/servers/; components/docker/ translates it into pulumi-docker resources (one component
per server kind, the Docker host, the gateway, the front proxy); components/fleet.py checks the
stack's secrets and hands the fleet to its target. Importing this package loads no target: the
Docker classes are exported by components.docker."""

from .fleet import FleetSecrets, deploy_fleet, missing_api_keys, required_api_keys

__all__ = ["FleetSecrets", "deploy_fleet", "missing_api_keys", "required_api_keys"]
