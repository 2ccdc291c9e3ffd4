"""The Kubernetes target: the specs of components/servers/ translated into pulumi-kubernetes objects
(a Deployment and a Service per server, workload.py; the gateway's ConfigMap, Secret and Deployment,
gateway.py), the stack's explicit cluster provider (cluster.py), and the dynamic resource that waits
for each roll through the API server and fails fast when it cannot finish (rollout.py)."""
