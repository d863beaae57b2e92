#!/usr/bin/env python3
# amalgamate.py: assembles the runtime's modules (src/runtime/*.py, in the order of MODULES)
# into the one file blockbox_runtime.py that the worker embeds and the Modal image ships.
"""Builds blockbox_runtime.py from the modules of src/runtime, as SQLite builds its
amalgamation: the modules are parts of ONE namespace, concatenated in the order of
MODULES (a module may use, at import time, only what an earlier one defined; inside
functions any name of any module). The output is deterministic: the same sources give
the same bytes, whichever Python runs this (stdlib only).

    amalgamate.py --out FILE        write the runtime (atomically)
    amalgamate.py --check FILE      exit 1 unless FILE is what --out would write
    amalgamate.py --list            the modules, one path a line, in order

It refuses (exit 2, nothing written) a listed module that is missing, does not parse
or does not start with a docstring; a .py file in src/runtime that is not listed; a
top-level name bound by two modules (one namespace: the later would silently replace
the earlier); and an output that does not compile. CMake runs it at build time
(src/CMakeLists.txt: build/runtime/blockbox_runtime.py, rebuilt when any module
changes); Python tools and tests call runtime_dir() (a directory with the file) or
load() (the module, built in memory).
"""
import argparse
import ast
import atexit
import os
import shutil
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT_NAME = "blockbox_runtime.py"

# The order of the amalgamation; add a new module here (src/runtime/README.md, "Modules").
MODULES = (
    "base.py",           # docstring and API, process set-up, version, limits, base64
    "images.py",         # WorkflowImageData and its metadata classes
    "detections.py",     # sv.Detections and the `sv` module
    "batch.py",          # Batch, BlockResult
    "traces.py",         # debug_traces
    "requests_shim.py",  # `requests` without a network
    "wire_values.py",    # typed values in (decode) and out (encode)
    "frames.py",         # arrays and raw images in the local worker's shared memory
    "capture.py",        # capped stdout/stderr
    "block.py",          # one loaded block: preamble, namespace, self, its errors
    "runtime.py",        # Runtime: the request loop, responses, execute_request
    "warmup.py",         # warm_up, fresh_entropy
)
_NOT_MODULES = frozenset(("amalgamate.py",))


class AmalgamationError(Exception):
    """The modules cannot be assembled (the message says which and why)."""


def _bindings(tree):
    """Top-level names a module binds: {name: None when a definition or assignment
    binds it, else the import that does (the same import in two modules is no clash)}."""
    hows = {}

    def bind(name, how):
        hows.setdefault(name, set()).add(how)

    def target(node):
        if isinstance(node, ast.Name):
            bind(node.id, None)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for item in node.elts:
                target(item)
        elif isinstance(node, ast.Starred):
            target(node.value)

    def walk(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(node.name, None)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    target(t)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                target(node.target)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        bind(alias.asname, "import %s as %s" % (alias.name, alias.asname))
                    else:
                        top = alias.name.split(".")[0]
                        bind(top, "import " + top)
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    bind(alias.asname or alias.name, "from %s%s import %s" % (
                        "." * node.level, node.module or "", alias.name))
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                target(node.target)
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, (ast.If, ast.While)):
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body)
                for handler in node.handlers:
                    walk(handler.body)
                walk(node.orelse)
                walk(node.finalbody)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                walk(node.body)
    walk(tree.body)
    return {name: (next(iter(h)) if len(h) == 1 else None) for name, h in hows.items()}


def _read_modules(src_dir, modules):
    present = sorted(f for f in os.listdir(src_dir) if f.endswith(".py") and f not in _NOT_MODULES)
    unlisted = [f for f in present if f not in modules]
    if unlisted:
        raise AmalgamationError("%s: not in amalgamate.MODULES (add each module to the list, "
                                "in import order): %s" % (src_dir, ", ".join(unlisted)))
    if len(set(modules)) != len(modules):
        raise AmalgamationError("amalgamate.MODULES lists a module twice")
    texts, owner = [], {}
    for name in modules:
        path = os.path.join(src_dir, name)
        try:
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
        except OSError as exc:
            raise AmalgamationError("%s: %s" % (name, exc.strerror or exc)) from None
        if "\r" in text:
            raise AmalgamationError("%s: has CR line ends (LF only)" % name)
        try:
            tree = ast.parse(text, name)
        except SyntaxError as exc:
            raise AmalgamationError("%s:%s: %s" % (name, exc.lineno, exc.msg)) from None
        if ast.get_docstring(tree) is None:
            raise AmalgamationError("%s: must start with a docstring that says its one job" % name)
        for bound, how in _bindings(tree).items():
            if bound in owner:
                first, first_how = owner[bound]
                if how is None or first_how is None or how != first_how:
                    raise AmalgamationError("%s: top-level name %r is also bound by %s (the "
                                            "modules share one namespace)" % (name, bound, first))
            else:
                owner[bound] = (name, how)
        texts.append((name, text))
    return texts


def amalgamate(src_dir=HERE, modules=MODULES):
    """The text of blockbox_runtime.py assembled from `modules` of `src_dir`."""
    parts = ["# %s: GENERATED by src/runtime/amalgamate.py from the modules of src/runtime\n"
             "# in the order of its MODULES; do not edit: change a module, then rebuild.\n"
             % OUTPUT_NAME]
    for name, text in _read_modules(src_dir, modules):
        rule = "# " + "=" * 30 + " " + name + " "
        parts.append("\n" + rule + "=" * max(3, 88 - len(rule)) + "\n")
        parts.append(text if text.endswith("\n") else text + "\n")
    out = "".join(parts)
    try:
        compile(out, OUTPUT_NAME, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise AmalgamationError("the amalgamation does not compile: line %s: %s"
                                % (exc.lineno, exc.msg)) from None
    return out


def write(path, src_dir=HERE, modules=MODULES):
    """Writes the amalgamation to `path` (through a temporary file and a rename, so a
    reader never sees half of it). Returns the text."""
    text = amalgamate(src_dir, modules)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + OUTPUT_NAME + ".", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return text


_TEMP_DIR = None


def runtime_dir():
    """A directory holding blockbox_runtime.py, for Python tools and tests:
    $BLOCKBOX_RUNTIME_DIR when set (a build's, e.g. build/runtime; ctest sets it),
    else a temporary directory with a fresh amalgamation of these modules (one per
    process, removed at exit)."""
    global _TEMP_DIR
    given = os.environ.get("BLOCKBOX_RUNTIME_DIR")
    if given:
        if not os.path.isfile(os.path.join(given, OUTPUT_NAME)):
            raise AmalgamationError("BLOCKBOX_RUNTIME_DIR=%s has no %s (build first)"
                                    % (given, OUTPUT_NAME))
        return given
    if _TEMP_DIR is None:
        made = tempfile.mkdtemp(prefix="blockbox-runtime-")
        atexit.register(shutil.rmtree, made, True)
        write(os.path.join(made, OUTPUT_NAME))
        _TEMP_DIR = made
    return _TEMP_DIR


def load(name="blockbox_runtime"):
    """The runtime as a module, built in memory (no file left behind): the file in
    $BLOCKBOX_RUNTIME_DIR when set, else a fresh amalgamation of these modules. It is
    registered in sys.modules under `name`, so `import blockbox_runtime` finds it."""
    given = os.environ.get("BLOCKBOX_RUNTIME_DIR")
    if given:
        with open(os.path.join(given, OUTPUT_NAME), encoding="utf-8") as f:
            text = f.read()
    else:
        text = amalgamate()
    module = types.ModuleType(name)
    module.__file__ = os.path.join(given or HERE, OUTPUT_NAME)
    sys.modules[name] = module
    try:
        exec(compile(text, OUTPUT_NAME, "exec", dont_inherit=True), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", metavar="FILE")
    group.add_argument("--check", metavar="FILE")
    group.add_argument("--list", action="store_true")
    parser.add_argument("--src", default=HERE, help="the modules' directory (default: this one)")
    options = parser.parse_args(argv)
    try:
        if options.list:
            for name in MODULES:
                print(os.path.join(options.src, name))
            return 0
        if options.out:
            write(options.out, options.src)
            return 0
        want = amalgamate(options.src)
    except AmalgamationError as exc:
        print("amalgamate.py: %s" % exc, file=sys.stderr)
        return 2
    try:
        with open(options.check, encoding="utf-8", newline="") as f:
            have = f.read()
    except OSError as exc:
        print("amalgamate.py: %s: %s" % (options.check, exc.strerror or exc), file=sys.stderr)
        return 1
    if have != want:
        print("amalgamate.py: %s is not the amalgamation of %s (rebuild)" % (options.check, options.src),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
