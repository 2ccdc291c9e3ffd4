"""The Docker target: the specs of components/servers/ translated into pulumi-docker resources (one
component per server kind, the gateway, the front proxy, each Docker host) and the Docker-only
dynamic providers (the health wait, the engine check, the Ollama models), which run the docker CLI
where `pulumi up` runs. The only package that imports pulumi_docker (tests/test_layout.py)."""
