"""The layers of docs/design.md: every import in the library points down (or sideways), and
reading a cache or making an env pulls in neither torch, SciPy, SB3 nor the generator (the
first reset does import torch: it computes the recognizer's log-normalizers with it, once per
cache and process)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from helpers import REPO

#: module prefix -> layer (the longest matching prefix wins); docs/design.md, "Layers"
LAYERS = {
    "adaframe_env.metrics": 0,
    "adaframe_env.distributed": 0,
    "adaframe_env.data": 1,
    "adaframe_env.build": 2,
    "adaframe_env": 3,  # the env layer: the package's own top-level modules
    "adaframe_env.protocol": 4,
    "baselines": 5.0,
    "agents": 5.5,  # may use baselines' frame samplers; baselines never import agents
    "adaframe_env.harness": 6,
    "adaframe_env.cli": 7,
}
PACKAGES = ("adaframe_env", "agents", "baselines")


def layer(module: str) -> float | None:
    best = None
    for prefix, value in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, value)
    return None if best is None else best[1]


def imports_of(path, module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement in the file, lazy ones included."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.append((name, node.lineno))
            # ``from adaframe_env import distributed`` imports the submodule
            found += [(f"{name}.{alias.name}", node.lineno) for alias in node.names]
    return found


def library_modules():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_library_module_has_a_layer():
    assert [m for _, m in library_modules() if layer(m) is None] == []


def test_no_module_imports_a_higher_layer():
    upward = []
    for path, module in library_modules():
        mine = layer(module)
        for name, line in imports_of(path, module):
            theirs = layer(name) if name.split(".")[0] in PACKAGES else None
            # the package itself (``adaframe_env``) is imported by every submodule's import
            if theirs is not None and theirs > mine and name != "adaframe_env":
                upward.append(f"{path.relative_to(REPO)}:{line} ({mine}) imports {name} ({theirs})")
    assert upward == []


def inserts_into_sys_path(path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        f = node.func if isinstance(node, ast.Call) else None
        if isinstance(f, ast.Attribute) and f.attr in ("insert", "append"):
            v = f.value
            if (
                isinstance(v, ast.Attribute)
                and v.attr == "path"
                and getattr(v.value, "id", "") == "sys"
            ):
                return True
    return False


def test_scripts_are_not_imported_and_put_nothing_on_sys_path():
    offenders = []
    for folder in ("adaframe_env", "agents", "baselines", "benchmarks", "research", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            if inserts_into_sys_path(path) and path.name != "registry.py":  # registry: a user's
                offenders.append(str(path.relative_to(REPO)))  # package.module:factory, as -m
            for name, _ in imports_of(path, path.stem):
                if name and name.split(".")[0] in ("benchmarks", "research"):
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


HEAVY = ("torch", "scipy", "stable_baselines3", "sklearn", "adaframe_env.build.synth")


@pytest.mark.slow
def test_reading_a_cache_and_making_an_env_import_nothing_heavy(tiny_cache):
    code = f"""
import json, sys
import adaframe_env
after_import = [m for m in {HEAVY!r} if m in sys.modules]
import gymnasium as gym
env = gym.make("AdaFrame-FCVID-v0", data={str(tiny_cache)!r}, split="test")
store = adaframe_env.FeatureStore({str(tiny_cache)!r})
print(json.dumps([after_import, [m for m in {HEAVY!r} if m in sys.modules]]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    after_import, after_env = json.loads(out.stdout.strip().splitlines()[-1])
    assert after_import == [] and after_env == []
