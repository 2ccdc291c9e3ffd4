"""What each server runs, whatever the target: derived once from the catalog and the stack (image
aside: command, environment, port, health check, GPUs, mounts, stop grace), one module per server
kind, the gateway and the front proxy, on the shared types of spec.py. Nothing here imports a
target: components/docker/ translates these specs into pulumi-docker resources."""
