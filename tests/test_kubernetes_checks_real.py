"""drift, probe and the gateway-drift policy on a Kubernetes stack whose gateway is not exposed outside
the cluster: they reach it through the real API server, as `kubectl port-forward` does
(llmfleet/_reach.py, llmfleet/_kube.py), with the stack's own kubeconfig and context.

The fleet is deployed by the real engine and provider to the tests' control plane
(tests/kubernetes_deploy.py). kwok runs no container, so each pod's port is forwarded by kwok to a
real server on loopback: the gateway's to the real LiteLLM proxy serving the very config.yaml the
`up` put in the gateway's ConfigMap (read back from the API server), each backend's to a stand-in
that answers as that server does (tests/standins.py). The one substitution: in that config, each
`api_base` host (`http://vllm:8000`, resolved by the cluster's DNS in a real pod) is the stand-in's
loopback address, which plays the cluster DNS for the LiteLLM process on this host.
"""

from __future__ import annotations

import base64
import json
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .kubernetes_deploy import (
    NAMESPACE,
    STACK,
    KubeProject,
    LoopbackFleet,
    deployable,
    deployed_config,
    token_kubeconfig,
)
from .litellm_proxy import MASTER_KEY, running_proxy
from .pulumi_program import PROJECT

pytestmark = [
    pytest.mark.real_kubernetes, pytest.mark.real_deploy, pytest.mark.real_ollama, pytest.mark.litellm,
    pytest.mark.timeout(900),
]  # fmt: skip


@dataclass
class Deployed:
    project: KubeProject
    side: LoopbackFleet  # what plays the pods' ports and execs on this host
    workdir: Path
    stack: str  # the stack file as written, before `pulumi config set --secret` added the key

    @property
    def catalog(self) -> str:
        return self.side.catalog

    def write(self, catalog: str) -> None:
        self.project.write(catalog, self.stack)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("kube-checks")
    with deployable(root) as (project, side, stack):
        project.ok("up", "--yes", "--skip-preview")
        yield Deployed(project, side, root, stack)


@pytest.fixture(scope="module")
def gateway(deployed: Deployed) -> Iterator[str]:
    """The real LiteLLM serving the deployed config, where kwok forwards the gateway pods' port."""
    config = deployed.side.gateway_config(deployed_config(deployed.project))
    with running_proxy(config, deployed.workdir, port=deployed.side.gateway_port) as url:
        yield url


def report(done: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(done.stdout)


def test_drift_and_probe_reach_the_gateway_through_the_api_server(deployed: Deployed, gateway: str) -> None:
    project = deployed.project
    done = project.llmfleet("drift", "--stack", STACK, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert report(done)["gateway_url"].startswith("http://127.0.0.1:")  # the forward, not the in-cluster address
    done = project.llmfleet("drift", "--stack", STACK, "--backends")
    assert done.returncode == 0, done.stdout + done.stderr
    done = project.llmfleet("probe", "--stack", STACK, "--backends", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every backend was asked, each through its own Service's forward.
    assert all(server.requests for server in deployed.side.backends.values())


def test_drift_exits_2_when_the_served_set_drifts(deployed: Deployed, gateway: str) -> None:
    project = deployed.project
    catalog = deployed.catalog + "    code: tiny-native\n"  # declared, not deployed: the live gateway lacks it
    deployed.write(catalog)
    try:
        done = project.llmfleet("drift", "--stack", STACK)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "code" in done.stdout, done.stdout
    finally:
        deployed.write(deployed.catalog)


def test_an_unreachable_cluster_could_not_check_naming_the_context(deployed: Deployed) -> None:
    project = deployed.project
    path = project.root / "stacks" / f"Pulumi.{STACK}.yaml"
    original = path.read_text()
    path.write_text(original.replace("context: llmfleet-test", "context: elsewhere"))
    try:
        done = project.llmfleet("drift", "--stack", STACK)
    finally:
        path.write_text(original)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "could not check" in done.stderr and "elsewhere" in done.stderr, done.stderr


def test_the_policy_fails_an_up_on_drift(deployed: Deployed, gateway: str) -> None:
    """The catalog gains an alias; the `up` rolls the gateway to a new ConfigMap, but the gateway
    that answers (the real LiteLLM behind kwok's forward) still serves the old config: the policy,
    reaching it through the API server, must fail the `up`."""
    project = deployed.project
    policy_config = project.root / "policy-config.json"
    policy_config.write_text(json.dumps({"gateway-drift": {"waitSeconds": 5, "timeoutSeconds": 5}}))
    deployed.write(deployed.catalog + "    code: tiny-native\n")
    try:
        done = project.pulumi("up", "--yes", "--skip-preview", "--policy-pack", "policy",
                              "--policy-pack-config", str(policy_config))  # fmt: skip
        errors = "\n".join(line for line in done.stdout.splitlines() if "error" in line.lower())
        assert done.returncode != 0, project.tail()
        assert "gateway-drift" in done.stdout and "code" in done.stdout, errors + project.tail(2000)
        # Back in sync: the same policy passes.
        deployed.write(deployed.catalog)
        project.ok("up", "--yes", "--skip-preview", "--policy-pack", "policy", "--policy-pack-config",
                   str(policy_config))  # fmt: skip
    finally:
        deployed.write(deployed.catalog)


def test_the_master_key_reached_the_gateway_pods_only_through_the_secret(deployed: Deployed) -> None:
    gateway = deployed.project.objects("deployments", "/apis/apps/v1")["gateway"]
    env = {e["name"]: e for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"]
    secret = deployed.project.cluster.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{ref['name']}")
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == MASTER_KEY


def readme_role() -> dict:
    """The Role README.md's "Deploying to Kubernetes" tells a team to give its runner."""
    text = (PROJECT / "README.md").read_text()
    start = text.index("   ```yaml\n   apiVersion: rbac.authorization.k8s.io/v1\n   kind: Role")
    block = text[start:].split("\n", 1)[1].split("   ```", 1)[0]
    return yaml.safe_load(textwrap.dedent(block))


def test_the_role_the_readme_gives_deploys_checks_and_destroys(deployed: Deployed, gateway: str) -> None:
    """With only that Role's rights (a ServiceAccount token, as a CI runner holds): `destroy`, an `up`
    of every kind from nothing (Ollama's models through the pods' exec), drift and probe with the
    backends (port-forwards), and `destroy` again. Last in this module: it ends with the fleet gone."""
    role = readme_role()
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == NAMESPACE
    kubeconfig = token_kubeconfig(deployed.project.cluster, "runner", role["rules"])
    stack = deployed.stack.replace(f"kubeconfig: {deployed.project.cluster.kubeconfig}", f"kubeconfig: {kubeconfig}")
    assert stack != deployed.stack
    deployed.project.write(deployed.catalog, stack)
    project = deployed.project
    project.ok("destroy", "--yes", "--skip-preview")
    assert not project.objects("deployments", "/apis/apps/v1")
    project.ok("up", "--yes", "--skip-preview")
    assert deployed.side.ollama.ollama.tags() == sorted([deployed.side.ollama.pull, "Tiny-House:latest"])
    for check in (("drift", "--backends"), ("probe", "--backends")):
        done = project.llmfleet(*check, "--stack", STACK, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
    project.ok("destroy", "--yes", "--skip-preview")
    assert deployed.side.ollama.ollama.tags() == []
