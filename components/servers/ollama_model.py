"""One Ollama model, pulled or created from a GGUF file, as a Pulumi dynamic resource: what it does
on every target. Each target says only how a command runs in its Ollama server (`run`): `docker
exec` in the container (components/docker/ollama_model.py), the API server's exec in the ready pod
of the Deployment (components/kubernetes/ollama_model.py).

Why a dynamic resource running the server's own `ollama` CLI rather than a one-shot puller or an
HTTP call to /api/pull:
- deleting the resource deletes the model (`ollama rm`); a puller cannot;
- `pulumi refresh` notices a model removed by hand (read lists the tags);
- it needs no published port: the CLI in the server talks to its own server.

Deleting the resource (a tag removed from the catalog, or `pulumi destroy`) runs `ollama rm` while
the server runs, so the disk follows the catalog. When no server runs there is nothing to ask:
delete then succeeds without touching the store (its files stay, and a later pull of the same tag
reuses them), and a refresh shows the model as gone.

Pulumi pickles a provider (by reference to its module) into the state and runs it in another
process, started in the program's directory (pulumi/pulumi#5455) with `python -m`, so every module
here is importable there; importing it must register nothing (pulumi/pulumi#7453). This module
imports no target's SDK.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider

from llmfleet import ollama_listed_name

from .ollama import ollama_pull_args

# `ollama create` reads its Modelfile on the client's side, here inside the server: a shell writes
# `FROM <file>` to a temporary file there (one per call: models are created in parallel) and removes
# it whatever `ollama create` answers. Run as `sh -c SCRIPT sh <file> <tag>`.
CREATE_FROM_GGUF = (
    'f=$(mktemp) || exit 1; printf "FROM %s\\n" "$1" > "$f" && ollama create "$2" -f "$f"; '
    'status=$?; rm -f "$f"; exit $status'
)


def create_from_gguf_argv(tag: str, gguf: str) -> list[str]:
    """What runs in the server to make `tag` from the GGUF file `gguf` (a path in the server)."""
    return ["sh", "-c", CREATE_FROM_GGUF, "sh", gguf, tag]


def model_props(tag: str, gguf: str | None, insecure: bool) -> dict[str, Any]:
    """The inputs every target's model resource carries: the tag Ollama lists, and the GGUF it is
    created from and `insecure` only when given, so the state of pulled models reads as before they
    existed (a key added to every model would be a diff on each one)."""
    props: dict[str, Any] = {"tag": tag, "digest": None}
    if gguf:
        props["gguf"] = gguf
    if insecure:
        props["insecure"] = True
    return props


class ServerDown(RuntimeError):
    """The Ollama server is stopped or missing: there is no model list to read."""


class OllamaModelLifecycle(ResourceProvider):
    """create = pull (or `ollama create` from a GGUF), delete = rm, read = is it still listed; a
    change of where the server is (`PLACEMENT`), of the source file or of the tag replaces.

    A target's provider implements `run` (the argv in its server; ServerDown when none runs),
    `where` (the server, for messages), `rm_command` (how an operator removes a model by hand) and
    `model_id`."""

    PULL_TIMEOUT_S = 3600  # a 70B model over a slow link
    RM_ATTEMPTS = 3
    RM_RETRY_S = 1.0
    PLACEMENT: tuple[str, ...] = ()  # the properties that say which server: a change replaces

    # --- what each target says ---------------------------------------------------------------------

    def run(self, props: dict[str, Any], argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        """Run `argv` in the server `props` names: (exit code, stdout, stderr); ServerDown when no
        server runs, RuntimeError when the command could not be run for another reason."""
        raise NotImplementedError

    def where(self, props: dict[str, Any]) -> str:
        """The server, for messages: `container llmfleet-prod-ollama`."""
        raise NotImplementedError

    def rm_command(self, props: dict[str, Any], name: str) -> str:
        """The command an operator runs to remove the model `name` from the server by hand."""
        raise NotImplementedError

    def model_id(self, props: dict[str, Any]) -> str:
        raise NotImplementedError

    # --- the same on every target ------------------------------------------------------------------

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
        return self._run(props, ["ollama", *args], timeout, f"`ollama {' '.join(args)}`")

    def _run(self, props: dict[str, Any], argv: Sequence[str], timeout: float, what: str) -> str:
        code, out, err = self.run(props, argv, timeout)
        if code != 0:
            detail = (err or out).strip()[-500:]
            raise RuntimeError(f"{what} in {self.where(props)} failed ({code}): {detail}")
        return out

    def _listing(self, props: dict[str, Any]) -> dict[str, str]:
        return self.list_tags(self._ollama(props, ["list"], 60))

    def _digest(self, props: dict[str, Any]) -> str | None:
        """The model's id when Ollama lists it as the tag is written: a model listed under another
        spelling is not this one (chat would not find it), and is never removed in its place."""
        return self._listing(props).get(ollama_listed_name(props["tag"]))

    def _refuse_other_spelling(self, props: dict[str, Any], listed: dict[str, str]) -> None:
        """Ollama keeps one model for names that differ only by case, under the first spelling:
        `ollama create` and `ollama pull` of another spelling succeed and leave it listed as it was,
        and an Ollama before 0.16.2 then answers chat only for that spelling, never the declared one."""
        wanted = ollama_listed_name(props["tag"])
        other = next((t for t in sorted(listed) if t.casefold() == wanted.casefold() and t != wanted), None)
        if other is not None:
            raise RuntimeError(
                f"Ollama in {self.where(props)} has this model as '{other}', not '{props['tag']}': it keeps the "
                "first spelling of a name (create and pull match names ignoring case), and before 0.16.2 its chat "
                f"answers only that spelling. Declare the model as '{other}', or remove it first "
                f"(`{self.rm_command(props, other)}`) and run the update again."
            )

    def create(self, props: dict[str, Any]) -> CreateResult:
        gguf = props.get("gguf")
        if gguf:
            argv = create_from_gguf_argv(props["tag"], gguf)
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
                return CreateResult(id_=self.model_id(props), outs={**props, "digest": digest})
            self._ollama(props, ollama_pull_args(props["tag"], bool(props.get("insecure"))), self.PULL_TIMEOUT_S)
        listed = self._listing(props)
        digest = listed.get(ollama_listed_name(props["tag"]))
        if digest is None:
            self._refuse_other_spelling(props, listed)  # `ollama create` kept the spelling listed before
            done = "created" if gguf else "pulled"
            raise RuntimeError(f"{done} {props['tag']} but `ollama list` in {self.where(props)} does not show it")
        return CreateResult(id_=self.model_id(props), outs={**props, "digest": digest})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            digest = self._digest(props)
        except ServerDown:
            digest = None  # nothing serves it now; the next `up` starts the server and pulls again
        if digest is None:
            return ReadResult(None, {})  # removed by hand, or its server is down: refresh shows it gone
        return ReadResult(id_, {**props, "digest": digest})

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A change of the server, of the source file or of the model Ollama lists replaces. The tag
        is compared as Ollama lists it (`m` and `m:latest` are one model), and `insecure` is only how
        a pull reaches its registry: neither pulls again."""
        changed = [k for k in (*self.PLACEMENT, "gguf") if olds.get(k) != news.get(k)]
        if ollama_listed_name(olds.get("tag") or "") != ollama_listed_name(news.get("tag") or ""):
            changed.append("tag")
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

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
                except ServerDown:
                    raise
                except RuntimeError:
                    if self._digest(props) is None:
                        return  # removed; what failed was the pruning after it
                    if attempt == self.RM_ATTEMPTS:
                        raise
                    time.sleep(self.RM_RETRY_S)
        except ServerDown:
            pass  # no server to remove it through; the weights stay in the kept store
