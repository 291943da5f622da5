"""Does every component of a compiled KFP template get the imports it uses where it runs?

A lightweight component runs its function's source in its `base_image`, after KFP's bootstrap
has pip-installed its `packages_to_install` and then `kfp` itself. So what it can import is: the
standard library, what the image ships, its install list, and kfp. `import_gaps(spec)` reads
each executor of a compiled template (the YAML `deploymentSpec`), parses the function source
with `ast`, and lists the third-party imports none of those provide; `compile.py` refuses to
write a template that has any, and a test checks the shipped one.

The two tables below are checked by hand (sources in the comments); a test checks
`DISTRIBUTION_IMPORTS` against the installed distributions' own metadata.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Image -> the top-level import names it provides beyond the standard library. An image that is
# not listed is taken to provide none: its components' install lists must cover them.
IMAGE_IMPORTS: dict[str, frozenset[str]] = {
    # The Docker Official Image: CPython 3.11 with pip on Debian slim, no other Python packages
    # (https://hub.docker.com/_/python, "slim" variant). Its glibc (>= 2.36) runs the
    # manylinux_2_28 cp311 wheels of pandas, scikit-learn and pyarrow.
    "python:3.11-slim": frozenset(),
}

# Distribution (as an install list names it) -> the top-level import names it installs, from
# each wheel's top_level / RECORD (importlib.metadata.packages_distributions()).
DISTRIBUTION_IMPORTS: dict[str, frozenset[str]] = {
    "pandas": frozenset({"pandas"}),
    "scikit-learn": frozenset({"sklearn"}),
    "pyarrow": frozenset({"pyarrow"}),
    "numpy": frozenset({"numpy"}),
    "scipy": frozenset({"scipy"}),
    "joblib": frozenset({"joblib"}),
    # KFP's bootstrap installs it into every lightweight component, after the install list
    # (`pip install kfp==<compiling version> --no-deps`, from PyPI at run time unless the image
    # already has that version). With `_KFP_RUNTIME=true`, as the executor runs it, kfp's runtime
    # imports only the standard library, so `--no-deps` is enough.
    "kfp": frozenset({"kfp"}),
    "typing-extensions": frozenset({"typing_extensions"}),
}

_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ExecutorImports:
    executor: str  # the deploymentSpec executor, e.g. exec-train
    function: str  # the component's Python function
    image: str
    packages: tuple[str, ...]  # requirements its bootstrap pip-installs, kfp's last
    imports: frozenset[str]  # top-level names the component's module imports

    @property
    def third_party(self) -> frozenset[str]:
        return frozenset(
            name for name in self.imports if name not in sys.stdlib_module_names | {"__future__"}
        )

    @property
    def provided(self) -> frozenset[str]:
        provided = set(IMAGE_IMPORTS.get(self.image, frozenset()))
        for requirement in self.packages:
            provided |= DISTRIBUTION_IMPORTS.get(distribution_name(requirement), frozenset())
        return frozenset(provided)

    @property
    def missing(self) -> frozenset[str]:
        return self.third_party - self.provided

    @property
    def unknown_packages(self) -> tuple[str, ...]:
        """Install-list entries this table cannot say the imports of."""
        return tuple(p for p in self.packages if distribution_name(p) not in DISTRIBUTION_IMPORTS)


def distribution_name(requirement: str) -> str:
    """`scikit-learn>=1.9,<2` -> `scikit-learn` (lower case, `_` and `.` as `-`, as PEP 503)."""
    match = _REQUIREMENT_NAME.match(requirement.strip())
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else requirement


def module_imports(source: str) -> frozenset[str]:
    """Top-level names of every `import` / `from ... import` in `source` (relative ones skipped)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return frozenset(names)


def function_imports(source: str, function: str) -> frozenset[str]:
    """The imports inside `function`'s body only (not the module around it)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return module_imports(ast.unparse(node))
    raise ValueError(f"no function {function!r} in the component source")


def bootstrap_packages(install_script: str) -> tuple[str, ...]:
    """The requirements of every `pip install` in a KFP bootstrap script, options left out."""
    words = shlex.split(install_script)
    packages: list[str] = []
    for index, word in enumerate(words):
        if word != "install" or index == 0 or words[index - 1] != "pip":
            continue
        for argument in words[index + 1 :]:
            if argument in ("&&", "||", ";") or argument.startswith("&&"):
                break
            if not argument.startswith("-"):
                packages.append(argument)
    return tuple(packages)


def executor_imports(name: str, executor: Mapping[str, Any]) -> ExecutorImports:
    """One lightweight-component executor of a compiled template, read."""
    container = executor["container"]
    command: list[str] = list(container.get("command") or [])
    args: list[str] = list(container.get("args") or [])
    if "--function_to_execute" not in args or len(command) < 2:
        raise ValueError(f"executor {name} is not a lightweight Python component")
    function = args[args.index("--function_to_execute") + 1]
    source = command[-1]  # KFP puts the component's module last
    scripts = [part for part in command[:-1] if "pip install" in part]
    packages = tuple(p for script in scripts for p in bootstrap_packages(script))
    return ExecutorImports(
        executor=name,
        function=function,
        image=str(container.get("image", "")),
        packages=packages,
        imports=module_imports(source),
    )


def template_executors(spec: Mapping[str, Any]) -> list[ExecutorImports]:
    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    return [executor_imports(name, executors[name]) for name in sorted(executors)]


def import_gaps(spec: Mapping[str, Any]) -> list[str]:
    """One line per executor whose third-party imports its image and install list do not provide
    (or whose install list names a distribution `DISTRIBUTION_IMPORTS` does not know)."""
    gaps = []
    for executor in template_executors(spec):
        if executor.missing:
            gaps.append(
                f"{executor.executor} ({executor.function}) imports "
                f"{', '.join(sorted(executor.missing))}, which its image {executor.image!r} "
                f"and its packages_to_install {list(executor.packages)} do not provide: add them "
                "to the component's packages_to_install, or use an image listed in "
                "mlrelay.kfp_components.component_imports.IMAGE_IMPORTS that has them"
            )
        if executor.unknown_packages:
            gaps.append(
                f"{executor.executor} ({executor.function}) installs "
                f"{list(executor.unknown_packages)}, whose import names are not known: add them "
                "to mlrelay.kfp_components.component_imports.DISTRIBUTION_IMPORTS"
            )
    return gaps
