"""Problems that come from the stack file (where and how), or from the stack and catalog together."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmfleet

from .fleetdir import BASE_STACK, problems_of, short, write_project

CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [llama3.1:latest]
  vllm:
    kind: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: qwen
    gpus: [0]
    gpu_memory_utilization: 0.6
  cloud:
    kind: external
    api: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    models: [gpt-4o-mini]
"""


def problems(tmp_path: Path, stack: str, catalog: str = CATALOG) -> list[str]:
    write_project(tmp_path, catalog, stack)
    return [short(p) for p in problems_of(tmp_path)]


def test_base_stack_is_clean(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE_STACK) == []


def test_placement_problems_name_the_stack_keys(tmp_path: Path) -> None:
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    local: {}
    gpu-1:
      docker: ssh://ops@gpu-1
  llmfleet:providers:
    vllm: {host: gpu-1}
    ollama: {host: gpu-2}
    cloud: {publish: true}
    olama: {publish: true}
"""
    )
    assert problems(tmp_path, stack) == [
        "15:5 error missing-address | config['llmfleet:hosts'].gpu-1: provider 'vllm' runs on 'gpu-1' but the "
        "gateway has no address to reach it. Set llmfleet:hosts.gpu-1.address to the IP address of 'gpu-1'.",
        "19:14 error unknown-host | config['llmfleet:providers'].ollama.host: no host named 'gpu-2'. "
        "Did you mean 'gpu-1'?",
        "20:5 error external-placement | config['llmfleet:providers'].cloud: 'cloud' is external: it is not "
        "deployed, so it has no placement. Remove this entry.",
        "21:5 error unknown-provider | config['llmfleet:providers'].olama: the catalog has no provider 'olama'. "
        "Did you mean 'ollama'?",
    ]


def test_gpu_budget_is_per_host(tmp_path: Path) -> None:
    catalog = (
        CATALOG
        + """\
  vllm-2:
    kind: vllm
    port: 8001
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: qwen-2
    gpus: [0]
    gpu_memory_utilization: 0.6
"""
    )
    assert problems(tmp_path, BASE_STACK, catalog) == [
        "23:5 error gpu-budget | providers.vllm-2.gpu_memory_utilization: GPU 0 on host 'local' is over budget: "
        "vllm 0.6, vllm-2 0.6 sum to 1.20 (at most 0.95). Lower gpu_memory_utilization, or put the servers on "
        "different GPUs."
    ]
    # The same two servers on two hosts use two different GPU 0s.
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    local: {}
    gpu-1: {docker: "ssh://ops@gpu-1", address: 10.0.0.11}
  llmfleet:providers:
    vllm-2: {host: gpu-1}
"""
    )
    assert problems(tmp_path, stack, catalog) == []


def test_images_must_exist_and_be_pinned(tmp_path: Path) -> None:
    stack = """\
config:
  llmfleet:catalog: config/catalog.yaml
  llmfleet:images:
    ollama: ollama/ollama
    litellm: ghcr.io/berriai/litellm:latest
  llmfleet:masterKey: {secure: abc}
"""
    assert problems(tmp_path, stack) == [
        "1:1 warning missing-secret | config: no secret OPENAI_API_KEY for external provider 'cloud'. Run: "
        """read -rsp 'OPENAI_API_KEY: ' value && echo && printf '%s' "$value" | """
        "pulumi config set --secret --path 'llmfleet:apiKeys.OPENAI_API_KEY' --stack test",
        "3:3 error missing-image | config['llmfleet:images']: no image for 'vllm' providers. "
        "Set llmfleet:images.vllm to a pinned image tag.",
        "4:5 error image-unpinned | config['llmfleet:images'].ollama: image 'ollama/ollama' is not pinned. "
        "Use a version tag or a digest, not `latest` or no tag.",
        "5:5 error image-unpinned | config['llmfleet:images'].litellm: image 'ghcr.io/berriai/litellm:latest' "
        "is not pinned. Use a version tag or a digest, not `latest` or no tag.",
    ]


def test_registry_port_is_not_a_tag(tmp_path: Path) -> None:
    stack = BASE_STACK.replace("ollama/ollama:0.14.1", "registry.local:5000/ollama")
    assert problems(tmp_path, stack) == [
        "4:5 error image-unpinned | config['llmfleet:images'].ollama: image 'registry.local:5000/ollama' is not "
        "pinned. Use a version tag or a digest, not `latest` or no tag."
    ]


def test_plaintext_secret_and_unknown_keys(tmp_path: Path) -> None:
    stack = BASE_STACK.replace(
        "  llmfleet:masterKey:\n    secure: v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBB\n",
        "  llmfleet:masterKey: sk-plain-text\n  llmfleet:gatway: {port: 4001}\n  docker:host: unix:///x.sock\n",
    )
    assert problems(tmp_path, stack) == [
        "11:3 error plaintext-secret | config['llmfleet:masterKey']: a secret is stored in plain text. "
        """Remove it and run: printf 'sk-%s' "$(openssl rand -hex 24)" | """
        "pulumi config set --secret 'llmfleet:masterKey' --stack test",
        "12:3 error schema-extra-forbidden | config['llmfleet:gatway']: unknown key 'llmfleet:gatway'. "
        "Did you mean 'llmfleet:gateway'?",
    ]


def test_missing_master_key_is_a_warning(tmp_path: Path) -> None:
    stack = BASE_STACK.split("  llmfleet:masterKey")[0]
    assert problems(tmp_path, stack) == [
        "1:1 warning missing-secret | config: no gateway master key is set. "
        """Run: printf 'sk-%s' "$(openssl rand -hex 24)" | pulumi config set --secret 'llmfleet:masterKey' """
        "--stack test"
    ]


def test_missing_stack_and_catalog_files(tmp_path: Path) -> None:
    write_project(tmp_path, CATALOG)
    assert [short(p) for p in problems_of(tmp_path, "prod")] == [
        "1:1 error unknown-stack | (document): no stack 'prod'. Known stacks: test."
    ]
    write_project(tmp_path, CATALOG, BASE_STACK.replace("config/catalog.yaml", "config/nope.yaml"))
    assert [short(p) for p in problems_of(tmp_path)] == [
        "2:3 error missing-file | config['llmfleet:catalog']: catalog 'config/nope.yaml' not found. "
        "Give a path relative to the project directory."
    ]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://gw:4000/v1", "llmfleet adds /v1/models and /v1/chat/completions itself"),
        ("http://gw:99999", "has no usable port: give one from 1 to 65535"),
        ("https://", "'https://' names no host"),
    ],
)
def test_a_gateway_url_in_the_stack_is_checked_like_the_option(tmp_path, url: str, says: str) -> None:
    stack = BASE_STACK + f"  llmfleet:gateway: {{url: '{url}'}}\n"
    [problem] = [p for p in problems_of(write_project(tmp_path, CATALOG, stack)) if p.severity == "error"]
    # Located at the value, as every schema error is; `validate` reports it before anything runs.
    assert (problem.rule, says in problem.message, problem.line, problem.col) == ("schema-value-error", True, 13, 22)


def test_a_missing_llama_cpp_python_image_shows_both_ways_to_give_one(tmp_path: Path) -> None:
    catalog = "providers:\n  py:\n    kind: llama_cpp_python\n    gguf: /models/m.gguf\n    alias: m\n"
    stack = BASE_STACK.replace("    llama_cpp_python: ghcr.io/abetlen/llama-cpp-python:v0.3.16\n", "")
    [problem] = [p for p in problems(tmp_path, stack, catalog) if " error " in p]
    assert problem == (
        "3:3 error missing-image | config['llmfleet:images']: no image for 'llama_cpp_python' providers. Set "
        "llmfleet:images.llama_cpp_python to a pinned image reference (registry/image:tag), or build it: "
        "`{build: docker/llama-cpp-python-cuda, tag: llmfleet/llama-cpp-python-cuda:0.3.16}` (`build` is a "
        "directory with a Dockerfile, relative to the project)."
    )
    # The form shown is one the stack accepts (a CUDA build: its provider has a GPU).
    shown = problem.split("`")[1]
    built = stack.replace("  llmfleet:images:\n", f"  llmfleet:images:\n    llama_cpp_python: {shown}\n")
    assert [p for p in problems(tmp_path, built, catalog + "    gpus: all\n") if " error " in p] == []


@pytest.mark.parametrize(("bind", "url"), [("127.0.0.1", "http://127.0.0.1:4000"), ("::1", "http://[::1]:4000")])
def test_the_gateway_url_from_bind_is_a_url_for_ipv6_too(tmp_path: Path, bind: str, url: str) -> None:
    write_project(tmp_path, CATALOG, BASE_STACK + f"  llmfleet:gateway: {{bind: '{bind}'}}\n")
    assert llmfleet.load_fleet(tmp_path, "test").stack.gateway_url == url


def test_a_build_s_numbers_are_strict(tmp_path: Path) -> None:
    # `cuda_architectures: 90` is the number 90 to YAML; the field is CMake's text list ("90;120").
    catalog = "providers:\n  py:\n    kind: llama_cpp_python\n    gguf: /models/m.gguf\n    alias: m\n    gpus: all\n"
    build = ("    llama_cpp_python:\n      build: docker/llama-cpp-python-cuda\n      cuda_architectures: 90\n"
             "      timeout_minutes: 90.0\n")  # fmt: skip
    stack = BASE_STACK.replace("    llama_cpp_python: ghcr.io/abetlen/llama-cpp-python:v0.3.16\n", build)
    assert problems(tmp_path, stack, catalog) == [
        "9:7 error schema-string-type | config['llmfleet:images'].llama_cpp_python.cuda_architectures: YAML reads "
        "`90` as the number 90, not as text. Quote it: '90' (`pulumi config set --path` writes it so with "
        "`--type string`).",
        "10:7 error schema-int-type | config['llmfleet:images'].llama_cpp_python.timeout_minutes: YAML reads `90.0` "
        "as the number 90.0, not as a whole number. Write timeout_minutes: 90.",
    ]
    fixed = stack.replace("cuda_architectures: 90", "cuda_architectures: '90'").replace("90.0", "90")
    assert [p for p in problems(tmp_path, fixed, catalog) if " error " in p] == []


WHOLE_MAP = BASE_STACK.replace(
    "  llmfleet:apiKeys:\n    OPENAI_API_KEY: {secure: v1:CCCCCCCCCCCCCCCC}\n"
    "    OLLAMA_API_KEY: {secure: v1:DDDDDDDDDDDDDDDD}\n",
    "  llmfleet:apiKeys:\n    secure: v1:CCCCCCCCCCCCCCCC:DDDDDDDD\n",
)


def test_api_keys_set_as_one_secret_say_how_to_set_each_key(tmp_path: Path) -> None:
    # What Pulumi's own hint for a missing key (`pulumi config set --secret llmfleet:apiKeys <value>`)
    # writes. It used to be read as a plain-text key named `secure`, with a fix that set `apiKeys.secure`.
    catalog = CATALOG + "  groq:\n    kind: external\n    api: openai\n    base_url: https://api.groq.com/openai/v1\n" \
        "    api_key_env: GROQ_API_KEY\n    models: [llama-3.3-70b-versatile]\n"  # fmt: skip
    assert problems(tmp_path, WHOLE_MAP, catalog) == [
        "8:3 error whole-map-secret | config['llmfleet:apiKeys']: set as one encrypted value (`secure:`), which "
        "llmfleet cannot read as a map of keys: it needs one secret per key the catalog names (GROQ_API_KEY, "
        "OPENAI_API_KEY). Remove it and set each key by itself. Run: pulumi config rm 'llmfleet:apiKeys' --stack test"
        """ && read -rsp 'GROQ_API_KEY: ' value && echo && printf '%s' "$value" | pulumi config set --secret """
        "--path 'llmfleet:apiKeys.GROQ_API_KEY' --stack test && read -rsp 'OPENAI_API_KEY: ' value && echo && "
        """printf '%s' "$value" | pulumi config set --secret --path 'llmfleet:apiKeys.OPENAI_API_KEY' --stack test""",
    ]


def test_api_keys_set_as_one_secret_for_a_catalog_without_external_keys(tmp_path: Path) -> None:
    catalog = "providers:\n  ollama:\n    kind: ollama\n    models: [a]\n"
    assert problems(tmp_path, WHOLE_MAP, catalog) == [
        "8:3 error whole-map-secret | config['llmfleet:apiKeys']: set as one encrypted value (`secure:`), which "
        "llmfleet cannot read as a map of keys: it needs no key for this catalog. Remove it. Run: pulumi config rm "
        "'llmfleet:apiKeys' --stack test",
    ]


def test_the_real_deploy_stack_says_its_vllm_stand_in_runs_on_cpu(tmp_path: Path) -> None:
    # tests/real_deploy.py deploys a vLLM stand-in without a GPU: without `cpu: true` the program
    # would refuse it (gpu-image-without-gpu) before creating anything.
    from tests.images import FleetImages
    from tests.real_deploy import CATALOG as E2E_CATALOG
    from tests.real_deploy import stack_file

    images = FleetImages(*(f"llmfleet-test/{n}:1" for n in ("litellm", "haproxy", "llama", "lcp", "ollama", "vllm")))
    catalog = E2E_CATALOG.format(ports=[1001, 1002, 1003, 1004], ollama_models="tiny-ollama", native_gguf="tiny.gguf",
                                 extra_alias="", pulled_name="tiny-ollama")  # fmt: skip
    stack = (
        stack_file("catalog.yaml", images, tmp_path / "gguf", 4000) + BASE_STACK[BASE_STACK.index("  llmfleet:ma") :]
    )
    fleet = llmfleet.load_fleet(write_project(tmp_path, catalog, stack), "test")
    assert fleet.stack.images.runs_on_cpu("vllm") and fleet.stack.images.ref("vllm") == "llmfleet-test/vllm:1"
    assert [p.rule for p in fleet.warnings] == []
    # The same stack without `cpu: true` is refused, with the form to write.
    plain = stack.replace("{image: llmfleet-test/vllm:1, cpu: true}", "llmfleet-test/vllm:1")
    [problem] = problems_of(write_project(tmp_path, catalog, plain))
    assert (problem.rule, problem.hint.endswith("`{image: llmfleet-test/vllm:1, cpu: true}`.")) == (
        "gpu-image-without-gpu",
        True,
    )


LLAMA_CPP = "providers:\n  cpp:\n    kind: llama_cpp\n    hf: ggml-org/gemma-3-1b-it-GGUF:Q4_K_M\n    alias: gemma\n"
LLAMA_CPP_PYTHON = "providers:\n  py:\n    kind: llama_cpp_python\n    gguf: /models/m.gguf\n    alias: m\n"
CUDA_BUILD = "{build: docker/llama-cpp-python-cuda, tag: 'fleet/lcp:1'}"
GGUF_DIR = "  llmfleet:hosts: {local: {gguf_dir: /srv/models}}\n"


def with_image(kind: str, image: str) -> str:
    """The base stack with `kind`'s image written as `image`, and a GGUF directory."""
    lines = [f"    {kind}: {image}" if line.startswith(f"    {kind}: ") else line for line in BASE_STACK.splitlines()]
    return "\n".join(lines) + "\n" + GGUF_DIR


@pytest.mark.parametrize(
    ("catalog", "kind", "image", "says"),
    [
        (LLAMA_CPP, "llama_cpp", "ghcr.io/ggml-org/llama.cpp:server-cuda-b9628",
         "2:3 error gpu-image-without-gpu | providers.cpp: declares no GPU, but its image "
         "'ghcr.io/ggml-org/llama.cpp:server-cuda-b9628' needs one: llama.cpp's `server-cuda` images are built for "
         "CUDA GPUs. Set `gpus: all` or a list of device ids; or, if the image does run on CPU, say so in the stack: "
         "llmfleet:images.llama_cpp: `{image: ghcr.io/ggml-org/llama.cpp:server-cuda-b9628, cpu: true}`."),
        (LLAMA_CPP, "llama_cpp", "ghcr.io/ggml-org/llama.cpp:server-cuda13",
         "`server-cuda13` images are built for CUDA 13 GPUs"),
        (LLAMA_CPP, "llama_cpp", "ghcr.io/ggml-org/llama.cpp:server-rocm-b9628", "built for ROCm GPUs"),
        (LLAMA_CPP, "llama_cpp", "ghcr.io/ggml-org/llama.cpp:server-vulkan@sha256:" + "a" * 64, "for Vulkan GPUs"),
        (LLAMA_CPP, "llama_cpp", "ghcr.io/ggml-org/llama.cpp:server-intel-b9628", "built for Intel SYCL GPUs"),
        (LLAMA_CPP, "llama_cpp", "ghcr.io/ggml-org/llama.cpp:server-musa-b9628", "built for MUSA GPUs"),
        (LLAMA_CPP_PYTHON, "llama_cpp_python", CUDA_BUILD,
         "2:3 error gpu-image-without-gpu | providers.py: declares no GPU, but its image 'fleet/lcp:1' (built from "
         "docker/llama-cpp-python-cuda) needs one: the image built from docker/llama-cpp-python-cuda is "
         "llama-cpp-python compiled for CUDA. Set `gpus: all` or a list of device ids; or, if the image does run on "
         "CPU, say so in the stack: llmfleet:images.llama_cpp_python: "
         "`{build: docker/llama-cpp-python-cuda, tag: fleet/lcp:1, cpu: true}`."),
        (LLAMA_CPP_PYTHON, "llama_cpp_python", "llmfleet/llama-cpp-python-cuda:0.3.16",
         "llmfleet/llama-cpp-python-cuda is built from docker/llama-cpp-python-cuda, llama-cpp-python compiled "
         "for CUDA."),
    ],
    ids=["cuda", "cuda13", "rocm", "vulkan-digest", "intel", "musa", "cuda-build", "cuda-build-by-hand"],
)  # fmt: skip
def test_a_gpu_image_without_a_gpu_is_an_error_whose_hint_is_the_way_out(
    tmp_path: Path, catalog: str, kind: str, image: str, says: str
) -> None:
    stack = with_image(kind, image)
    [problem] = problems(tmp_path, stack, catalog)
    assert says in problem
    # With a GPU, nothing to say; on CPU by the stack's word, nothing either: the hint's form is accepted.
    assert problems(tmp_path, stack, catalog + "    gpus: all\n") == []
    if "`{" in problem:
        said = problem.split("`")[-2]
        assert problems(tmp_path, stack.replace(f"    {kind}: {image}\n", f"    {kind}: {said}\n"), catalog) == []


@pytest.mark.parametrize(
    "image",
    ["ollama/ollama:0.14.1", "ghcr.io/ggml-org/llama.cpp:server-b9628", "ghcr.io/ggml-org/llama.cpp:server",
     "registry.local:5000/llama.cpp:server-cuda", "ghcr.io/abetlen/llama-cpp-python:v0.3.16"],
)  # fmt: skip
def test_cpu_images_and_images_of_unknown_make_need_no_gpu(tmp_path: Path, image: str) -> None:
    kind = "ollama" if "ollama" in image else "llama_cpp_python" if "python" in image else "llama_cpp"
    catalog = {"ollama": "providers:\n  o: {kind: ollama, models: [q]}\n", "llama_cpp": LLAMA_CPP,
               "llama_cpp_python": LLAMA_CPP_PYTHON}[kind]  # fmt: skip
    assert problems(tmp_path, with_image(kind, image), catalog) == []


def test_a_cpu_key_is_true_or_false_and_ollama_takes_a_reference_only(tmp_path: Path) -> None:
    stack = BASE_STACK.replace(
        "    vllm: vllm/vllm-openai:v0.18.0\n", "    vllm: {image: vllm/vllm-openai:v0.18.0, cpu: 'yes'}\n"
    )
    stack = stack.replace(
        "    ollama: ollama/ollama:0.14.1\n", "    ollama: {image: ollama/ollama:0.14.1, cpu: true}\n"
    )
    assert problems(tmp_path, stack, "providers:\n  o: {kind: ollama, models: [q]}\n") == [
        "4:5 error schema-value-error | config['llmfleet:images'].ollama: Ollama's one image serves on CPU and GPU "
        "alike, so it takes no settings: give the reference only (ollama: ollama/ollama:0.14.1).",
        "5:45 error schema-bool-type | config['llmfleet:images'].vllm.cpu: expected true or false, got the text 'yes'. "
        "Write true or false.",
    ]


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("true", "YAML reads `true` as the boolean true, not as a number. Write a number, e.g. gpu_memory_gib: 80."),
        (
            "'80'",
            "'80' is in quotes, so YAML reads it as text, not as a number. Remove the quotes: gpu_memory_gib: 80.",
        ),
        ("0", "must be greater than 0"),
        (".inf", "expected a finite number"),
    ],
)
def test_a_hosts_gpu_memory_is_a_number_of_gib_never_a_boolean_or_text(tmp_path: Path, written: str, says: str):
    stack = BASE_STACK + f"  llmfleet:hosts: {{local: {{gpu_memory_gib: {written}}}}}\n"
    [problem] = problems(tmp_path, stack)
    assert problem.startswith("13:28 error schema-") and "config['llmfleet:hosts'].local.gpu_memory_gib: " in problem
    assert says in problem


def test_the_share_beside_an_ollama_server_is_taken_on_the_gpu_it_shares_least(tmp_path: Path) -> None:
    from llmfleet._checks_gpus import shares_beside

    catalog = """\
providers:
  listed: {kind: ollama, models: [a], gpus: [0, 1], gpu_memory_budget: 0.2}
  every: {kind: ollama, port: 11435, models: [b], gpus: all, gpu_memory_budget: 0.1}
  vllm: {kind: vllm, model: org/m, served_name: v, gpus: [0], gpu_memory_utilization: 0.5}
  cpp: {kind: llama_cpp, hf: org/r, alias: c, gpus: [1], gpu_memory_budget: 0.3}
  cpu: {kind: llama_cpp, port: 8081, hf: org/r, alias: d, gpu_memory_budget: 0.4}
"""
    fleet = llmfleet.load_fleet(write_project(tmp_path, catalog, BASE_STACK), "test")
    # GPU 0: vllm 0.5 + every 0.1; GPU 1: cpp 0.3 + every 0.1: the least is GPU 1's 0.4 (a server
    # without GPUs counts nowhere).
    assert shares_beside(fleet.catalog, fleet.stack, "listed") == pytest.approx(0.4)
    # `gpus: all` may include a GPU nobody lists: only servers on every GPU count.
    assert shares_beside(fleet.catalog, fleet.stack, "every") == 0.0


def test_a_host_address_is_an_ip_address_to_reach(tmp_path: Path) -> None:
    """Docker publishes a port on an IP address only and reads anything else (a host name too) as every
    interface, so a name would expose a remote backend on all of them; 0.0.0.0 is no address to reach."""
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    local: {}
    gpu-1: {docker: "ssh://ops@gpu-1", address: gpu-1.lan}
    gpu-2: {docker: "ssh://ops@gpu-2", address: 0.0.0.0}
  llmfleet:providers:
    vllm: {host: gpu-1}
    ollama: {host: gpu-2}
"""
    )
    assert problems(tmp_path, stack) == [
        "15:40 error schema-value-error | config['llmfleet:hosts'].gpu-1.address: 'gpu-1.lan' is not an IP "
        "address: a backend on this host is published on it, and Docker reads a name as every interface "
        "(0.0.0.0), which would expose it beyond the gateway. Give the host's IP address on the network the "
        "gateway reaches it through.",
        "16:40 error schema-value-error | config['llmfleet:hosts'].gpu-2.address: '0.0.0.0' is every interface, "
        "not an address to reach: a backend on this host would be published on all of them. Give the host's IP "
        "address on the network the gateway reaches it through.",
    ]


def test_a_loopback_address_is_not_reached_by_the_gateway(tmp_path: Path) -> None:
    """The gateway runs in a container: its 127.0.0.1 is its own, so a backend published on another
    host's loopback is never reached (seen with two real engines on one machine)."""
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    local: {}
    gpu-1: {docker: "ssh://ops@gpu-1", address: 127.0.0.1}
  llmfleet:providers:
    vllm: {host: gpu-1}
    ollama: {host: gpu-1}
"""
    )
    assert problems(tmp_path, stack) == [
        "15:40 warning loopback-address | config['llmfleet:hosts'].gpu-1.address: '127.0.0.1' is a loopback "
        "address: provider 'ollama' on 'gpu-1' is published there, and the gateway, in a container, reaches its "
        "own loopback, never a host's (even on one machine). Set llmfleet:hosts.gpu-1.address to the IP address "
        "of 'gpu-1' on the network the gateway's host reaches it through."
    ]


def test_an_ipv6_address_is_bracketed_in_urls(tmp_path: Path) -> None:
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    local: {}
    gpu-1: {docker: "ssh://ops@gpu-1", address: "fd00::12"}
  llmfleet:providers:
    vllm: {host: gpu-1}
"""
    )
    write_project(tmp_path, CATALOG, stack)
    fleet = llmfleet.load_fleet(tmp_path, "test")
    assert llmfleet.backend_root(fleet, "vllm") == "http://[fd00::12]:8000"
    assert llmfleet.backend_urls(fleet)["vllm"] == "http://[fd00::12]:8000"
