# cli_run.py: blocks through the built `blockbox run` for the CLI-driven Python suites: a
# clean environment, a block (or a case of cases/blocks.json) as files and arguments, the report.
"""Helpers of the suites that run `blockbox run` (tests/local, tests/jail, tests/modal,
tests/serve; each puts tests/ on sys.path):

clean_env(extra) is this process's environment without what configures blockbox, Modal
or Workflows; run_local(...) runs a block's code on the local driver and returns the
CompletedProcess; report(proc) is the JSON object it printed; write_case(case, work)
writes a case's files and returns its `blockbox run` arguments; normalized(report)
blanks the object addresses that differ between any two processes."""
import json
import os
import re
import subprocess
import tempfile

SETTINGS = ("BLOCKBOX_", "MODAL_", "WORKFLOWS_", "ALLOW_CUSTOM")   # prefixes of what configures a run


def clean_env(extra=None):
    """os.environ without the variables that start with SETTINGS, then `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS)}
    env.update(extra or {})
    return env


def run_local(binary, code, inputs=None, env=None, args=(), timeout=60):
    """Runs `code` (written to a temporary file) with `binary run` on the local driver, in
    clean_env() with `env` on top, with `args` and then each input as --input NAME=JSON.
    Returns the CompletedProcess, its streams as text."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False, encoding="utf-8") as f:
        f.write(code)
        path = f.name
    child_env = clean_env({"WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE": "local"})
    child_env.update(env or {})
    argv = [binary, "run", "--code", path, *args]
    for name, value in (inputs or {}).items():
        argv += ["--input", "%s=%s" % (name, json.dumps(value))]
    try:
        proc = subprocess.run(argv, env=child_env, capture_output=True, timeout=timeout)
    finally:
        os.unlink(path)
    # the report is read strictly (invalid UTF-8 in it fails the test); stderr is a log
    proc.stdout = proc.stdout.decode("utf-8")
    proc.stderr = proc.stderr.decode("utf-8", errors="replace")
    return proc


def report(proc):
    """The JSON object the run printed; AssertionError when it printed none."""
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("blockbox printed no JSON (exit %d): %r / %r"
                             % (proc.returncode, proc.stdout[:500], proc.stderr[:500]))


def write_case(case, work):
    """Writes the files of `case` (code or code_bytes, init, imports, inputs or inputs_raw,
    a text or a callable that makes it, context) into `work`; returns the arguments of
    `blockbox run` that run it."""
    def write(suffix, data):
        path = os.path.join(work, case["name"] + suffix)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    args = ["run", "--code", write(".py", case["code_bytes"] if "code_bytes" in case
                                   else case["code"].encode())]
    if case.get("init"):
        args += ["--init", write(".init.py", case["init"])]
    if case.get("function"):
        args += ["--function", case["function"]]
    if case.get("imports"):
        args += ["--imports", write(".imports", "\n".join(case["imports"]) + "\n")]
    if "inputs_raw" in case:
        text = case["inputs_raw"]() if callable(case["inputs_raw"]) else case["inputs_raw"]
    else:
        text = json.dumps(case.get("inputs", {}))
    args += ["--inputs", write(".inputs.json", text)]
    if case.get("context") is not None:
        args += ["--context", write(".ctx.json", json.dumps(case["context"]))]
    return args


ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def normalized(report):
    """The report with object addresses (repr of lossy `object` values) blanked: they
    differ between any two processes, whatever the backend."""
    return json.loads(ADDRESS.sub(" at 0x?", json.dumps(report, sort_keys=True)))
