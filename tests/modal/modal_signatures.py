#!/usr/bin/python3
# modal_signatures.py: extracts from modal-client's source the parameters of every Modal API
# that drivers/modal calls, and checks a stored extract (the stub's contract) against it.
"""The signatures of the modal client version that drivers/modal pins.

    modal_signatures.py extract GIT_DIR_OR_SOURCE_ROOT [--commit REV] > modal_signatures.json
    modal_signatures.py check   GIT_DIR_OR_SOURCE_ROOT [--commit REV] [--file FILE]

The extract is read from the source with `ast` (no import of modal): for each API below,
its parameters by kind, and the ones its docstring or a `*DEPRECATED*` comment marks as
deprecated. tests/modal/test_app.py builds its stub of `modal` from the stored file, so
an app that passes a parameter this version does not take (or has deprecated) fails a
test here instead of `modal deploy`. `check` proves the stored file is that version's.
"""
import ast
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STORED = os.path.join(HERE, "modal_signatures.json")

# public name -> (file under py/modal, class or None, function)
APIS = {
    "App": ("app.py", "_App", "__init__"),
    "App.function": ("app.py", "_App", "function"),
    "fastapi_endpoint": ("_partial_function.py", None, "_fastapi_endpoint"),
    "concurrent": ("_partial_function.py", None, "_concurrent"),
    "Image.from_registry": ("_image.py", "_Image", "from_registry"),
    "Image.debian_slim": ("_image.py", "_Image", "debian_slim"),
    "Image.apt_install": ("_image.py", "_Image", "apt_install"),
    "Image.pip_install": ("_image.py", "_Image", "pip_install"),
    "Image.add_local_file": ("_image.py", "_Image", "add_local_file"),
    "Image.env": ("_image.py", "_Image", "env"),
    "Image.run_commands": ("_image.py", "_Image", "run_commands"),
    "Image.entrypoint": ("_image.py", "_Image", "entrypoint"),
    "Image.workdir": ("_image.py", "_Image", "workdir"),
    "Sandbox.create": ("sandbox.py", "_Sandbox", "create"),
    "Sandbox.wait": ("sandbox.py", "_Sandbox", "wait"),
    "Sandbox.terminate": ("sandbox.py", "_Sandbox", "terminate"),
    "Sandbox.poll": ("sandbox.py", "_Sandbox", "poll"),
    "StreamWriter.write": ("io_streams.py", "_StreamWriter", "write"),
    "StreamWriter.write_eof": ("io_streams.py", "_StreamWriter", "write_eof"),
    "StreamWriter.drain": ("io_streams.py", "_StreamWriter", "drain"),
    "StreamReader.read": ("io_streams.py", "_StreamReader", "read"),
    "Dict.from_name": ("dict.py", "_Dict", "from_name"),
    "Dict.get": ("dict.py", "_Dict", "get"),
    "Dict.put": ("dict.py", "_Dict", "put"),
}
_DEPRECATED_DOC = re.compile(r"^\s*(\w+):\s*(?:\*?deprecated|Deprecated)", re.M)


class Source:
    """py/modal files of one commit of a git dir, or of a checked-out source tree."""

    def __init__(self, root, commit):
        self.root, self.commit = root, commit
        self.is_git = os.path.isfile(os.path.join(root, "HEAD")) and not os.path.isdir(
            os.path.join(root, "py"))

    def read(self, path):
        if self.is_git:
            return subprocess.run(["git", "--git-dir", self.root, "show", "%s:py/%s" % (self.commit, path)],
                                  check=True, capture_output=True, text=True).stdout
        with open(os.path.join(self.root, "py", path), encoding="utf-8") as f:
            return f.read()

    def revision(self):
        if not self.is_git:
            return None
        return subprocess.run(["git", "--git-dir", self.root, "rev-parse", self.commit], check=True,
                              capture_output=True, text=True).stdout.strip()


def _find(tree, cls, name):
    scope = tree.body
    if cls:
        scope = next(n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    defs = [n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
    # the implementation, not its @overload stubs
    real = [d for d in defs if not any(getattr(dec, "id", getattr(dec, "attr", "")) == "overload"
                                       for dec in d.decorator_list)]
    return (real or defs)[0]


def _signature(source_text, node):
    a = node.args
    positional = [p.arg for p in a.posonlyargs + a.args]
    if positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    lines = source_text.splitlines()
    deprecated = set()
    for p in a.posonlyargs + a.args + a.kwonlyargs:
        if "*DEPRECATED*" in lines[p.lineno - 1]:
            deprecated.add(p.arg)
    doc = ast.get_docstring(node) or ""
    names = set(positional) | {p.arg for p in a.kwonlyargs}
    deprecated |= {m for m in _DEPRECATED_DOC.findall(doc) if m in names}
    return {"positional": positional, "keyword_only": [p.arg for p in a.kwonlyargs],
            "var_positional": a.vararg is not None, "var_keyword": a.kwarg is not None,
            "deprecated": sorted(deprecated)}


def extract(root, commit="HEAD"):
    src = Source(root, commit)
    version = re.search(r'__version__\s*=\s*"([^"]+)"', src.read("modal_version/__init__.py")).group(1)
    texts, out = {}, {}
    for public, (path, cls, name) in sorted(APIS.items()):
        if path not in texts:
            texts[path] = src.read("modal/" + path)
        out[public] = _signature(texts[path], _find(ast.parse(texts[path]), cls, name))
    return {"modal_version": version, "source": "modal-labs/modal-client", "commit": src.revision(),
            "signatures": out}


def load_stored(path=STORED):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("extract", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    commit = argv[argv.index("--commit") + 1] if "--commit" in argv else "HEAD"
    stored_path = argv[argv.index("--file") + 1] if "--file" in argv else STORED
    if argv[1] == "extract":
        json.dump(extract(argv[2], commit), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    stored = load_stored(stored_path)
    fresh = extract(argv[2], stored.get("commit") or commit)
    if fresh["signatures"] != stored["signatures"] or fresh["modal_version"] != stored["modal_version"]:
        print("stored signatures differ from modal %s's source" % fresh["modal_version"], file=sys.stderr)
        return 1
    print("signatures of modal %s match %s" % (stored["modal_version"], stored_path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
