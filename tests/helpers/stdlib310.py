"""Run by a CPython 3.10 interpreter: does every module of the package parse, and does
every standard-library name it uses exist, in Python 3.10?

Usage: python3.10 stdlib310.py FOLDER...  Prints one line per problem; exits 1 if any.
Imports guarded by ``if sys.version_info ...`` are skipped (that is how 3.11-only
modules are used), and third-party packages are not checked (their own wheels say
which Pythons they support).
"""

import ast
import glob
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

STDLIB = sys.stdlib_module_names | {"tomllib"}  # and the modules added after 3.10


def find() -> str | None:
    """A CPython 3.10 on this machine (python3.10 on PATH, Debian's, or pyenv's), if any."""
    candidates = [shutil.which("python3.10"), "/usr/bin/python3.10"]
    candidates += sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.10*/bin/python3.10")))
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except OSError:
            continue
        if done.stdout.strip() == "True":
            return candidate
    return None


def guarded(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    return skip


def has(module: str, name: str) -> bool:
    mod = importlib.import_module(module)
    if hasattr(mod, name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
        return True
    except ImportError:
        return False


def problems(path: Path) -> list[str]:
    source = path.read_text()
    try:
        tree = ast.parse(source, str(path), feature_version=(3, 10))
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        return [f"{path}:{exc.lineno}: not Python 3.10 syntax: {exc.msg}"]
    skip = guarded(tree)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top not in STDLIB:
                    continue
                try:
                    importlib.import_module(alias.name)
                except ImportError:
                    found.append(f"{path}:{node.lineno}: no module {alias.name} in Python 3.10")
                    continue
                aliases[alias.asname or top] = alias.asname and alias.name or top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in STDLIB or node.module == "__future__":
                continue
            try:
                importlib.import_module(node.module)
            except ImportError:
                found.append(f"{path}:{node.lineno}: no module {node.module} in Python 3.10")
                continue
            for alias in node.names:
                if not has(node.module, alias.name):
                    found.append(f"{path}:{node.lineno}: {node.module}.{alias.name} is not in Python 3.10")
    for node in ast.walk(tree):
        if (
            id(node) not in skip
            and isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and not has(aliases[node.value.id], node.attr)
        ):
            found.append(f"{path}:{node.lineno}: {aliases[node.value.id]}.{node.attr} is not in Python 3.10")
    return found


if __name__ == "__main__":
    assert sys.version_info[:2] == (3, 10), sys.version
    every = [p for folder in sys.argv[1:] for f in sorted(Path(folder).rglob("*.py")) for p in problems(f)]
    print("\n".join(every) or "ok")
    sys.exit(1 if every else 0)
