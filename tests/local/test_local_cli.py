#!/usr/bin/python3
"""test_local_cli.py: the local driver through the CLI: fail-closed configuration, bad
input and oversized output, and secrets that must never reach a block."""

import json
import os
import random
import sys
import tempfile
import time
import unittest
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cli_args  # noqa: E402  (tests/cli_args.py)
import cli_run  # noqa: E402  (tests/cli_run.py)

BIN = None
RUN_TIMEOUT = 60

OK_BLOCK = "def run(self, x):\n    return {'y': x + 1}\n"


def run_cli(code, inputs=None, env=None, args=(), timeout=RUN_TIMEOUT):
    """Runs `blockbox run` on the local driver; returns (exit status, stdout JSON or None,
    raw stdout, stderr, seconds)."""
    t0 = time.monotonic()
    proc = cli_run.run_local(BIN, code, inputs if inputs is not None else {"x": 1}, env=env,
                             args=args, timeout=timeout)
    took = time.monotonic() - t0
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = None
    return proc.returncode, out, proc.stdout, proc.stderr, took


def nested_block(depth, recursion_limit=None):
    """A block whose result is `depth` lists nested in one another, its recursion limit
    raised first when given."""
    raise_limit = "    sys.setrecursionlimit(%d)\n" % recursion_limit if recursion_limit else ""
    return ("import sys\n" if recursion_limit else "") + (
        "def run(self, x):\n%s    v = []\n    for _ in range(%d):\n        v = [v]\n"
        "    return {'deep': v}\n" % (raise_limit, depth))


class FailClosed(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bb-local-cli-")

    def tearDown(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def policy(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_refused(self, env, *needles, error_type="ConfigurationError", status=4):
        rc, out, raw, stderr, took = run_cli(OK_BLOCK, env=env)
        self.assertIsNotNone(out, "no JSON on stdout: %r %r" % (raw, stderr))
        self.assertEqual(rc, status, out)
        self.assertFalse(out["success"])
        self.assertIsNone(out["outputs"])
        self.assertEqual(out["error_type"], error_type, out)
        for needle in needles:
            self.assertIn(needle, out["error"])
        self.assertLess(took, 20, "refusing took %.1f s" % took)
        return out, raw + stderr

    def test_broken_policy_names_file_and_line(self):
        path = self.policy("broken.json",
                           '{\n  "defaultAction": "SCMP_ACT_TRAP",\n  "syscalls": [\n'
                           '    {"names": ["read"], "action": "SCMP_ACT_BOGUS"}\n  ]\n}\n')
        self.assert_refused({"BLOCKBOX_POLICY_FILE": path}, path + ":4", "SCMP_ACT_BOGUS")

    def test_truncated_policy_names_file_and_line(self):
        path = self.policy("truncated.json", '{\n  "defaultAction": "SCMP_ACT_TRAP",\n  "syscalls": [\n')
        self.assert_refused({"BLOCKBOX_POLICY_FILE": path}, path + ":", "JSON")

    def test_policy_with_unknown_syscall_is_refused(self):
        path = self.policy("unknown.json",
                           '{"defaultAction": "SCMP_ACT_TRAP",\n "syscalls": [{"names": ["read", '
                           '"no_such_call_xyz"], "action": "SCMP_ACT_ALLOW"}]}\n')
        self.assert_refused({"BLOCKBOX_POLICY_FILE": path}, path, "no_such_call_xyz")

    def test_missing_policy_is_refused(self):
        path = os.path.join(self.dir, "absent.json")
        self.assert_refused({"BLOCKBOX_POLICY_FILE": path}, path)

    @unittest.skipUnless(os.path.exists("/etc/shadow"), "no /etc/shadow")
    def test_policy_symlink_to_shadow_is_refused_without_leaking_it(self):
        link = os.path.join(self.dir, "shadow.json")
        os.symlink("/etc/shadow", link)
        _, text = self.assert_refused({"BLOCKBOX_POLICY_FILE": link}, link)
        self.assertNotIn("root:", text)
        self.assertNotIn("$y$", text)
        self.assertNotIn("$6$", text)

    def test_100_mb_policy_is_refused_from_its_size(self):
        path = os.path.join(self.dir, "huge.json")
        with open(path, "wb") as f:
            f.truncate(100 << 20)
        out, _ = self.assert_refused({"BLOCKBOX_POLICY_FILE": path}, path, "limit")

    def test_policy_that_is_a_directory_is_refused(self):
        self.assert_refused({"BLOCKBOX_POLICY_FILE": self.dir}, self.dir)

    def test_require_all_works_on_this_host(self):
        rc, out, raw, stderr, _ = run_cli(OK_BLOCK, env={"BLOCKBOX_REQUIRE": "all"})
        self.assertEqual(rc, 0, raw + stderr)
        self.assertEqual(out["outputs"], {"y": 2})

    def test_require_bogus_is_a_configuration_error(self):
        self.assert_refused({"BLOCKBOX_REQUIRE": "bogus"}, "bogus")

    def test_require_and_disable_the_same_layer_is_refused(self):
        self.assert_refused({"BLOCKBOX_REQUIRE": "netns", "BLOCKBOX_INSECURE_DISABLE_LAYERS": "netns"},
                            "required and disabled")

    def test_disable_bogus_is_a_configuration_error(self):
        self.assert_refused({"BLOCKBOX_INSECURE_DISABLE_LAYERS": "seccomp,nope"}, "nope")

    def test_missing_worker_is_a_configuration_error(self):
        self.assert_refused({"BLOCKBOX_WORKER_PATH": "/nonexistent/blockbox-worker"}, "/nonexistent")

    def test_worker_that_is_not_a_zygote_fails_without_hanging(self):
        self.assert_refused({"BLOCKBOX_WORKER_PATH": "/bin/true"}, error_type="BackendUnavailable")

    def test_worker_that_is_a_directory_is_refused(self):
        rc, out, raw, stderr, took = run_cli(OK_BLOCK, env={"BLOCKBOX_WORKER_PATH": self.dir})
        self.assertEqual(rc, 4, raw + stderr)
        self.assertIn(out["error_type"], ("ConfigurationError", "BackendUnavailable"))
        self.assertLess(took, 20)

    def test_execution_disabled_refuses_local_runs(self):
        self.assert_refused({"ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS": "False"},
                            error_type="ExecutionDisabled")


class BadInput(unittest.TestCase):
    def test_oversized_input_is_refused(self):
        rc, out, raw, stderr, _ = run_cli("def run(self, x):\n    print('RAN')\n    return {}\n",
                                          inputs={"x": "a" * 8000},
                                          env={"BLOCKBOX_MAX_INPUT_BYTES": "4096"})
        self.assertEqual(rc, 2, raw + stderr)
        self.assertEqual(out["error_type"], "InvalidRequest")
        self.assertNotIn("RAN", raw)

    def test_input_just_under_the_limit_is_accepted(self):
        rc, out, raw, stderr, _ = run_cli("def run(self, x):\n    return {'n': len(x)}\n",
                                          inputs={"x": "a" * 3000},
                                          env={"BLOCKBOX_MAX_INPUT_BYTES": "4096"})
        self.assertEqual(rc, 0, raw + stderr)
        self.assertEqual(out["outputs"], {"n": 3000})

    def test_100_mb_of_stdout_is_cut_with_a_marker(self):
        code = ("def run(self, x):\n"
                "    line = 'z' * (1 << 20)\n"
                "    for _ in range(100):\n"
                "        print(line)\n"
                "    return {'done': True}\n")
        rc, out, raw, stderr, took = run_cli(code, env={"BLOCKBOX_MAX_STREAM_BYTES": "65536"})
        self.assertEqual(rc, 0, raw[:300] + stderr)
        self.assertEqual(out["outputs"], {"done": True})
        self.assertLessEqual(len(out["stdout"]), 65536 + 200)
        self.assertGreater(len(out["stdout"]), 60000)
        self.assertIn("[blockbox: output cut", out["stdout"])
        self.assertLess(len(raw), 1 << 20)
        self.assertLess(took, 30)

    def test_stderr_is_cut_too(self):
        code = ("import sys\n"
                "def run(self, x):\n"
                "    sys.stderr.write('e' * (8 << 20))\n"
                "    return {}\n")
        rc, out, raw, stderr, _ = run_cli(code, env={"BLOCKBOX_MAX_STREAM_BYTES": "4096"})
        self.assertEqual(rc, 0, raw[:300])
        self.assertLessEqual(len(out["stderr"]), 4096 + 200)
        self.assertIn("[blockbox: output cut", out["stderr"])

    def test_result_over_the_output_limit(self):
        code = "def run(self, x):\n    return {'big': 'b' * 200000}\n"
        rc, out, raw, stderr, _ = run_cli(code, env={"BLOCKBOX_MAX_OUTPUT_BYTES": "65536"})
        self.assertEqual(rc, 3, raw[:500] + stderr)
        self.assertEqual(out["error_type"], "OutputLimit")
        self.assertLess(len(raw), 65536)

    def test_result_under_the_output_limit(self):
        code = "def run(self, x):\n    return {'big': 'b' * 30000}\n"
        rc, out, raw, stderr, _ = run_cli(code, env={"BLOCKBOX_MAX_OUTPUT_BYTES": "65536"})
        self.assertEqual(rc, 0, raw[:500] + stderr)
        self.assertEqual(len(out["outputs"]["big"]), 30000)

    def test_deeply_nested_result_is_refused_without_a_crash(self):
        rc, out, raw, stderr, _ = run_cli(nested_block(200))
        self.assertIsNotNone(out, "no JSON: %r %r" % (raw[:300], stderr[-300:]))
        # the runtime is told the limit: the block's own error, naming it (issue 8 item 4)
        self.assertEqual(rc, 1, out)
        self.assertEqual(out["error_type"], "ValueError")
        self.assertIn("over the limit of 64 (BLOCKBOX_MAX_DEPTH)", out["error"])

    def test_very_deep_result_is_refused_without_a_crash(self):
        rc, out, raw, stderr, _ = run_cli(nested_block(50000, recursion_limit=200000))
        self.assertIsNotNone(out, "no JSON: %r %r" % (raw[:300], stderr[-300:]))
        self.assertNotEqual(rc, 0)
        self.assertIn(rc, (1, 3, 4), out)

    def test_moderately_nested_result_is_fine(self):
        rc, out, raw, stderr, _ = run_cli(nested_block(20))
        self.assertEqual(rc, 0, raw + stderr)
        depth, v = 0, out["outputs"]["deep"]
        while v:
            v, depth = v[0], depth + 1
        self.assertEqual(depth, 20)


class Secrets(unittest.TestCase):
    PROBE = """
def run(self, test_pid, plain=False):
    found = {"environ": dict(os.environ)}
    for path in ("/proc/self/environ", "/proc/1/environ", "/proc/%d/environ" % test_pid,
                 "/proc/%d/environ" % os.getppid()):
        try:
            with open(path, "rb") as f:
                found[path] = f.read().decode("latin-1")
        except OSError as e:
            found[path] = type(e).__name__
    leaks = []  # MODAL_* in any environ file the block can read (the host's /proc, if visible)
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        pids = []
    for p in pids:
        try:
            with open("/proc/%s/environ" % p, "rb") as f:
                data = f.read().decode("latin-1")
        except OSError:
            continue
        leaks += [kv for kv in data.split(chr(0)) if kv.startswith("MODAL_")]
    # Reversed, so that the host's output filter for secrets does not hide a leak.
    found["leaks"] = [kv[::-1] for kv in leaks]
    if plain:
        found["plain"] = leaks
    print(found)
    return found
"""

    def secret_env(self):
        secret = "s3cr3t-%016x" % random.getrandbits(64)
        token = "tok-%016x" % random.getrandbits(64)
        # In our own environment too: the block must not reach the test's /proc entry.
        os.environ["MODAL_TOKEN_SECRET"] = secret
        os.environ["MODAL_TOKEN_ID"] = token
        self.addCleanup(os.environ.pop, "MODAL_TOKEN_SECRET", None)
        self.addCleanup(os.environ.pop, "MODAL_TOKEN_ID", None)
        return secret, token, {"MODAL_TOKEN_SECRET": secret, "MODAL_TOKEN_ID": token}

    def check(self, disable=None):
        secret, token, env = self.secret_env()
        if disable:
            env["BLOCKBOX_INSECURE_DISABLE_LAYERS"] = disable
        rc, out, raw, stderr, _ = run_cli(self.PROBE, inputs={"test_pid": os.getpid()}, env=env)
        self.assertEqual(rc, 0, raw[:500] + stderr)
        for text in (raw, stderr):
            self.assertNotIn(secret, text)
            self.assertNotIn(token, text)
        self.assertNotIn("MODAL", json.dumps(out["outputs"]["environ"]))
        self.assertEqual(out["outputs"]["leaks"], [])
        return out["outputs"]

    def test_secret_never_reaches_the_block(self):
        found = self.check()
        self.assertNotIn("MODAL_TOKEN_SECRET", found["environ"])

    def test_secret_never_reaches_the_block_even_with_proc_visible(self):
        """With the mount layer off the block sees the host's /proc; the environment
        of the executor still does not reach it (the zygote gets an empty one, and
        other processes' environ files need privileges the worker lacks)."""
        found = self.check(disable="mntns")
        self.assertNotIn("MODAL", found["/proc/self/environ"])

    @unittest.skipUnless(os.geteuid() == 0, "the control needs a root worker")
    def test_the_probe_would_see_a_leak(self):
        """Control: with the layers that confine the worker off (mount, uid, user
        namespace, caps), the same probe reads the CLI's environ file in the host's
        /proc and finds the secret, so the tests above would notice a leak."""
        secret, _, env = self.secret_env()
        env["BLOCKBOX_INSECURE_DISABLE_LAYERS"] = "mntns,uid,userns,caps"
        rc, out, raw, stderr, _ = run_cli(self.PROBE, inputs={"test_pid": os.getpid()}, env=env)
        self.assertEqual(rc, 0, raw[:500] + stderr)
        self.assertIn("MODAL_TOKEN_SECRET=" + secret, [kv[::-1] for kv in out["outputs"]["leaks"]])

    @unittest.skipUnless(os.geteuid() == 0, "the control needs a root worker")
    def test_a_leaked_secret_in_plain_text_is_withheld(self):
        """The last line of defence: a response holding the secret verbatim is
        refused by the host, and the secret is not printed."""
        secret, _, env = self.secret_env()
        env["BLOCKBOX_INSECURE_DISABLE_LAYERS"] = "mntns,uid,userns,caps"
        rc, out, raw, stderr, _ = run_cli(self.PROBE, inputs={"test_pid": os.getpid(), "plain": True}, env=env)
        self.assertEqual(rc, 3, raw[:500] + stderr)
        self.assertEqual(out["error_type"], "SandboxViolation")
        self.assertIn("MODAL_TOKEN_SECRET", out["error"])
        self.assertNotIn(secret, raw + stderr)


if __name__ == "__main__":
    cli_args.main(sys.modules[__name__])
