"""The Pulumi program (__main__.py) under mocks, for every shipped Docker stack (the Kubernetes one:
tests/test_program_kubernetes.py)."""

from __future__ import annotations

import pytest
import yaml

import llmfleet
from components.servers.gateway import ENTRYPOINT_SOURCE
from components.servers.spec import STOP_GRACE_S
from llmfleet._front_proxy import FRONT_ALIAS, GATEWAY_ALIAS, FrontProxySettings, front_proxy_config

from .pulumi_program import PROJECT, Run, plain_strings, resolve, run_program

MASTER_KEY = "sk-master-0123456789abcdef"
API_KEY = "ollama-cloud-key-fedcba9876543210"
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
STACKS = [s for s in llmfleet.stack_names(PROJECT) if not llmfleet.load_fleet(PROJECT, s).stack.on_kubernetes]


def run_stack(stack: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    config = {"llmfleet:masterKey": MASTER_KEY, "llmfleet:apiKeys": f'{{"OLLAMA_API_KEY": "{API_KEY}"}}'}
    return run_program(stack, config, ["llmfleet:masterKey", "llmfleet:apiKeys"], monkeypatch=monkeypatch)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fleet(stack: str) -> llmfleet.Fleet:
    return llmfleet.load_fleet(PROJECT, stack)


@pytest.fixture
def run(stack: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    return run_stack(stack, monkeypatch)


def containers(run: Run) -> dict[str, dict]:
    return {r.name.removesuffix("-container"): r.inputs for r in run.of_type(CONTAINER)}


def env(inputs: dict) -> dict[str, str]:
    return dict(e.split("=", 1) for e in plain_strings(inputs.get("envs", [])))


def test_one_container_per_provisioned_provider_the_gateway_and_its_front_proxy(
    run: Run, fleet: llmfleet.Fleet, stack: str
) -> None:
    assert set(containers(run)) == {*fleet.catalog.local_providers(), "gateway", "front"}
    aliases = {"gateway": GATEWAY_ALIAS, "front": FRONT_ALIAS}
    for name, inputs in containers(run).items():
        image = run.one(IMAGE, f"{name}-image").inputs
        assert inputs["image"].startswith("sha256:"), "image must be RemoteImage.image_id, not a name"
        assert image["keepLocally"] is True
        assert inputs["networksAdvanced"] == [{"name": f"llmfleet-{stack}", "aliases": [aliases.get(name, name)]}]
        assert inputs["restart"] == "unless-stopped"
        if name == "gateway":  # auto-named (pulumi-docker SetAutonaming): old and new coexist in a roll
            assert "name" not in inputs
        else:
            assert inputs["name"] == f"llmfleet-{stack}-{name}"


def test_images_are_the_stacks_pinned_ones(run: Run, fleet: llmfleet.Fleet) -> None:
    images = fleet.stack.images
    for name, provider in fleet.catalog.local_providers().items():
        expected = images.ref(provider.kind)
        image = run.one(IMAGE, f"{name}-image").inputs
        if isinstance(expected, llmfleet.BuildSpec):
            assert image["name"] == expected.tag
            assert image["build"]["context"] == str(PROJECT / expected.build)
            assert set(image["triggers"]) == {"context"}
        else:
            assert image["name"] == expected
    assert run.one(IMAGE, "gateway-image").inputs["name"] == images.litellm
    assert run.one(IMAGE, "front-image").inputs["name"] == images.haproxy


def test_every_container_but_the_gateway_is_replaced_delete_first(run: Run) -> None:
    # Said explicitly either way: pulumi-docker asks for delete-first on every container, and only
    # an explicit option overrides it (pulumi/pulumi step_generator.go).
    for name in containers(run):
        request = run.request(CONTAINER, f"{name}-container")
        assert request.delete_before_replace_defined, name
        assert request.delete_before_replace == (name != "gateway"), name


def test_every_container_stops_gracefully_with_its_kinds_grace(run: Run) -> None:
    for name, inputs in containers(run).items():
        kind = next(label["value"] for label in inputs["labels"] if label["label"] == "llmfleet.kind")
        assert inputs["destroyGraceSeconds"] == inputs["stopTimeout"] == STOP_GRACE_S[kind], name
    # Beyond LiteLLM's own graceful shutdown (GRACEFUL_SHUTDOWN_TIMEOUT, 30 s by default).
    assert containers(run)["gateway"]["destroyGraceSeconds"] > 30


def test_the_front_proxy_config_depends_on_the_stack_never_on_the_catalog(run: Run, stack: str) -> None:
    [upload] = containers(run)["front"]["uploads"]
    assert upload["file"] == "/usr/local/etc/haproxy/haproxy.cfg"
    assert upload["content"] == front_proxy_config(FrontProxySettings(stack=stack, gateway_port=4000, check_port=4001))
    assert f"server-template gateway 4 {GATEWAY_ALIAS}:4000" in upload["content"]


def test_gpus_exactly_where_the_catalog_asks(run: Run, fleet: llmfleet.Fleet) -> None:
    for name, inputs in containers(run).items():
        provider = fleet.catalog.providers.get(name)
        gpus = getattr(provider, "gpus", None)
        if gpus is None:
            assert "gpus" not in inputs and "deviceRequests" not in inputs
            assert "NVIDIA_VISIBLE_DEVICES" not in env(inputs)
        else:
            ids = ",".join(map(str, gpus)) if gpus != "all" else "all"
            if gpus == "all":
                assert (inputs["gpus"], "deviceRequests" in inputs) == ("all", False)
            else:  # never gpus="device=...": docker/cli would split a list into a count and ids
                [request] = inputs["deviceRequests"]
                assert (request["deviceIds"], request["driver"], "gpus" in inputs) == (list(map(str, gpus)), "nvidia",
                                                                                          False)  # fmt: skip
            assert env(inputs)["NVIDIA_VISIBLE_DEVICES"] == ids


def test_served_names_are_always_passed(run: Run, fleet: llmfleet.Fleet) -> None:
    for name, provider in fleet.catalog.local_providers().items():
        inputs = containers(run)[name]
        command = inputs.get("command", [])
        if provider.kind == "vllm":
            assert command[:3] == [provider.model, "--served-model-name", provider.served_name]
            assert inputs["ipcMode"] == "host"
        elif provider.kind == "llama_cpp":
            assert command[command.index("--alias") + 1] == provider.alias
            assert command[command.index("--port") + 1] == str(provider.listen_port)
            assert "-ngl" in command
        elif provider.kind == "llama_cpp_python":
            assert env(inputs)["MODEL_ALIAS"] == provider.alias
            assert env(inputs)["N_GPU_LAYERS"] == str(provider.gpu_layers if provider.gpu_layers is not None else -1)
        elif provider.kind == "ollama":
            assert env(inputs)["OLLAMA_HOST"] == f"0.0.0.0:{provider.listen_port}"


def test_every_backend_has_a_healthcheck_and_is_waited_for(run: Run) -> None:
    waits = run.health_waits()
    for name, inputs in containers(run).items():
        assert inputs["healthcheck"]["tests"], name
        assert inputs["wait"] is False  # the health wait below, which also sees a crash
        assert waits[f"{name}-healthy"].inputs["budget_s"] >= 120


def test_the_front_proxy_on_the_gateway_address_and_each_backend_where_drift_asks_it(
    run: Run, fleet: llmfleet.Fleet
) -> None:
    # The shipped stacks publish every backend on loopback, so the scheduled `drift --backends` and
    # `probe --backends` (run on the Docker host) check each one; the gateway publishes nothing.
    published = {name: inputs["ports"] for name, inputs in containers(run).items() if inputs.get("ports")}
    backends = llmfleet.backend_urls(fleet)
    assert all(backends.values()) and set(backends) == set(fleet.catalog.local_providers())
    assert published == {
        "front": [{"internal": 8080, "external": fleet.stack.gateway.port, "ip": fleet.stack.gateway.bind}],
        **{
            name: [{"internal": p.listen_port, "external": p.listen_port, "ip": "127.0.0.1"}]
            for name, p in fleet.catalog.local_providers().items()
        },
    }
    assert all(backends[name] == f"http://127.0.0.1:{int(ports[0]['external'])}"
               for name, ports in published.items() if name != "front")  # fmt: skip


def test_gateway_config_names_equal_the_declared_set(run: Run, fleet: llmfleet.Fleet) -> None:
    uploads = containers(run)["gateway"]["uploads"]
    assert [u["file"] for u in uploads] == ["/app/config.yaml", "/app/llmfleet_gateway_entrypoint.py"]
    assert uploads[1]["content"] == ENTRYPOINT_SOURCE.read_text()
    config = yaml.safe_load(uploads[0]["content"])
    names = {d["model_name"] for d in config["model_list"]}
    aliases = config.get("router_settings", {}).get("model_group_alias", {})
    visible = {a for a, target in aliases.items() if not (isinstance(target, dict) and target.get("hidden"))}
    assert sorted(names | visible) == llmfleet.declared_models(fleet.catalog)
    assert resolve(run.exports["declared_models"]) == (llmfleet.declared_models(fleet.catalog), False)


def test_gateway_starts_after_backends_and_pulls(run: Run) -> None:
    depends = run.options["gateway-container"].depends_on
    backends = [
        n.removesuffix("-container") for n in run.containers if n not in ("gateway-container", "front-container")
    ]
    waits = {d._name for d in depends if type(d).__name__ == "ContainerHealthy"}
    assert backends and waits == {f"{n}-healthy" for n in backends}  # each healthy, not merely created
    pulls = [d for d in depends if type(d).__name__ == "OllamaModel"]
    assert len(pulls) == len(run.ollama_models())


def test_no_secret_in_any_plain_input_or_output(run: Run) -> None:
    for resource in run.resources:
        leaked = [s for s in plain_strings(resource.inputs) if MASTER_KEY in s or API_KEY in s]
        assert not leaked, f"{resource.typ} {resource.name}"
    gateway_env = containers(run)["gateway"]["envs"]
    assert not list(plain_strings(gateway_env)), "the gateway's env must be one secret"
    value, secret = resolve(run.exports["master_key"])
    assert (value, secret) == (MASTER_KEY, True)
    for name, output in run.exports.items():
        if name != "master_key":
            value, secret = resolve(output)
            assert MASTER_KEY not in str(value) and not secret, name


def test_one_model_resource_per_declared_ollama_model(run: Run, fleet: llmfleet.Fleet, stack: str) -> None:
    # Named for the model Ollama lists (so a renamed gateway name keeps its model), and asks Ollama
    # for the name it lists the model under.
    expected = {
        (f"{name}-model-{llmfleet.ollama_listed_name(m.ollama_name)}", m.ollama_name, f"llmfleet-{stack}-{name}")
        for name, p in fleet.catalog.local_providers().items() if p.kind == "ollama" for m in p.models
    }  # fmt: skip
    got = {(r.name, r.inputs["tag"], r.inputs["container"]) for r in run.ollama_models()}
    assert got == expected
    if stack == "prod":
        assert ("ollama-model-hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M", "hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M",
                "llmfleet-prod-ollama") in got  # fmt: skip


def test_outputs(run: Run, fleet: llmfleet.Fleet) -> None:
    assert resolve(run.exports["gateway_url"]) == (fleet.stack.gateway_url, False)
    providers, _ = resolve(run.exports["providers"])
    assert providers == {
        name: {"endpoint": llmfleet.backend_root(fleet, name), "served_names": p.served_names}
        for name, p in fleet.catalog.local_providers().items()
    }


def test_children_are_parented_to_their_component(run: Run) -> None:
    urn, _ = resolve(run.containers["gateway-container"].urn)
    assert "llmfleet:index:Gateway$docker:index/container:Container::gateway-container" in urn


# The program's own errors for a missing secret give commands that lead to a valid stack file:
# never Pulumi's `pulumi config set --secret llmfleet:apiKeys <value>` (the whole map as one secret).
PASTE_API_KEY = (r"Run: read -rsp 'OLLAMA_API_KEY: ' value && echo && printf '%s' \"\$value\" \| pulumi config set "
                 r"--secret --path 'llmfleet:apiKeys\.OLLAMA_API_KEY' --stack prod$")  # fmt: skip


def test_no_api_keys_at_all_is_our_error_with_the_path_form(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match=r"stack 'prod': no secret for OLLAMA_API_KEY .*" + PASTE_API_KEY):
        run_program("prod", {"llmfleet:masterKey": MASTER_KEY}, ["llmfleet:masterKey"], monkeypatch=monkeypatch)


def test_an_api_keys_map_without_the_key_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"llmfleet:masterKey": MASTER_KEY, "llmfleet:apiKeys": '{"OPENAI_API_KEY": "x"}'}
    with pytest.raises(Exception, match=r"stack 'prod': llmfleet:apiKeys has no OLLAMA_API_KEY\. " + PASTE_API_KEY):
        run_program("prod", config, ["llmfleet:masterKey", "llmfleet:apiKeys"], monkeypatch=monkeypatch)


def test_api_keys_set_as_one_secret_is_our_error_before_anything_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    # What Pulumi's own hint writes: the whole map as one (decrypted: a plain string) value.
    config = {"llmfleet:masterKey": MASTER_KEY, "llmfleet:apiKeys": "sk-the-whole-map"}
    with pytest.raises(Exception, match=r"stack 'prod': llmfleet:apiKeys is one encrypted value, not a map of keys\. "
                                        + PASTE_API_KEY):  # fmt: skip
        run_program("prod", config, ["llmfleet:masterKey", "llmfleet:apiKeys"], monkeypatch=monkeypatch)


def test_no_master_key_is_our_error_with_a_generated_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match=r"stack 'dev': no gateway master key \(llmfleet:masterKey\)\. Run: printf "
                                        r"'sk-%s' \"\$\(openssl rand -hex 24\)\" \| pulumi config set --secret "
                                        r"'llmfleet:masterKey' --stack dev$"):  # fmt: skip
        run_program("dev", {}, [], monkeypatch=monkeypatch)
