"""The Pulumi program (__main__.py) under mocks for the shipped Kubernetes stack (stacks/Pulumi.cluster.yaml):
the same catalog as `prod`, translated into Kubernetes objects only. What the real engine and
cluster do with them: tests/test_kubernetes_deploy_real.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import llmfleet
from components import FleetSecrets, deploy_fleet
from components.servers.spec import STOP_GRACE_S

from .fleetdir import BASE_STACK, write_project
from .pulumi_program import PROJECT, Run, resolve, run_program

MASTER_KEY = "sk-master-0123456789abcdef"
API_KEY = "ollama-cloud-key-fedcba9876543210"
STACK = "cluster"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
DYNAMIC = "pulumi-python:dynamic:Resource"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # pulumi.runtime.rpc's special signature key


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def run(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    config = {"llmfleet:masterKey": MASTER_KEY, "llmfleet:apiKeys": f'{{"OLLAMA_API_KEY": "{API_KEY}"}}'}
    return run_program(STACK, config, ["llmfleet:masterKey", "llmfleet:apiKeys"], monkeypatch=monkeypatch)


@pytest.fixture
def fleet() -> llmfleet.Fleet:
    return llmfleet.load_fleet(PROJECT, STACK)


def pod(run: Run, name: str) -> dict:
    return run.one(DEPLOYMENT, name).inputs["spec"]["template"]["spec"]


def test_kubernetes_objects_only_through_the_stacks_named_context(run: Run, kubeconfig: Path) -> None:
    assert not [r for r in run.resources if r.typ.startswith("docker:")]
    [provider] = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "gpu-cluster"
    assert provider.inputs["kubeconfig"] == str(kubeconfig)  # a path: no client key copied into the state
    for resource in run.resources:
        if resource.typ.startswith("kubernetes:"):
            assert resource.inputs["metadata"]["namespace"] == "llm", resource.name


def test_each_server_a_deployment_and_a_service_named_for_it(run: Run, fleet: llmfleet.Fleet) -> None:
    local = fleet.catalog.local_providers()
    assert {r.name for r in run.of_type(DEPLOYMENT)} == {*local, "gateway"}
    assert {r.name for r in run.of_type(SERVICE)} == {*local, "gateway"}
    for name, provider in local.items():
        service = run.one(SERVICE, name).inputs
        assert service["metadata"]["name"] == name
        assert service["spec"]["ports"] == [{"name": "http", "port": provider.listen_port, "targetPort": "http"}]
        deployment = run.one(DEPLOYMENT, name).inputs
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == name and labels["app.kubernetes.io/part-of"] == "llmfleet"
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never waits for a spare GPU
        spec = pod(run, name)
        assert spec["enableServiceLinks"] is False  # no VLLM_PORT from a Service named vllm
        assert spec["terminationGracePeriodSeconds"] == STOP_GRACE_S[provider.kind]
    # The gateway config is the same derivation as on Docker: each backend by its Service's name.
    config = yaml.safe_load(llmfleet.render_gateway_config(fleet))
    bases = {m["litellm_params"].get("api_base") for m in config["model_list"]}
    assert f"http://vllm-qwen:{local['vllm-qwen'].listen_port}/v1" in bases


def test_gpus_are_whole_devices_of_the_pool_never_a_visible_devices_list(run: Run, fleet: llmfleet.Fleet) -> None:
    for name, provider in fleet.catalog.local_providers().items():
        spec = pod(run, name)
        [container] = spec["containers"]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": str(len(provider.gpus))}, name
        assert spec["nodeSelector"] == {"llmfleet.dev/pool": "gpu-a"}
        assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        assert "NVIDIA_VISIBLE_DEVICES" not in {e["name"] for e in container["env"]}


def test_start_budgets_and_readiness_from_each_kinds_spec(run: Run) -> None:
    for name in ("llama-cpp-native", "llama-cpp-python", "vllm-qwen"):  # each loads its model at start
        startup = pod(run, name)["containers"][0]["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800, name  # a 20-minute load survives
    vllm = pod(run, "vllm-qwen")["containers"][0]
    startup = vllm["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800  # a 30-minute model load survives
    assert "/health" in " ".join(startup["exec"]["command"])
    assert vllm["readinessProbe"]["exec"] == startup["exec"]
    # pulumi-kubernetes' wait is skipped for the rollout wait, which holds the budget and fails fast.
    deployment = run.one(DEPLOYMENT, "vllm-qwen").inputs
    # (not skipAwait: for a Deployment that also skips waiting for its deletion, pulumi-kubernetes#3154)
    assert deployment["metadata"]["annotations"] == {"pulumi.com/waitFor": "jsonpath={.metadata.name}"}
    wait = run.one("pulumi-python:dynamic:Resource", "vllm-qwen-rollout").inputs
    assert wait["budget_s"] > 1800 and wait["deployment"] == "vllm-qwen" and wait["namespace"] == "llm"
    assert wait["context"] == "gpu-cluster" and wait["unschedulable_s"] == 20


def test_the_gateway_starts_after_every_server_has_rolled_out(run: Run, fleet: llmfleet.Fleet) -> None:
    waits = {f"{name}-rollout" for name in fleet.catalog.local_providers()}
    depends = {name for typ, name in run.depends_on(DEPLOYMENT, "gateway") if typ == "pulumi-python:dynamic:Resource"}
    assert waits <= depends, depends


def test_cache_claims_are_kept_on_destroy(run: Run, fleet: llmfleet.Fleet) -> None:
    claims = {r.name: r for r in run.of_type(CLAIM)}
    assert claims, "every server that caches weights has a claim"
    for name, claim in claims.items():
        assert run.request(CLAIM, name).retain_on_delete, name
        assert claim.inputs["spec"]["storageClassName"] == "fast-ssd"
        assert claim.inputs["spec"]["resources"] == {"requests": {"storage": "200Gi"}}


def test_each_declared_ollama_model_is_a_resource_in_its_deployment_before_the_gateway(
    run: Run, fleet: llmfleet.Fleet, kubeconfig: Path
) -> None:
    ollama = fleet.catalog.local_providers()["ollama"]
    models = {r.name: r for r in run.ollama_models()}
    # Named as on Docker, by what Ollama lists: renaming a gateway name over the same pull changes nothing.
    assert set(models) == {f"ollama-model-{llmfleet.ollama_listed_name(m.ollama_name)}" for m in ollama.models}
    for m in ollama.models:
        name = f"ollama-model-{llmfleet.ollama_listed_name(m.ollama_name)}"
        inputs = models[name].inputs
        assert {k: inputs[k] for k in ("kubeconfig", "context", "namespace", "deployment", "container", "tag")} == {
            "kubeconfig": str(kubeconfig.resolve()), "context": "gpu-cluster", "namespace": "llm",
            "deployment": "ollama", "container": "ollama", "tag": m.ollama_name}  # fmt: skip
        assert inputs.get("gguf") == m.gguf
        request = run.request(DYNAMIC, name)
        assert (DYNAMIC, "ollama-rollout") in run.depends_on(DYNAMIC, name)  # the server has rolled out
        # The Deployment by its plain name, never its output: replacing it must not replace the models.
        assert request.property_dependencies.get("deployment", []) == []
        assert not request.retain_on_delete  # its own claim: a model dropped from the catalog is removed
    assert set(models) <= {n for t, n in run.depends_on(DEPLOYMENT, "gateway") if t == DYNAMIC}


def test_the_gateway_rolls_from_a_new_config_with_keys_only_in_a_secret(run: Run, fleet: llmfleet.Fleet) -> None:
    gateway = run.one(DEPLOYMENT, "gateway").inputs
    assert gateway["spec"]["replicas"] == 2
    assert gateway["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    [config] = run.of_type("kubernetes:core/v1:ConfigMap")
    assert "name" not in config.inputs["metadata"]  # auto-named: a change creates a new one, create-first
    assert config.inputs["data"]["config.yaml"] == llmfleet.render_gateway_config(fleet)
    [secret] = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.name.startswith("gateway")]
    # The engine is sent the whole map as one secret value (Pulumi's secret signature around it).
    sent = secret.inputs["stringData"]
    assert sent[SECRET_SIG] == "1b47061264138c4ac30d75fd1eb44270", sent.keys()
    assert sent["value"] == {"LITELLM_MASTER_KEY": MASTER_KEY, "OLLAMA_API_KEY": API_KEY}
    for resource in run.resources:
        if resource.typ != "kubernetes:core/v1:Secret":
            assert MASTER_KEY not in str(resource.inputs) and API_KEY not in str(resource.inputs), resource.name
    env = {e["name"]: e for e in pod(run, "gateway")["containers"][0]["env"]}
    assert env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "LITELLM_MASTER_KEY"


def test_the_gateway_url_is_the_services_address_in_the_cluster(run: Run) -> None:
    url, _ = resolve(run.exports["gateway_url"])
    assert url == "http://gateway.llm.svc:4000"


def test_a_missing_kubeconfig_stops_before_anything_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(Exception, match=r"no kubeconfig at .*absent.*context 'gpu-cluster'"):
        run_program(STACK, {"llmfleet:masterKey": MASTER_KEY, "llmfleet:apiKeys": f'{{"OLLAMA_API_KEY": "{API_KEY}"}}'},
                    ["llmfleet:masterKey", "llmfleet:apiKeys"], monkeypatch=monkeypatch)  # fmt: skip


@pytest.mark.parametrize(
    ("exposure", "service"),
    [
        ("{replicas: 3}", {"type": "ClusterIP"}),
        ("{service_type: NodePort, node_port: 30400}", {"type": "NodePort", "nodePort": 30400}),
        ("{service_type: LoadBalancer}", {"type": "LoadBalancer"}),
    ],
)
def test_how_the_gateway_is_exposed(
    exposure: str, service: dict, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = "providers:\n  cpu:\n    kind: llama_cpp\n    gguf: /models/tiny.gguf\n    alias: tiny\n"
    stack = BASE_STACK + (
        "  llmfleet:target: kubernetes\n"
        f"  llmfleet:kubernetes: {{context: c, namespace: llm, gateway: {exposure}, gguf: {{host_path: /srv/m}}}}\n"
        "  llmfleet:gateway: {port: 4100}\n"
    )
    root = write_project(tmp_path / "project", catalog, stack)
    fleet = llmfleet.load_fleet(root, "test")
    run = run_program("test", {}, [], program=lambda: deploy_fleet(fleet, FleetSecrets("sk-x-123456"), root),
                      monkeypatch=monkeypatch)  # fmt: skip
    spec = run.one(SERVICE, "gateway").inputs["spec"]
    assert {k: v for k, v in spec.items() if k != "ports"} == {"type": service["type"],
                                                               "selector": spec["selector"]}  # fmt: skip
    port = {"name": "http", "port": 4100, "targetPort": "http"}
    assert spec["ports"] == [{**port, **({"nodePort": service["nodePort"]} if "nodePort" in service else {})}]
    replicas = run.one(DEPLOYMENT, "gateway").inputs["spec"]["replicas"]
    assert replicas == (3 if "replicas" in exposure else 2)
    # The backend's Service keeps the catalog's own port whatever the gateway's is.
    assert run.one(SERVICE, "cpu").inputs["spec"]["ports"][0]["port"] == 8080
