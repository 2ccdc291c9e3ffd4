import subprocess
import sys

import llmfleet


def test_all_lists_every_public_name_and_each_resolves() -> None:
    assert llmfleet.__all__ == sorted(llmfleet._EXPORTS)
    for name in llmfleet.__all__:
        assert getattr(llmfleet, name) is not None, name
    public = {n for n in dir(llmfleet) if not n.startswith("_") and type(getattr(llmfleet, n)).__name__ != "module"}
    assert public == set(llmfleet.__all__)


def test_importing_the_package_loads_neither_httpx_nor_pydantic() -> None:
    heavy = "('httpx', 'pydantic', 'yaml', 'pulumi', 'litellm')"
    code = f"import sys, llmfleet; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
