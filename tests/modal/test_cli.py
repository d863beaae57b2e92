#!/usr/bin/python3
# test_cli.py: the differential suite: the same blocks through `blockbox run` in local mode
# and in modal mode against the emulator must print identical JSON and exit statuses.
"""Differential and secrecy tests of the modal driver through the CLI.

    /usr/bin/python3 tests/modal/test_cli.py --bin build/bin/blockbox [--only NAME]

Runs every case of tests/cases/blocks.json (the project's own functional, block-error and
bad-input blocks) and a few generated ones below, plus, when ../shared/acceptance is
beside the repository, its functional, block-error and bad-input cases, in both modes
and requires the same report and exit status; also checks each case's expectations in
modal mode, error mapping through the CLI,
and that the Modal token never appears on stdout or stderr. Exit 77 (skipped) when the
CLI or the local worker is not built yet.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cases"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from harness import Emulator  # noqa: E402
import blocks  # noqa: E402
from cli_run import clean_env, normalized, write_case  # noqa: E402  (tests/cli_run.py)

ACCEPTANCE = os.path.abspath(os.path.join(ROOT, "..", "shared", "acceptance"))
SKIP = 77
TOKEN_ID = "wk-cliTOKENID-8c1e"
TOKEN_SECRET = "ws-cliSECRET-5b9a2f"

# The shared suite's cases that are differential material (when it is there); cases
# beyond these are configuration, huge inputs or attacks: not differential material.
ACCEPTANCE_CASES = [
    "add", "preamble_names", "custom_function_name", "init_results", "extra_imports_in_code",
    "stdout_captured", "workflow_context", "ndarray_list_form", "ndarray_data_form",
    "ndarray_output", "bytes_and_datetime", "image_invert", "untagged_base64_image",
    "detections_filter", "batch_of_detections", "state_is_module_scoped",
    "runtime_error_line", "syntax_error", "missing_function", "empty_code", "raises_custom",
    "non_serialisable_output", "malformed_inputs", "inputs_not_object", "deep_nesting",
    "unknown_type_tag", "bad_base64_image", "non_utf8_code",
]

EXTRA_CASES = [
    dict(name="streams_and_unicode", why="stdout, stderr and non-ASCII text survive both paths",
         code=("import sys\n\ndef run(self, s):\n    print('out', s)\n    print('err ✓', file=sys.stderr)\n"
               "    return {'s': s + ' ✓', 'emoji': '🙂'}\n"),
         inputs={"s": "héllo"}),
    dict(name="large_output", why="a 200 kB result is gzip-compressed on the way back",
         code="def run(self, n):\n    return {'x': 'ab' * n, 'arr': np.arange(n // 10)}\n",
         inputs={"n": 100000}),
    dict(name="large_input", why="a 300 kB input is gzip-compressed on the way out",
         code="def run(self, s):\n    return {'n': len(s), 'h': hash(s) % 1 == 0}\n",
         inputs={"s": "xyz" * 100000}),
    dict(name="init_and_context", why="init and workflow context together",
         code="def run(self, x):\n    return {'y': x + self._init_results['k'], 'c': self.get_workflow_context()}\n",
         init="def init():\n    return {'k': 7}\n", inputs={"x": 1}, context={"step": "s1"}),
    dict(name="name_error_in_init", why="an init failure is the block's error in both modes",
         code="def run(self):\n    return {}\n", init="def init():\n    return undefined_name\n"),
    dict(name="nested_function_error", why="a traceback through user functions keeps the user line",
         code="def helper(v):\n    return v['missing']\n\ndef run(self):\n    return helper({})\n"),
]


def load_cases(acceptance=ACCEPTANCE):
    """The project's own cases, then the shared acceptance ones when present."""
    own = blocks.load() + EXTRA_CASES
    if not os.path.isdir(acceptance):
        print("../shared/acceptance not found: the project's own %d cases only" % len(own))
        return own
    sys.path.insert(0, acceptance)
    import cases
    by_name = {c["name"]: c for c in cases.CASES}
    shared = [by_name[n] for n in ACCEPTANCE_CASES if n in by_name]
    clash = {c["name"] for c in own} & {c["name"] for c in shared}
    if clash:
        raise SystemExit("case names in both the project's and the shared suite: %s" % sorted(clash))
    return own + shared


class Runner:
    def __init__(self, binary, emulator, work):
        self.binary, self.emu, self.work = binary, emulator, work
        self.failures = []
        self.leaks_checked = 0

    def run(self, args, env, timeout=120):
        proc = subprocess.run([self.binary] + args, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, cwd=self.work)
        for stream in (proc.stdout, proc.stderr):
            self.leaks_checked += 1
            if TOKEN_SECRET.encode() in stream or TOKEN_ID.encode() in stream:
                self.failures.append("a Modal token leaked into the CLI output of %s" % args[:3])
        try:
            report = json.loads(proc.stdout.decode("utf-8")) if proc.stdout.strip() else None
        except ValueError:
            report = None
        return proc.returncode, report, proc.stderr.decode("utf-8", "replace")

    def local(self, args):
        env = clean_env()
        env["WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE"] = "local"
        return self.run(args, env)

    def modal(self, args, workspace_flag=True, **overrides):
        env = clean_env()
        env.update(self.emu.env("ws1"))
        env["MODAL_TOKEN_ID"], env["MODAL_TOKEN_SECRET"] = TOKEN_ID, TOKEN_SECRET
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        flags = ["--mode", "modal"] + (["--workspace", "ws1"] if workspace_flag else [])
        return self.run(args + flags, env)

    def fail(self, name, message):
        self.failures.append("%s: %s" % (name, message))
        print("FAIL %-28s %s" % (name, message), flush=True)

    def differential(self, case):
        args = write_case(case, self.work)
        before = self.emu.stats()["executions"]
        local = self.local(args)
        modal = self.modal(args)
        name = case["name"]
        if local[1] is None or modal[1] is None:
            return self.fail(name, "no JSON report (local exit %d: %s | modal exit %d: %s)"
                             % (local[0], local[2][-200:], modal[0], modal[2][-200:]))
        if local[0] != modal[0]:
            return self.fail(name, "exit %d locally, %d on modal (%s)" % (local[0], modal[0],
                                                                           json.dumps(modal[1])[:300]))
        if normalized(local[1]) != normalized(modal[1]):
            diff = {k: (local[1].get(k), modal[1].get(k)) for k in set(local[1]) | set(modal[1])
                    if local[1].get(k) != modal[1].get(k)}
            return self.fail(name, "reports differ: %s" % json.dumps(diff)[:600])
        expect = case.get("expect", {})
        if "exit" in expect:
            allowed = expect["exit"] if isinstance(expect["exit"], list) else [expect["exit"]]
            if modal[0] not in allowed:
                return self.fail(name, "exit %d, the case expects %s" % (modal[0], allowed))
        for key in ("success", "error_type", "outputs", "line_number", "function_name",
                    "stdout", "stderr", "debug_traces"):
            if key in expect and modal[1].get(key) != expect[key]:
                return self.fail(name, "%s=%r, the case expects %r" % (key, modal[1].get(key), expect[key]))
        for needle in expect.get("error_contains", []):
            if needle not in (modal[1].get("error") or ""):
                return self.fail(name, "error %r lacks %r" % (modal[1].get("error"), needle))
        if "check" in expect:
            message = expect["check"](modal[1], None)
            if message:
                return self.fail(name, message)
        ran = self.emu.stats()["executions"] - before
        if modal[0] == 2 and ran:
            return self.fail(name, "an invalid input reached the endpoint")
        note = ""
        if local[0] == 1 and local[1].get("line_number"):
            # the same block error from a server that sends the bare str(e) (Roboflow's)
            self.emu.faults({"kind": "roboflow"})
            bare = self.modal(args)
            self.emu._call("POST", "/_faults", {"clear": True})
            keys = ("success", "error_type", "error", "line_number")
            if bare[0] != local[0] or not bare[1] or any(bare[1].get(k) != local[1].get(k) for k in keys):
                return self.fail(name, "a bare-message server's error reads %r, local mode's %r" % (
                    bare[1] and bare[1].get("error"), local[1].get("error")))
            note = ", and from a bare-message server"
        print("ok   %-28s exit %d, identical%s" % (name, modal[0], note), flush=True)

    def expect_error(self, name, args, exit_code, error_type, needle=None, faults=(),
                     workspace_flag=True, **overrides):
        if faults:
            self.emu.faults(*faults)
        code, report, stderr = self.modal(args, workspace_flag, **overrides)
        self.emu._call("POST", "/_faults", {"clear": True})
        text = json.dumps(report) + stderr
        if code != exit_code or not report or report.get("error_type") != error_type:
            return self.fail(name, "exit %d report %s, expected exit %d %s" % (
                code, json.dumps(report)[:300], exit_code, error_type))
        if needle and needle not in text:
            return self.fail(name, "error does not mention %r: %s" % (needle, text[:300]))
        print("ok   %-28s exit %d %s" % (name, code, error_type), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "blockbox"))
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--acceptance", default=ACCEPTANCE,
                        help="the shared acceptance suite's folder (a missing one: own cases only)")
    options = parser.parse_args()
    binary = os.path.abspath(options.bin)
    worker = os.path.join(os.path.dirname(binary), "blockbox-worker")
    if not (os.access(binary, os.X_OK) and os.access(worker, os.X_OK)):
        print("skipped: %s or blockbox-worker is not built" % binary)
        return SKIP
    work = tempfile.mkdtemp(prefix="bbmodal-cli-")
    os.chmod(work, 0o755)
    with Emulator(token_id=TOKEN_ID, token_secret=TOKEN_SECRET) as emu:
        runner = Runner(binary, emu, work)
        probe = dict(name="probe", code="def run(self):\n    return {'ok': 1}\n")
        code, report, stderr = runner.local(write_case(probe, work))
        if code == 4:
            print("skipped: local mode is not usable here: %s" % (stderr or json.dumps(report))[-300:])
            return SKIP
        cases = load_cases(options.acceptance)
        for case in cases:
            if options.only and case["name"] not in options.only:
                continue
            runner.differential(case)
        if not options.only:
            add = write_case(dict(name="err_add", code="def run(self, a, b):\n    return {'s': a + b}\n",
                                  inputs={"a": 1, "b": 2}), work)
            runner.expect_error("cli_wrong_token", add, 4, "AuthenticationFailed", "MODAL_TOKEN_ID",
                                MODAL_TOKEN_SECRET="ws-wrong-secret")
            runner.expect_error("cli_not_deployed", add, 4, "BackendUnavailable", "not deployed",
                                faults=[{"kind": "status", "status": 404}])
            runner.expect_error("cli_backend_500", add, 4, "BackendUnavailable", "may have run",
                                faults=[{"kind": "status", "status": 500}])
            runner.expect_error("cli_truncated", add, 4, "InvalidResponse", None,
                                faults=[{"kind": "truncate"}])
            runner.expect_error("cli_no_tokens", add, 4, "ConfigurationError", "MODAL_TOKEN_ID",
                                MODAL_TOKEN_ID=None, MODAL_TOKEN_SECRET=None, MODAL_WEB_ENDPOINT_URL=None)
            runner.expect_error("cli_no_workspace", add, 4, "ConfigurationError",
                                "MODAL_ALLOW_ANONYMOUS_EXECUTION", workspace_flag=False,
                                BLOCKBOX_WORKSPACE_ID=None)
            runner.expect_error("cli_slow_timeout", add + ["--timeout", "1"], 3, "Timeout", None,
                                faults=[{"kind": "slow", "seconds": 10}])
            runner.expect_error("cli_plain_http", add, 4, "ConfigurationError", "plain http",
                                MODAL_WEB_ENDPOINT_URL="http://example.com/")
        stats = emu.stats()
        print("emulator: %d connections, %d requests, %d executions; %d outputs checked for tokens"
              % (stats["connections"], stats["requests"], stats["executions"], runner.leaks_checked))
    shutil.rmtree(work, ignore_errors=True)
    if runner.failures:
        print("%d failed" % len(runner.failures))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
