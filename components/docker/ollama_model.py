"""One Ollama model, pulled or created from a GGUF file, as a Pulumi resource (a dynamic provider).

Why a dynamic resource running `ollama` inside the server's container (`docker exec`) rather
than a one-shot puller container or an HTTP call to /api/pull:
- deleting the resource deletes the model (`ollama rm`); a puller container cannot;
- `pulumi refresh` notices a model removed by hand (read lists the tags);
- it needs no published port: the CLI in the container talks to its own server, and `docker
  --host ssh://...` reaches remote hosts the same way the docker provider does.
It needs the docker CLI where `pulumi up` runs.

Deleting the resource (a tag removed from the catalog, or `pulumi destroy`) runs `ollama rm`
while the container runs, so the disk follows the catalog. When the container is stopped or gone
there is nothing to ask: delete then succeeds without touching the volume (its files stay, and a
later pull of the same tag reuses them), and a refresh shows the model as gone.

Pulumi pickles the provider (by reference to this module) into the state and runs it in another
process, started in the program's directory (pulumi/pulumi#5455) with `python -m`, so this module
is importable there; importing it must register nothing (pulumi/pulumi#7453). Tests load the
pickled provider in a fresh interpreter started in the project directory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from llmfleet import ollama_listed_name

from ..servers.ollama import ollama_pull_args
from .cli import Runner, run_docker

# What `docker exec` prints when there is no running container to exec into (moby
# daemon/errors.go: "No such container: %s", "Container %s is not running", "... is
# restarting, wait until the container is running", "... is paused, unpause the container ...").
CONTAINER_DOWN = re.compile(r"No such container|is not running|is restarting|is paused", re.IGNORECASE)


class ContainerDown(RuntimeError):
    """The Ollama container is stopped or missing: there is no model list to read."""


class OllamaModelProvider(ResourceProvider):
    """create = pull (or `ollama create` from a GGUF), delete = rm, read = is it still listed; a
    change of tag, source file or container replaces."""

    PULL_TIMEOUT_S = 3600  # a 70B model over a slow link

    def __init__(self, runner: Runner | None = None) -> None:
        self._runner = runner

    @staticmethod
    def exec_in(docker_host: str | None, container: str, argv: Sequence[str]) -> list[str]:
        """`docker exec` of `argv` in the server's container, on its host."""
        host = ["--host", docker_host] if docker_host else []
        return ["docker", *host, "exec", container, *argv]

    @classmethod
    def docker_exec(cls, docker_host: str | None, container: str, args: Sequence[str]) -> list[str]:
        return cls.exec_in(docker_host, container, ["ollama", *args])

    @classmethod
    def create_from_gguf(cls, docker_host: str | None, container: str, tag: str, gguf: str) -> list[str]:
        """`ollama create` reads its Modelfile on the client's side, here inside the container: a
        shell writes `FROM <file>` to a temporary file there (one per call: models are created in
        parallel) and removes it whatever `ollama create` answers."""
        script = (
            'f=$(mktemp) || exit 1; printf "FROM %s\\n" "$1" > "$f" && ollama create "$2" -f "$f"; '
            'status=$?; rm -f "$f"; exit $status'
        )
        return cls.exec_in(docker_host, container, ["sh", "-c", script, "sh", gguf, tag])

    @staticmethod
    def list_tags(output: str) -> dict[str, str]:
        """Parse `ollama list` (NAME  ID  SIZE  MODIFIED) into {name as Ollama lists it: id}; the
        spelling is kept, since chat (before Ollama 0.16.2) finds a model only as it is listed."""
        tags = {}
        for line in output.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 2:
                tags[ollama_listed_name(fields[0])] = fields[1]
        return tags

    def _ollama(self, props: dict[str, Any], args: Sequence[str], timeout: float) -> str:
        argv = self.docker_exec(props.get("docker_host"), props["container"], args)
        return self._run(props, argv, timeout, f"`ollama {' '.join(args)}`")

    def _run(self, props: dict[str, Any], argv: list[str], timeout: float, what: str) -> str:
        code, out, err = (self._runner or run_docker)(argv, timeout)
        if code != 0:
            detail = (err or out).strip()[-500:]
            if CONTAINER_DOWN.search(detail):
                raise ContainerDown(f"container {props['container']} is not running: {detail}")
            raise RuntimeError(f"{what} in container {props['container']} failed ({code}): {detail}")
        return out

    def _listing(self, props: dict[str, Any]) -> dict[str, str]:
        return self.list_tags(self._ollama(props, ["list"], 60))

    def _digest(self, props: dict[str, Any]) -> str | None:
        """The model's id when Ollama lists it as the tag is written: a model listed under another
        spelling is not this one (chat would not find it), and is never removed in its place."""
        return self._listing(props).get(ollama_listed_name(props["tag"]))

    @staticmethod
    def _refuse_other_spelling(props: dict[str, Any], listed: dict[str, str]) -> None:
        """Ollama keeps one model for names that differ only by case, under the first spelling:
        `ollama create` and `ollama pull` of another spelling succeed and leave it listed as it was,
        and an Ollama before 0.16.2 then answers chat only for that spelling, never the declared one."""
        wanted = ollama_listed_name(props["tag"])
        other = next((t for t in sorted(listed) if t.casefold() == wanted.casefold() and t != wanted), None)
        if other is not None:
            container = props["container"]
            raise RuntimeError(
                f"Ollama in container {container} has this model as '{other}', not '{props['tag']}': it keeps the "
                "first spelling of a name (create and pull match names ignoring case), and before 0.16.2 its chat "
                f"answers only that spelling. Declare the model as '{other}', or remove it first "
                f"(`docker exec {container} ollama rm {other}`) and run the update again."
            )

    def create(self, props: dict[str, Any]) -> CreateResult:
        gguf = props.get("gguf")
        if gguf:
            argv = self.create_from_gguf(props.get("docker_host"), props["container"], props["tag"], gguf)
            self._run(props, argv, self.PULL_TIMEOUT_S, f"`ollama create {props['tag']}` from `FROM {gguf}`")
        else:
            # A model already in the store (a reused models directory or volume, or one kept on the
            # volume from an earlier deploy) is adopted as it is: `ollama pull` would download no
            # blob it has, but still asks the registry for the manifest, which an air-gapped host
            # cannot reach, and would move a tag like `latest` to whatever it names today.
            listed = self._listing(props)
            self._refuse_other_spelling(props, listed)
            digest = listed.get(ollama_listed_name(props["tag"]))
            if digest is not None:
                return CreateResult(id_=f"{props['container']}/{props['tag']}", outs={**props, "digest": digest})
            self._ollama(props, ollama_pull_args(props["tag"], bool(props.get("insecure"))), self.PULL_TIMEOUT_S)
        listed = self._listing(props)
        digest = listed.get(ollama_listed_name(props["tag"]))
        if digest is None:
            self._refuse_other_spelling(props, listed)  # `ollama create` kept the spelling listed before
            done = "created" if gguf else "pulled"
            raise RuntimeError(f"{done} {props['tag']} but `ollama list` in {props['container']} does not show it")
        return CreateResult(id_=f"{props['container']}/{props['tag']}", outs={**props, "digest": digest})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            digest = self._digest(props)
        except ContainerDown:
            digest = None  # nothing serves it now; the next `up` starts the container and pulls again
        if digest is None:
            return ReadResult(None, {})  # removed by hand, or its server is down: refresh shows it gone
        return ReadResult(id_, {**props, "digest": digest})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A change of container, host, source file or of the model Ollama lists replaces. The tag is
        compared as Ollama lists it (`m` and `m:latest` are one model), and `insecure` is only how a
        pull reaches its registry: neither pulls again."""
        changed = [k for k in ("docker_host", "container", "gguf") if olds.get(k) != news.get(k)]
        if ollama_listed_name(olds.get("tag") or "") != ollama_listed_name(news.get("tag") or ""):
            changed.append("tag")
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    RM_ATTEMPTS = 3
    RM_RETRY_S = 1.0

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """`ollama rm`, checked by listing again when it fails. Ollama (0.14.1) prunes the emptied
        manifest directories as it removes a model, walking them all: another `rm` on the same server
        at the same moment (the engine deletes a server's models in parallel, as in `destroy`) can
        remove a directory under the walk, and the `rm` then fails ("open .../manifests/...: no such
        file or directory") though its model may be gone already (seen with the real Ollama)."""
        try:
            for attempt in range(1, self.RM_ATTEMPTS + 1):
                if self._digest(props) is None:
                    return
                try:
                    self._ollama(props, ["rm", props["tag"]], 120)
                    return
                except ContainerDown:
                    raise
                except RuntimeError:
                    if self._digest(props) is None:
                        return  # removed; what failed was the pruning after it
                    if attempt == self.RM_ATTEMPTS:
                        raise
                    time.sleep(self.RM_RETRY_S)
        except ContainerDown:
            pass  # no server to remove it through; the weights stay on the retained volume


@dataclass
class OllamaModelArgs:
    docker_host: pulumi.Input[str] | None
    container: pulumi.Input[str]
    tag: str  # what Ollama lists: the library tag or hf.co reference pulled, or the name created
    gguf: str | None = None  # create the model from this file in the container instead of pulling
    insecure: bool = False  # pull over plain http (`ollama pull --insecure`)


class OllamaModel(Resource):
    """Type token `pulumi-python:dynamic:Resource` (fixed by the SDK for dynamic resources)."""

    digest: pulumi.Output[str]

    def __init__(self, name: str, args: OllamaModelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"docker_host": args.docker_host, "container": args.container, "tag": args.tag, "digest": None}
        if args.gguf:  # only when given, so the state of pulled models reads as before
            props["gguf"] = args.gguf
        if args.insecure:  # likewise
            props["insecure"] = True
        super().__init__(OllamaModelProvider(), name, props, opts)
