"""The Ollama pull resource's CRUD, called directly (the engine only drives it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.docker.ollama_model import OllamaModelProvider

from .pulumi_program import PROJECT

LIST = """NAME                ID              SIZE      MODIFIED
qwen2.5:0.5b        a8b0c5157701    397 MB    2 minutes ago
llama3.1:latest     46e0c10c039e    4.9 GB    3 days ago
"""
PROPS = {"docker_host": "ssh://ops@gpu-1", "container": "llmfleet-prod-ollama", "tag": "qwen2.5:0.5b", "digest": None}


class FakeDocker:
    """Answers `docker exec ... ollama <cmd>` like the real CLI, recording every call."""

    def __init__(self, listing: str = LIST, fail: str | None = None, down: str | None = None,
                 before_pull: str | None = None) -> None:  # fmt: skip
        self.listing, self.fail, self.down, self.calls = listing, fail, down, []
        self.before_pull = before_pull  # what `ollama list` shows until a pull, when not `listing`

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if self.down:  # the docker CLI's exit code and the daemon's words (moby daemon/errors.go)
            return 1, "", f"Error response from daemon: {self.down}\n"
        # `ollama <command>`, or the shell that runs `ollama create` from a Modelfile
        command = argv[argv.index("ollama") + 1] if "ollama" in argv else "create"
        if command == self.fail:
            return 1, "", "Error: pull model manifest: file does not exist"
        if command == "pull":
            self.before_pull = None
        if command == "list":
            return 0, self.listing if self.before_pull is None else self.before_pull, ""
        return 0, "success\n", ""


def test_create_pulls_through_docker_exec_and_records_the_digest() -> None:
    fake = FakeDocker(before_pull=LIST.splitlines()[0])  # not in the store yet
    result = OllamaModelProvider(fake).create(PROPS)
    exec_ = ["docker", "--host", "ssh://ops@gpu-1", "exec", "llmfleet-prod-ollama", "ollama"]
    assert fake.calls == [[*exec_, "list"], [*exec_, "pull", "qwen2.5:0.5b"], [*exec_, "list"]]
    assert result.id == "llmfleet-prod-ollama/qwen2.5:0.5b"
    assert result.outs["digest"] == "a8b0c5157701"


def test_a_model_already_in_the_store_is_adopted_without_a_pull() -> None:
    """A reused models directory or volume: nothing is fetched, not even the manifest (air-gapped hosts)."""
    fake = FakeDocker()  # `ollama list` already shows qwen2.5:0.5b
    result = OllamaModelProvider(fake).create(PROPS)
    assert [call[-1] for call in fake.calls] == ["list"]
    assert (result.id, result.outs["digest"]) == ("llmfleet-prod-ollama/qwen2.5:0.5b", "a8b0c5157701")


def test_a_failed_pull_says_what_ollama_said() -> None:
    expected = (
        r"`ollama pull qwen2.5:0.5b` in container llmfleet-prod-ollama failed \(1\): "
        r"Error: pull model manifest: file does not exist"
    )
    with pytest.raises(RuntimeError, match=expected):
        OllamaModelProvider(FakeDocker(fail="pull", before_pull=LIST.splitlines()[0])).create(PROPS)


def test_read_reports_a_model_removed_by_hand_as_gone() -> None:
    provider = OllamaModelProvider(FakeDocker(listing=LIST.splitlines()[0]))
    assert provider.read("id", PROPS).id is None
    assert OllamaModelProvider(FakeDocker()).read("id", PROPS).outs["digest"] == "a8b0c5157701"


def test_delete_removes_the_model_only_if_present() -> None:
    fake = FakeDocker()
    OllamaModelProvider(fake).delete("id", PROPS)
    assert fake.calls[-1][-2:] == ["rm", "qwen2.5:0.5b"]
    gone = FakeDocker(listing=LIST.splitlines()[0])
    OllamaModelProvider(gone).delete("id", PROPS)
    assert [c[-1] for c in gone.calls] == ["list"]


PRUNE_RACE = "Error: open /root/.ollama/models/manifests/registry.ollama.ai: no such file or directory"


class RacingRm(FakeDocker):
    """`ollama rm` failing as a parallel one makes it fail while pruning (see OllamaModelProvider.delete):
    `removed` says whether the model went before the failure; `failures` how many times it fails."""

    def __init__(self, removed: bool, failures: int) -> None:
        super().__init__()
        self.removed, self.failures = removed, failures

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        if argv[-2:-1] == ["rm"]:
            self.calls.append(list(argv))
            if self.failures:
                self.failures -= 1
                if self.removed:
                    self.listing = LIST.splitlines()[0]
                return 1, "", PRUNE_RACE
            self.listing = LIST.splitlines()[0]
            return 0, "deleted 'qwen2.5:0.5b'\n", ""
        return super().__call__(argv, timeout)


def test_an_rm_that_fails_while_pruning_is_checked_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OllamaModelProvider, "RM_RETRY_S", 0.0)
    # Removed, then failed in the pruning: listed no more, so done, not retried.
    gone = RacingRm(removed=True, failures=1)
    OllamaModelProvider(gone).delete("id", PROPS)
    assert [c[-2] if c[-2] == "rm" else c[-1] for c in gone.calls] == ["list", "rm", "list"]
    # Failed before it removed: tried again, and removed.
    kept = RacingRm(removed=False, failures=2)
    OllamaModelProvider(kept).delete("id", PROPS)
    assert sum(c[-2] == "rm" for c in kept.calls) == 3 and "qwen2.5:0.5b" not in kept.listing
    # Failing every time: the last error, as Ollama said it.
    stuck = RacingRm(removed=False, failures=5)
    with pytest.raises(RuntimeError, match=r"ollama rm qwen2\.5:0\.5b` in container \S+ failed .*manifests"):
        OllamaModelProvider(stuck).delete("id", PROPS)
    assert sum(c[-2] == "rm" for c in stuck.calls) == OllamaModelProvider.RM_ATTEMPTS


STOPPED = "Container 3f9a1c0d2b7e is not running"
MISSING = "No such container: llmfleet-prod-ollama"


@pytest.mark.parametrize("down", [STOPPED, MISSING, "Container 3f9a1c0d2b7e is restarting, wait until the container "
                                  "is running"])  # fmt: skip
def test_refresh_with_the_container_down_shows_the_model_gone(down: str) -> None:
    result = OllamaModelProvider(FakeDocker(down=down)).read("id", PROPS)
    assert (result.id, result.outs) == (None, {})


@pytest.mark.parametrize("down", [STOPPED, MISSING])
def test_delete_with_the_container_down_leaves_the_volume_alone(down: str) -> None:
    fake = FakeDocker(down=down)
    OllamaModelProvider(fake).delete("id", PROPS)
    assert [c[-1] for c in fake.calls] == ["list"]  # asked once, removed nothing


def test_other_docker_failures_still_fail_loudly() -> None:
    fake = FakeDocker(down="error during connect: ssh: connect to host gpu-1 port 22: Connection refused")
    with pytest.raises(
        RuntimeError, match=r"`ollama list` in container llmfleet-prod-ollama failed .*Connection refused"
    ):
        OllamaModelProvider(fake).read("id", PROPS)


def test_bare_names_are_listed_as_latest() -> None:
    result = OllamaModelProvider(FakeDocker()).create({**PROPS, "tag": "llama3.1"})
    assert result.outs["digest"] == "46e0c10c039e"


def test_diff_replaces_on_tag_container_or_host_change() -> None:
    provider = OllamaModelProvider()
    assert provider.diff("id", PROPS, dict(PROPS)).changes is False
    diff = provider.diff("id", PROPS, {**PROPS, "tag": "qwen2.5:1.5b"})
    assert (diff.changes, diff.replaces, diff.delete_before_replace) == (True, ["tag"], True)


def test_missing_docker_cli_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="the docker CLI is not installed where `pulumi up` runs"):
        OllamaModelProvider().create(PROPS)


def test_pickled_provider_loads_as_pulumi_runs_it() -> None:
    """Pulumi pickles the provider into the state and runs it in a fresh `python -m
    pulumi.dynamic` started in the program's directory: that must import it and register nothing."""
    blob = serialize_provider(OllamaModelProvider())
    script = (
        "import sys, dill, base64\n"
        "p = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "import pulumi.runtime.settings as s\n"
        "assert s.SETTINGS.monitor is None, 'importing the provider started a Pulumi program'\n"
        "print(p.docker_exec(None, 'c', ['list']), p.list_tags(sys.stdin.read()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, blob], input=LIST, capture_output=True, text=True,
                          timeout=60, cwd=PROJECT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "['docker', 'exec', 'c', 'ollama', 'list'] {'qwen2.5:0.5b': 'a8b0c5157701', 'llama3.1:latest': '46e0c10c039e'}"
    )


CREATED = {**PROPS, "tag": "house", "gguf": "/models/house.gguf"}


def test_a_model_from_a_file_is_created_from_a_modelfile_in_the_container() -> None:
    fake = FakeDocker(listing=LIST + "house:latest        5d1e4bbbb0f1    1.1 GB    1 second ago\n")
    result = OllamaModelProvider(fake).create(CREATED)
    argv = fake.calls[0]
    assert argv[:5] == ["docker", "--host", "ssh://ops@gpu-1", "exec", "llmfleet-prod-ollama"]
    assert argv[5:7] == ["sh", "-c"] and argv[-3:] == ["sh", "/models/house.gguf", "house"]
    assert (result.id, result.outs["digest"]) == ("llmfleet-prod-ollama/house", "5d1e4bbbb0f1")


def test_the_modelfile_script_runs_ollama_create_and_cleans_up(tmp_path) -> None:
    # The script itself, run by a real sh against a recording `ollama` on PATH.
    bin_dir, tmp = tmp_path / "bin", tmp_path / "tmp"
    bin_dir.mkdir()
    tmp.mkdir()
    (bin_dir / "ollama").write_text('#!/bin/sh\necho "$@" > "$LOG"; cat "$4" >> "$LOG"; exit "${STATUS:-0}"\n')
    (bin_dir / "ollama").chmod(0o755)
    argv = OllamaModelProvider.create_from_gguf(None, "c", "house", "/models/my house.gguf")
    script = argv[argv.index("sh") :]
    log = tmp_path / "log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "TMPDIR": str(tmp), "LOG": str(log)}
    assert subprocess.run(script, env=env, check=False).returncode == 0
    args, modelfile = log.read_text().split("\n", 1)
    assert args.startswith("create house -f ")
    assert modelfile == "FROM /models/my house.gguf\n"
    assert list(tmp.iterdir()) == []  # the temporary Modelfile is gone
    assert subprocess.run(script, env={**env, "STATUS": "7"}, check=False).returncode == 7
    assert list(tmp.iterdir()) == []


def test_a_failed_create_says_what_it_ran_and_what_ollama_said() -> None:
    class Refusing(FakeDocker):
        def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
            self.calls.append(list(argv))
            return 1, "", "Error: open /models/house.gguf: no such file or directory\n"

    expected = (
        r"`ollama create house` from `FROM /models/house.gguf` in container llmfleet-prod-ollama failed \(1\): "
        r"Error: open /models/house.gguf: no such file or directory"
    )
    with pytest.raises(RuntimeError, match=expected):
        OllamaModelProvider(Refusing()).create(CREATED)


def test_a_changed_source_file_replaces_the_model_and_pulled_models_keep_their_state() -> None:
    provider = OllamaModelProvider()
    diff = provider.diff("id", CREATED, {**CREATED, "gguf": "/models/house-v2.gguf"})
    assert (diff.changes, diff.replaces) == (True, ["gguf"])
    # State written before models could be created from files has no `gguf` key: no change.
    assert provider.diff("id", PROPS, dict(PROPS)).changes is False
    assert "gguf" not in OllamaModelProvider(FakeDocker()).create(PROPS).outs


def test_a_model_is_matched_as_ollama_lists_it_case_kept() -> None:
    # Ollama lists a name as first fetched (case kept), and 0.14.1's chat finds it only so spelled
    # (tests/test_ollama_real.py shows both on the real server): another spelling is not this model.
    listed = LIST + "hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M    0badc0ffee00    9.2 GB    now\n"
    props = {**PROPS, "tag": "hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M"}
    assert OllamaModelProvider(FakeDocker(listing=listed)).read("id", props).outs["digest"] == "0badc0ffee00"

    other = LIST + "hf.co/thebloke/mythomax-l2-13b-gguf:q5_k_m    0badc0ffee00    9.2 GB    now\n"
    assert OllamaModelProvider(FakeDocker(listing=other)).read("id", props).id is None  # refresh: gone
    # Never adopted, and never pulled (a pull would succeed and leave the other spelling listed).
    fake = FakeDocker(listing=other)
    with pytest.raises(RuntimeError) as refused:
        OllamaModelProvider(fake).create(props)
    assert str(refused.value) == (
        "Ollama in container llmfleet-prod-ollama has this model as 'hf.co/thebloke/mythomax-l2-13b-gguf:q5_k_m', "
        "not 'hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M': it keeps the first spelling of a name (create and pull "
        "match names ignoring case), and before 0.16.2 its chat answers only that spelling. Declare the model as "
        "'hf.co/thebloke/mythomax-l2-13b-gguf:q5_k_m', or remove it first (`docker exec llmfleet-prod-ollama "
        "ollama rm hf.co/thebloke/mythomax-l2-13b-gguf:q5_k_m`) and run the update again."
    )
    assert [c[-1] for c in fake.calls] == ["list"]
    # A model created from a file under another spelling: `ollama create` succeeds, the old one stays.
    fake = FakeDocker(listing=LIST.replace("llama3.1:latest", "House:latest"))
    with pytest.raises(RuntimeError, match="has this model as 'House:latest', not 'house'"):
        OllamaModelProvider(fake).create({**PROPS, "tag": "house", "gguf": "/models/house.gguf"})
    # Deleting a name removes nothing listed under another spelling: `ollama rm` ignores case, and
    # that model is another declared name's (a catalog that changed a name's case: create runs first).
    fake = FakeDocker(listing=other)
    OllamaModelProvider(fake).delete("id", {**props, "tag": "hf.co/THEBLOKE/MythoMax-L2-13B-GGUF:Q5_K_M"})
    assert [c[-1] for c in fake.calls] == ["list"]


REGISTRY_TAG = "registry.internal:5000/library/tiny:latest"


def test_a_pull_from_a_plain_http_registry_says_insecure() -> None:
    """Ollama speaks https to a registry unless the pull says --insecure (server/images.go)."""
    listed = LIST + f"{REGISTRY_TAG}    0badc0ffee00    470 KB    now\n"
    fake = FakeDocker(listing=listed, before_pull=LIST.splitlines()[0])
    result = OllamaModelProvider(fake).create({**PROPS, "tag": REGISTRY_TAG, "insecure": True})
    assert fake.calls[1][-3:] == ["pull", "--insecure", REGISTRY_TAG]
    assert result.outs["digest"] == "0badc0ffee00"
    # A registry's port is not a tag: an untagged reference is listed with `:latest`.
    untagged = REGISTRY_TAG.removesuffix(":latest")
    assert OllamaModelProvider(FakeDocker(listing=listed)).read("id", {**PROPS, "tag": untagged}).id == "id"


def test_insecure_and_a_spelled_out_latest_pull_nothing_again() -> None:
    provider = OllamaModelProvider()
    props = {**PROPS, "tag": REGISTRY_TAG}
    assert provider.diff("id", props, {**props, "insecure": True}).changes is False
    assert provider.diff("id", props, {**props, "tag": REGISTRY_TAG.removesuffix(":latest")}).changes is False
    assert provider.diff("id", props, {**props, "tag": "registry.internal:5000/library/tiny:1b"}).replaces == ["tag"]


def test_a_model_resource_is_named_by_the_model_ollama_lists() -> None:
    """Renaming a gateway name keeps the resource (and so the model) when its source stays; a stack
    deployed when resources were named by the gateway name moves them over by an alias."""
    from components.docker.ollama import model_resource_aliases, model_resource_name
    from llmfleet import OllamaModel

    pulled = OllamaModel(name="tiny-chat", pull=REGISTRY_TAG, insecure=True)
    renamed = OllamaModel(name="tiny-renamed", pull=REGISTRY_TAG, insecure=True)
    assert model_resource_name("ollama", pulled) == model_resource_name("ollama", renamed)
    assert model_resource_name("ollama", pulled) == f"ollama-model-{REGISTRY_TAG}"
    assert [a.name for a in model_resource_aliases("ollama", pulled)] == ["ollama-model-tiny-chat"]
    # A model pulled by its own name keeps the name it always had, now with its tag spelled out.
    bare = OllamaModel(name="llama3.1")
    assert model_resource_name("ollama", bare) == "ollama-model-llama3.1:latest"
    assert [a.name for a in model_resource_aliases("ollama", bare)] == ["ollama-model-llama3.1"]
    tagged = OllamaModel(name="qwen2.5:0.5b")
    assert (model_resource_name("ollama", tagged), model_resource_aliases("ollama", tagged)) == (
        "ollama-model-qwen2.5:0.5b", [])  # fmt: skip
