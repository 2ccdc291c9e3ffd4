"""Input written to hurt, or by mistake, that the corpus files cannot hold: every case gets a
located problem, never a traceback, a hang, a gigabyte or a read outside the project."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

import llmfleet
from llmfleet._yaml import MAX_ALIAS_NODES, MAX_DEPTH, parse_yaml

from .fleetdir import BASE_STACK, fleet_of, problems_of, short, write_project

VALID = "providers:\n  ollama:\n    kind: ollama\n    models: [m]\n"


def alias_bomb(levels: int) -> str:
    """The "billion laughs": each level lists the previous one nine times (9**levels values)."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("providers:\n  ollama:\n    kind: ollama\n    models: *a" + str(levels - 1))
    return "\n".join(lines) + "\n"


def only(problems: list[llmfleet.Problem]) -> llmfleet.Problem:
    assert len(problems) == 1, [p.format() for p in problems]
    return problems[0]


def test_alias_bomb_is_refused_where_it_expands_with_little_memory(tmp_path: Path) -> None:
    write_project(tmp_path, alias_bomb(9))  # 387 million values once expanded
    tracemalloc.start()
    try:
        problem = only(problems_of(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problem.rule == "yaml-alias"
    assert f"expand to more than {MAX_ALIAS_NODES:,} values" in problem.message
    assert problem.file == "config/catalog.yaml" and problem.line > 1
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_aliases_used_modestly_still_load(tmp_path: Path) -> None:
    catalog = "x-models: &m [a, b]\nproviders:\n  one: {kind: ollama, models: *m}\n"
    assert fleet_of(catalog, tmp_path).catalog.providers["one"].served_names == ["a", "b"]


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 995, 999, 20_000])
def test_any_nesting_is_a_located_error_not_a_crash(tmp_path: Path, levels: int) -> None:
    write_project(tmp_path, "providers: " + "[" * levels + "]" * levels + "\n")
    problem = only(problems_of(tmp_path))
    assert (problem.rule, problem.line) == ("yaml-depth", 1)
    block = "".join("  " * i + f"k{i}:\n" for i in range(min(levels, 2000)))
    write_project(tmp_path, block)
    assert only(problems_of(tmp_path)).rule == "yaml-depth"


def test_nesting_through_a_chain_of_aliases_is_bounded(tmp_path: Path) -> None:
    # Shallow in the text, 2,000 deep once expanded: the bound counts aliases too.
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 2000)]
    write_project(tmp_path, "\n".join(lines) + "\n" + VALID)
    problem = only(problems_of(tmp_path))
    assert problem.rule == "yaml-depth" and "counting aliases" in problem.message


def test_merge_keys_chained_deep_or_wide_are_bounded(tmp_path: Path) -> None:
    deep = ["m0: &m0 {a: 1}"] + [f"m{i}: &m{i} {{<<: *m{i - 1}, b{i}: 1}}" for i in range(1, 500)]
    write_project(tmp_path, "\n".join(deep) + "\n" + VALID)
    assert only(problems_of(tmp_path)).rule == "yaml-depth"
    wide = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4}"] + [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, 30)]
    write_project(tmp_path, "\n".join(wide) + "\n" + VALID)
    assert only(problems_of(tmp_path)).rule in {"yaml-alias", "yaml-depth"}


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    write_project(tmp_path, "providers: &p\n  ollama: {kind: ollama, models: [m]}\n  loop: *p\n")
    problem = only(problems_of(tmp_path))
    assert (problem.rule, problem.line, problem.col) == ("yaml-alias", 3, 9)


@pytest.mark.parametrize("char", ["\0", "\x07", "\x1b", "\x7f", "\ufffe"])
def test_control_characters_are_reported_at_their_line_in_one_line(tmp_path: Path, char: str) -> None:
    write_project(tmp_path, f"providers:\n  ollama:\n    kind: ollama\n    models: [a{char}b]\n")
    problem = only(problems_of(tmp_path))
    assert (problem.rule, problem.line, problem.col) == ("yaml-character", 4, 15)
    assert f"U+{ord(char):04X}" in problem.message
    assert "\n" not in problem.format()


def test_a_file_that_is_not_utf8_says_so_at_its_location(tmp_path: Path) -> None:
    write_project(tmp_path, VALID)
    (tmp_path / "config" / "catalog.yaml").write_bytes(b"providers:\n  ollama:\n    models: [caf\xe9]\n")
    problem = only(problems_of(tmp_path))
    assert (problem.file, problem.rule, problem.line, problem.col) == ("config/catalog.yaml", "not-utf8", 3, 17)
    assert "0xE9" in problem.message and "Save the file as UTF-8" in problem.hint
    (tmp_path / "config" / "catalog.yaml").write_text(VALID, encoding="utf-16")
    assert only(problems_of(tmp_path)).rule == "not-utf8"


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    write_project(tmp_path, VALID)
    (tmp_path / "config" / "catalog.yaml").write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert problems_of(tmp_path) == []


def test_merge_keys_are_accepted_and_explicit_keys_win(tmp_path: Path) -> None:
    catalog = """\
x-gpu: &gpu
  gpus: [0]
  gpu_memory_budget: 0.3
  port: 9000
providers:
  cpp:
    <<: *gpu
    kind: llama_cpp
    hf: org/repo
    alias: c
    port: 9001
  other:
    <<: [*gpu, {context_length: 4096}]
    kind: llama_cpp_python
    gguf: /models/x.gguf
    alias: d
"""
    fleet = fleet_of(catalog, tmp_path)
    cpp, other = fleet.catalog.providers["cpp"], fleet.catalog.providers["other"]
    assert (cpp.gpus, cpp.gpu_memory_budget, cpp.port) == ([0], 0.3, 9001)
    assert (other.port, other.context_length) == (9000, 4096)
    source = parse_yaml(catalog, "c.yaml").source
    assert source.locate(("providers", "cpp", "port")) == (11, 5)  # its own line, not the default's
    assert source.locate(("providers", "cpp", "gpus")) == (7, 5)  # where the defaults are merged in


def stack_with(catalog_path: str = "config/catalog.yaml", extra: str = "") -> str:
    return BASE_STACK.replace("llmfleet:catalog: config/catalog.yaml", f"llmfleet:catalog: {catalog_path}") + extra


@pytest.mark.parametrize("where", ["../outside.yaml", "/etc/passwd", "config/../../outside.yaml", "config/link.yaml"])
def test_a_catalog_outside_the_project_is_refused_and_not_read(tmp_path: Path, where: str) -> None:
    project = tmp_path / "project"
    outside = tmp_path / "outside.yaml"
    outside.write_text("this: [is not: valid yaml\n")  # reading it would add a yaml-syntax problem
    write_project(project, VALID, stack_with(where))
    os.symlink(outside, project / "config" / "link.yaml")
    problem = only(problems_of(project))
    assert (problem.file, problem.rule, problem.line) == ("stacks/Pulumi.test.yaml", "path-outside-project", 2)
    assert where in problem.message


def test_a_build_context_outside_the_project_is_refused(tmp_path: Path) -> None:
    stack = BASE_STACK.replace(
        "    llama_cpp_python: ghcr.io/abetlen/llama-cpp-python:v0.3.16\n",
        "    llama_cpp_python:\n      build: ../../somewhere\n",
    )
    write_project(tmp_path, VALID, stack)
    assert [short(p) for p in problems_of(tmp_path)] == [
        "8:7 error path-outside-project | config['llmfleet:images'].llama_cpp_python.build: '../../somewhere' is "
        "outside the project directory. Give a path inside the project, relative to it (e.g. config/catalog.yaml)."
    ]


@pytest.mark.parametrize("stack", ["../test", "x/../../test", "/etc/passwd", ".hidden", ""])
def test_a_stack_name_is_never_a_path(tmp_path: Path, stack: str) -> None:
    write_project(tmp_path, VALID)
    with pytest.raises(llmfleet.ConfigError) as exc:
        llmfleet.load_fleet(tmp_path, stack)
    assert [p.rule for p in exc.value.problems] == ["unknown-stack"]
    assert "Known stacks: test." in exc.value.problems[0].hint


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    write_project(tmp_path, VALID)
    with open(tmp_path / "config" / "catalog.yaml", "ab") as fh:
        fh.truncate(17 * 2**20)
    assert only(problems_of(tmp_path)).rule == "file-too-large"


def test_a_directory_as_the_catalog_is_reported_at_the_stack_line_naming_it(tmp_path: Path) -> None:
    write_project(tmp_path, VALID, stack_with("config"))
    assert only(problems_of(tmp_path)).format() == (
        "stacks/Pulumi.test.yaml:2:3: error: config['llmfleet:catalog']: catalog 'config' is a directory, not a "
        "file. Give a catalog file inside it: config/catalog.yaml. (catalog-not-a-file)"
    )
    (tmp_path / "empty").mkdir()
    write_project(tmp_path, VALID, stack_with("empty/"))
    assert only(problems_of(tmp_path)).hint == (
        "Give the path of a catalog file (.yaml), relative to the project directory."
    )


@pytest.mark.parametrize(
    ("named", "present", "hint"),
    [
        ("config/dev.yaml", "dev.yml", "Did you mean config/dev.yml?"),
        ("config/dev.yml", "dev.yaml", "Did you mean config/dev.yaml?"),
        ("config/prdo.yaml", "prod.yaml", "Did you mean config/prod.yaml?"),
        ("config/dev.yaml", "unrelated.txt", "Give a path relative to the project directory."),
        ("nowhere/dev.yaml", "dev.yml", "Give a path relative to the project directory."),
    ],
)
def test_a_missing_catalog_names_the_file_nearby(tmp_path: Path, named: str, present: str, hint: str) -> None:
    write_project(tmp_path, VALID, stack_with(named))
    (tmp_path / "config" / "catalog.yaml").unlink()
    (tmp_path / "config" / present).write_text(VALID)
    assert short(only(problems_of(tmp_path))) == (
        f"2:3 error missing-file | config['llmfleet:catalog']: catalog '{named}' not found. {hint}"
    )


def test_stack_keys_in_the_wrong_file_or_place_say_where_they_go(tmp_path: Path) -> None:
    extra = "  llmfleet:routes: {}\n  llmfleet:gateway: {prot: 4000}\n  llmfleet:hosts:\n    gpu1: {bind: 0.0.0.0}\n"
    write_project(tmp_path, VALID, BASE_STACK + extra)
    assert [short(p) for p in problems_of(tmp_path)] == [
        "13:3 error schema-extra-forbidden | config['llmfleet:routes']: unknown key 'llmfleet:routes'. "
        "`routes` belongs in the catalog file, under the top level.",
        "14:22 error schema-extra-forbidden | config['llmfleet:gateway'].prot: unknown key 'prot'. "
        "Did you mean 'port'?",
        "16:12 error schema-extra-forbidden | config['llmfleet:hosts'].gpu1.bind: unknown key 'bind'. "
        "`bind` belongs under `llmfleet:gateway`.",
    ]


def test_yaml_misreadings_in_the_stack_file_are_explained(tmp_path: Path) -> None:
    extra = "  llmfleet:hosts:\n    on: {}\n  llmfleet:gateway: {host: no}\n"
    write_project(tmp_path, VALID, BASE_STACK + extra)
    found = [short(p) for p in problems_of(tmp_path)]
    assert found == [
        "14:5 error yaml-not-a-name | config['llmfleet:hosts'].on: YAML reads the key `on` as the boolean true, "
        "not as a name. Quote it: 'on'.",
        "15:22 error schema-string-type | config['llmfleet:gateway'].host: YAML reads `no` as the boolean false, "
        "not as a name. Quote it: 'no'.",
    ]


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("providers:\n\tollama:\n    kind: ollama\n    models: [m]\n", (2, 1)),
        ("providers:\n  ollama:\n    \tkind: ollama\n    models: [m]\n", (3, 5)),
        ("providers:\n  ollama:\n    kind: ollama\n    models:\n      - a\n \t    - b\n", (6, 2)),
    ],
)
def test_a_tab_in_the_indentation_is_called_a_tab_at_its_place(tmp_path: Path, text: str, at: tuple) -> None:
    write_project(tmp_path, text)
    assert only(problems_of(tmp_path)).format() == (
        f"config/catalog.yaml:{at[0]}:{at[1]}: error: (document): a tab character in the indentation: YAML indents "
        "with spaces. Replace the tab with spaces. (yaml-tab)"
    )


def test_a_tab_between_values_is_fine(tmp_path: Path) -> None:
    write_project(tmp_path, "providers:\n  ollama:\n    kind:\tollama\n    models: [a,\tb]\n")
    assert problems_of(tmp_path) == []


def _loop(path: Path) -> Path:
    os.symlink(path.name, path)
    return path


# (setup of the project, argv after --project-dir, LITELLM_MASTER_KEY, exit code, what the one error line says).
# Each of these once crashed (exit 3), or was taken silently for something else ('' as '.').
HOSTILE_CLI = {
    "project-dir-empty": (None, ["validate"], "k", 64, "argument --project-dir: an empty path: give a file or"),
    "project-dir-nul": (None, ["validate"], "k", 64, "argument --project-dir: 'a\\x00b' contains a NUL character"),
    "project-dir-too-long": (None, ["validate"], "k", 64, "cannot be used: File name too long"),
    "project-dir-symlink-loop": (None, ["validate"], "k", 64, "cannot be used: Too many levels of symbolic links"),
    "diff-against-empty": ("ok", ["models", "--stack", "test", "--diff-against", ""], "k", 64,
                           "argument --diff-against: an empty path"),
    "output-empty": ("ok", ["drift", "--stack", "test", "--output", ""], "k", 64, "argument --output: an empty path"),
    "url-newline": ("ok", ["drift", "--stack", "test", "--url", "http://127.0.0.1:4000\n"], "k", 64,
                    "'http://127.0.0.1:4000\\n' contains a space or a control character"),
    "url-space": ("ok", ["probe", "--stack", "test", "--url", "http://127.0.0.1:4000/ v1"], "k", 64,
                  "contains a space or a control character"),
    "url-nul": ("ok", ["drift", "--stack", "test", "--url", "http://\0:80"], "k", 64, "contains a space or a control"),
    "url-bad-ipv4": ("ok", ["probe", "--stack", "test", "--url", "http://999.999.999.999:4000"], "k", 64,
                     "'http://999.999.999.999:4000' is not a usable URL: Invalid IPv4 address: '999.999.999.999'"),
    "url-empty-fragment": ("ok", ["drift", "--stack", "test", "--url", "http://127.0.0.1:4000#"], "k", 64,
                           "has a query or fragment"),
    "url-port-only": ("ok", ["drift", "--stack", "test", "--url", ":abc"], "k", 64, "is not an http:// or https://"),
    "url-ftp": ("ok", ["probe", "--stack", "test", "--url", "ftp://x"], "k", 64, "is not an http:// or https:// URL"),
    "url-empty": ("ok", ["drift", "--stack", "test", "--url", ""], "k", 64, "'' is not an http:// or https:// URL"),
    "timeout-overflow": ("ok", ["drift", "--stack", "test", "--timeout", "1e309"], "k", 64,
                         "'1e309' is not a usable number of seconds"),
    "timeout-empty": ("ok", ["probe", "--stack", "test", "--timeout", ""], "k", 64, "'' is not a number of seconds"),
    "timeout-hex": ("ok", ["probe", "--stack", "test", "--deadline", "0x10"], "k", 64, "'0x10' is not a number"),
    "key-env-empty": ("ok", ["probe", "--stack", "test", "--key-env", ""], "k", 64,
                      "argument --key-env: '' is not an environment variable name"),
    "key-env-assignment": ("ok", ["drift", "--stack", "test", "--key-env", "A=B"], "k", 64,
                           "'A=B' is not an environment variable name"),
    "catalog-nul": ('catalog:"a\\0b"', ["validate"], "k", 1,
                    "config['llmfleet:catalog']: 'a\\x00b' contains a NUL character. Give a path inside the project"),
    "catalog-symlink-loop": ("catalog:config/loop.yaml", ["render", "--stack", "test"], "k", 1,
                             "config['llmfleet:catalog']: 'config/loop.yaml' is a symlink loop."),
    "catalog-empty-path": ("catalog:''", ["models", "--stack", "test"], "k", 1,
                           "config['llmfleet:catalog']: must not be empty. Give a value. (schema-string-too-short)"),
    "catalog-path-too-long": ("catalog:" + "a/" * 3000 + "c.yaml", ["validate"], "k", 1,
                              "cannot read the file: File name too long"),
    "build-context-nul": ("stack:  llmfleet:images: {llama_cpp_python: {build: \"a\\0b\"}}", ["validate"], "k", 1,
                          "llama_cpp_python.build: 'a\\x00b' contains a NUL character"),
    "gateway-bind-not-an-ip": ("stack:  llmfleet:gateway: {bind: not an ip}", ["drift", "--stack", "test"], "k", 1,
                               "config['llmfleet:gateway'].bind: 'not an ip' is not an IP address"),
    "number-too-long": ("catalog-text:    context_length: " + "9" * 5000, ["probe", "--stack", "test"], "k", 1,
                        "a number of 5,000 characters is more than can be read. Shorten it"),
    "binary-catalog": ("binary", ["validate"], "k", 1, "the file is not UTF-8 text"),
    "stack-file-is-a-directory": ("stack-dir", ["render", "--stack", "test"], "k", 1,
                                  "cannot read the file: Is a directory"),
    "key-non-ascii": ("ok", ["drift", "--stack", "test", "--url", "http://127.0.0.1:9"], "ключ", 1,
                      "no usable master key: the environment variable LITELLM_MASTER_KEY holds a character an HTTP "
                      "header cannot carry"),
    "key-newline": ("ok", ["probe", "--stack", "test", "--url", "http://127.0.0.1:9"], "sk-a\nb", 1,
                    "no usable master key: the environment variable LITELLM_MASTER_KEY holds a character"),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE_CLI, ids=list(HOSTILE_CLI))
def test_hostile_command_lines_never_crash_and_say_why_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    from llmfleet._cli import main

    setup, argv, key, code, says = HOSTILE_CLI[case]
    monkeypatch.setenv("LITELLM_MASTER_KEY", key)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    project = write_project(tmp_path / "project", VALID)
    if setup is None:
        project = {"project-dir-empty": "", "project-dir-nul": "a\0b", "project-dir-too-long": "x" * 5000,
                   "project-dir-symlink-loop": _loop(tmp_path / "loop")}[case]  # fmt: skip
    elif setup.startswith("catalog:"):
        write_project(project, VALID, stack_with(setup.removeprefix("catalog:")))
        _loop(project / "config" / "loop.yaml")
    elif setup.startswith("stack:"):
        write_project(project, VALID, BASE_STACK + setup.removeprefix("stack:") + "\n")
    elif setup.startswith("catalog-text:"):
        write_project(project, VALID + setup.removeprefix("catalog-text:") + "\n")
    elif setup == "binary":
        (project / "config" / "catalog.yaml").write_bytes(bytes(range(256)) * 16)
    elif setup == "stack-dir":
        (project / "stacks" / "Pulumi.test.yaml").unlink()
        (project / "stacks" / "Pulumi.test.yaml").mkdir()
    exit_code = main(["--project-dir", str(project), *argv])
    out, err = capsys.readouterr()
    assert exit_code == code != 3, err
    assert "Traceback" not in out + err and "crashed" not in err
    said = [line for line in (err + out).splitlines() if says in line]
    assert said, out + err  # said on one line, not spread over several
    assert key not in out + err or key == "k"


def test_an_unreadable_catalog_says_so_at_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As root every file is readable: the refusal is the OS's, raised where the file is read.
    write_project(tmp_path, VALID)
    real = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path.name == "catalog.yaml":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert only(problems_of(tmp_path)).format() == (
        "config/catalog.yaml:1:1: error: (document): cannot read the file: Permission denied. Check that it is a "
        "readable file. (unreadable-file)"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # A whole number cannot be .nan or .inf at all: the strict schema says what YAML read.
        ("    context_length: .nan\n", "5:5 error schema-int-type | providers.ollama.context_length: YAML reads `.nan` "
         "as the number nan, not as a whole number. Write a whole number, e.g. context_length: 8192."),
        # A fraction can be a float, not an infinite one (nor a NaN, which compares with nothing).
        ("    gpu_memory_budget: .inf\n", "5:5 error schema-finite-number | providers.ollama.gpu_memory_budget: "
         "expected a finite number, got the number inf. Write a number, e.g. gpu_memory_budget: 0.5."),
    ],
)  # fmt: skip
def test_a_number_that_is_not_finite_is_called_so(tmp_path: Path, line: str, expected: str) -> None:
    write_project(tmp_path, VALID + line)
    assert short(only(problems_of(tmp_path))) == expected
