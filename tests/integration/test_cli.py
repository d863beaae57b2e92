#!/usr/bin/env python3
"""test_cli.py: the `blockbox` CLI contract (DESIGN §6) end to end on the echo test
driver: every exit status, input forms, usage errors, one JSON object, no secrets.

    /usr/bin/python3 tests/integration/test_cli.py --bin build/bin/blockbox \
        --echo build/lib/libblockbox_test_driver.so [-v] [unittest options]

Standard library only. No sandbox is needed: the echo driver answers every run.
"""
import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

BIN = None
ECHO = None
SECRET = "bbsecret-" + os.urandom(8).hex()
TOKEN_ID = "ak-" + os.urandom(6).hex()


def png_bytes():
    """A 2x1 RGB PNG, made without an imaging library."""
    raw = b"\x00" + bytes([10, 20, 30, 40, 50, 60])

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PLAIN = "def run(self, **inputs):\n    return {}\n"


class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bbcli-")
        self.code = self.write("run.py", PLAIN)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return path

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WORKFLOWS_", "ALLOW_CUSTOM", "BLOCKBOX_", "MODAL_"))}
        env.update({
            "WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE": "echo",
            "BLOCKBOX_DRIVER_PATH": ECHO,
            "MODAL_TOKEN_SECRET": SECRET,
            "MODAL_TOKEN_ID": TOKEN_ID,
        })
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def cli(self, *args, env=None, stdin=None, timeout=60):
        """Runs blockbox; returns (exit status, stdout text, stderr text)."""
        proc = subprocess.run([BIN] + list(args), env=env or self.env(), input=stdin,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              cwd=self.dir)
        for stream in (proc.stdout, proc.stderr):
            self.assertNotIn(SECRET.encode(), stream, "the Modal secret was printed")
            self.assertNotIn(TOKEN_ID.encode(), stream, "the Modal token id was printed")
        return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")

    def run_block(self, *args, expect_exit=None, code=None, **kw):
        """`blockbox run`; checks the one-JSON-object rule; returns (status, report, stderr)."""
        argv = ["run"]
        if "--code" not in args:
            argv += ["--code", code or self.code]
        status, out, err = self.cli(*(argv + list(args)), **kw)
        self.assertTrue(out.endswith("\n"), "stdout does not end with a newline: %r" % out[-50:])
        report, end = json.JSONDecoder().raw_decode(out)
        self.assertEqual(out[end:], "\n", "more than one JSON object on stdout")
        self.assertIsInstance(report, dict)
        for key in ("success", "outputs", "stdout", "stderr"):
            self.assertIn(key, report)
        self.assertIsInstance(report["stdout"], str)
        self.assertIsInstance(report["stderr"], str)
        if report["success"]:
            self.assertEqual(status, 0)
            self.assertNotIn("error_type", report)
        else:
            self.assertIsNone(report["outputs"])
            for key in ("error_type", "error", "line_number", "function_name", "traceback"):
                self.assertIn(key, report)
            self.assertIsInstance(report["error"], str)
            self.assertTrue(report["line_number"] is None or isinstance(report["line_number"], int))
            self.assertNotEqual(status, 0)
        if expect_exit is not None:
            self.assertEqual(status, expect_exit, "report: %s stderr: %s" % (report, err))
        return status, report, err

    def inputs_file(self, obj):
        return self.write("inputs.json", json.dumps(obj))

    def echo(self, command, *args, **kw):
        return self.run_block("--inputs", self.inputs_file({"__echo": command}), *args, **kw)


class Success(CliTest):
    def test_inputs_file_echoed(self):
        _, report, _ = self.run_block("--inputs", self.inputs_file({"x": 41, "s": "é"}), expect_exit=0)
        self.assertIs(report["success"], True)
        self.assertIsInstance(report["outputs"], dict, "outputs must be embedded, not a string")
        self.assertEqual(report["outputs"]["inputs"], {"x": 41, "s": "é"})
        self.assertEqual(report["outputs"]["function"], "run")
        self.assertEqual(report["stdout"], "echo: 1\n")
        self.assertEqual(report["stderr"], "")
        self.assertNotIn("denied_syscalls", report)

    def test_no_inputs_is_empty_object(self):
        _, report, _ = self.run_block(expect_exit=0)
        self.assertEqual(report["outputs"]["inputs"], {})
        self.assertEqual(report["outputs"]["context"], {})

    def test_inputs_from_stdin(self):
        _, report, _ = self.run_block("--inputs", "-", stdin=b'{"x": [1, 2]}', expect_exit=0)
        self.assertEqual(report["outputs"]["inputs"], {"x": [1, 2]})

    def test_input_flags_are_merged(self):
        _, report, _ = self.run_block("--input", "a=1", "--input", 'b={"c": [1, 2.5, null]}',
                                      "--input", 's="text"', "--input=t=true", expect_exit=0)
        self.assertEqual(report["outputs"]["inputs"],
                         {"a": 1, "b": {"c": [1, 2.5, None]}, "s": "text", "t": True})

    def test_input_image_file(self):
        data = png_bytes()
        path = self.write("img.png", data)
        _, report, _ = self.run_block("--input", "image=@" + path, "--input", "n=2", expect_exit=0)
        image = report["outputs"]["inputs"]["image"]
        self.assertEqual(image["_type"], "workflow_image")
        self.assertEqual(image["type"], "base64")
        self.assertEqual(base64.b64decode(image["value"], validate=True), data)
        self.assertEqual(report["outputs"]["inputs"]["n"], 2)

    def test_context_imports_function(self):
        ctx = self.write("ctx.json", json.dumps({"workflow_execution_id": "exec-42"}))
        imports = self.write("imports.txt", "import math\r\n\n   \nimport json\n")
        init = self.write("init.py", "def setup():\n    return {'k': 1}\n")
        code = self.write("proc.py", "def process(self):\n    return {}\n")
        _, report, _ = self.run_block("--code", code, "--context", ctx, "--imports", imports,
                                      "--function", "process", "--init", init,
                                      "--init-function", "setup", expect_exit=0)
        self.assertEqual(report["outputs"]["context"], {"workflow_execution_id": "exec-42"})
        self.assertEqual(report["outputs"]["imports"], ["import math", "import json"])
        self.assertEqual(report["outputs"]["function"], "process")

    def test_config_flags_are_accepted(self):
        self.run_block("--timeout", "5", "--memory", "256", "--workspace", "ws1", "--max-inputs", "1",
                       expect_exit=0)
        self.run_block("--timeout=2.5", "--memory=64", expect_exit=0)

    def test_mode_flag_and_case(self):
        self.run_block(env=self.env(WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE="EcHo"), expect_exit=0)
        self.run_block("--mode", "ECHO", env=self.env(WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE="local"),
                       expect_exit=0)

    def test_denied_syscalls_listed(self):
        _, report, _ = self.echo("denied", expect_exit=0)
        self.assertEqual(report["denied_syscalls"], ["socket", "ptrace"])


class BlockErrors(CliTest):
    def test_block_error_exit_1(self):
        _, report, _ = self.echo("block_error", expect_exit=1)
        self.assertIs(report["success"], False)
        self.assertEqual(report["error_type"], "ValueError")
        self.assertEqual(report["line_number"], 3)
        self.assertEqual(report["function_name"], "run")
        self.assertIn("line 3", report["traceback"])
        self.assertIn("Error in line 3, in run", report["error"])
        self.assertEqual(report["stdout"], "before the error\n")

    def test_error_types_map_to_exit_codes(self):
        # what the driver itself reports (trusted side)
        trusted = {"Timeout": 3, "MemoryLimit": 3, "OutputLimit": 3, "SandboxViolation": 3,
                   "SandboxCrash": 3, "InvalidRequest": 2, "InvalidResponse": 4,
                   "BackendUnavailable": 4, "AuthenticationFailed": 4, "ConfigurationError": 4,
                   "ExecutionDisabled": 4, "UnknownCodeHash": 4}
        # what a response envelope reports is the block's own, exit 1, whatever it is
        # called (issue 8); blockbox's own names are shown as block.<name>. Verified
        # failing on the binary before the fix (ConfigurationError exited 4, InvalidRequest
        # 2, SandboxViolation 3).
        for name in list(trusted) + ["KeyError", "my.Timeout"]:
            with self.subTest(error_type=name):
                _, report, _ = self.echo("error:" + name, expect_exit=1)
                self.assertEqual(report["error_type"], name if name in ("KeyError", "my.Timeout")
                                 else "block." + name)
        for name, status in trusted.items():
            with self.subTest(driver_failure=name):
                _, report, _ = self.echo("fail:" + name, expect_exit=status)
                self.assertEqual(report["error_type"], name)

    def test_hostile_response_exit_4(self):
        for variant in ("not_json", "truncated", "result_not_json", "unknown_tag", "deep", "empty",
                        "invalid_utf8", "denied_bad_name"):
            with self.subTest(variant=variant):
                _, report, _ = self.echo("hostile:" + variant, expect_exit=4)
                self.assertEqual(report["error_type"], "InvalidResponse")

    def test_load_failure_reported(self):
        code = self.write("fail.py", "# ECHO_LOAD_FAIL:BackendUnavailable\n" + PLAIN)
        _, report, _ = self.run_block(code=code, expect_exit=4)
        self.assertEqual(report["error_type"], "BackendUnavailable")
        code = self.write("fail2.py", "# ECHO_LOAD_FAIL:SandboxCrash\n" + PLAIN)
        _, report, _ = self.run_block(code=code, expect_exit=3)


class Configuration(CliTest):
    def test_unknown_mode_exit_4(self):
        _, report, _ = self.run_block(env=self.env(WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE="quantum"),
                                      expect_exit=4)
        self.assertEqual(report["error_type"], "ConfigurationError")
        for name in ("quantum", "local", "modal", "echo"):
            self.assertIn(name, report["error"])
        _, report, _ = self.run_block("--mode", "quantum", expect_exit=4)
        self.assertEqual(report["error_type"], "ConfigurationError")

    def test_plugin_missing_exit_4(self):
        _, report, _ = self.run_block(env=self.env(BLOCKBOX_DRIVER_PATH="/nonexistent/x.so"),
                                      expect_exit=4)
        self.assertEqual(report["error_type"], "ConfigurationError")
        _, report, _ = self.run_block(env=self.env(BLOCKBOX_DRIVER_PATH=None), expect_exit=4)
        self.assertIn("echo", report["error"])

    def test_bad_environment_exit_4(self):
        for var, value in (("BLOCKBOX_TIMEOUT", "forever"), ("BLOCKBOX_MEMORY_MB", "1"),
                           ("ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS", "perhaps")):
            with self.subTest(var=var):
                _, report, _ = self.run_block(env=self.env(**{var: value}), expect_exit=4)
                self.assertEqual(report["error_type"], "ConfigurationError")
                self.assertIn(var, report["error"])

    def test_execution_disabled_exit_4(self):
        _, report, _ = self.run_block(
            env=self.env(ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS="False"), expect_exit=4)
        self.assertEqual(report["error_type"], "ExecutionDisabled")

    def test_bad_flag_values_exit_2(self):
        for flag, value in (("--timeout", "abc"), ("--timeout", "0"), ("--timeout", "-3"),
                            ("--memory", "1"), ("--memory", "lots"), ("--max-inputs", "-1")):
            with self.subTest(flag=flag, value=value):
                _, report, err = self.run_block(flag, value, expect_exit=2)
                self.assertEqual(report["error_type"], "InvalidRequest")
                self.assertIn(flag, report["error"])


class Usage(CliTest):
    def expect_usage(self, *args, needle=None, **kw):
        _, report, err = self.run_block(*args, expect_exit=2, **kw)
        self.assertEqual(report["error_type"], "InvalidRequest")
        self.assertIn("blockbox help run", err, "no usage hint on stderr")
        if needle:
            self.assertIn(needle, report["error"])
        return report

    def test_missing_code(self):
        status, out, err = self.cli("run")
        self.assertEqual(status, 2)
        self.assertEqual(json.loads(out)["error_type"], "InvalidRequest")
        self.assertIn("--code", json.loads(out)["error"])
        self.assertIn("blockbox help run", err)

    def test_unknown_flag(self):
        self.expect_usage("--frobnicate", "1", needle="--frobnicate")
        self.expect_usage("-x", needle="-x")

    def test_flag_without_value(self):
        self.expect_usage("--inputs", needle="--inputs")

    def test_positional_argument(self):
        self.expect_usage("extra.py", needle="extra.py")

    def test_flag_given_twice(self):
        self.expect_usage("--function", "a", "--function", "b", needle="twice")

    def test_inputs_and_input_exclude_each_other(self):
        self.expect_usage("--inputs", self.inputs_file({}), "--input", "a=1", needle="not both")

    def test_bad_input_flags(self):
        self.expect_usage("--input", "noequals")
        self.expect_usage("--input", "=1")
        self.expect_usage("--input", "x=hello", needle="quotes")
        self.expect_usage("--input", 'a=1, "b": 2')
        self.expect_usage("--input", "a=1", "--input", "a=2", needle="twice")
        self.expect_usage("--input", "img=@" + os.path.join(self.dir, "missing.png"))

    def test_unreadable_files(self):
        missing = os.path.join(self.dir, "missing")
        self.expect_usage("--code", missing, needle="missing")
        self.expect_usage("--code", self.dir)
        self.expect_usage("--inputs", missing)
        self.expect_usage("--context", missing)
        self.expect_usage("--init", missing)
        self.expect_usage("--imports", missing)


class BadInput(CliTest):
    def expect_invalid(self, *args, **kw):
        _, report, _ = self.run_block(*args, expect_exit=2, **kw)
        self.assertEqual(report["error_type"], "InvalidRequest")
        return report

    def test_bad_inputs_files(self):
        for text in ("{not json", "[1, 2, 3]", "", '{"x": {"_type": "quantum"}}',
                     '{"x": {"_type": "bytes", "value": "!!!"}}', '{"a": 1} {"b": 2}'):
            with self.subTest(text=text):
                self.expect_invalid("--inputs", self.write("bad.json", text))
        self.expect_invalid("--inputs", self.write("nul.json", b'{"a": "x\x00y"}'))
        self.expect_invalid("--inputs", self.write("latin1.json", b'{"a": "\xe9"}'))

    def test_image_input_that_is_no_image(self):
        self.expect_invalid("--input", "img=@" + self.write("text.txt", "not an image"))

    def test_deep_nesting_refused_fast(self):
        path = self.write("deep.json", '{"a": ' + "[" * 100000 + "]" * 100000 + "}")
        started = time.monotonic()
        self.expect_invalid("--inputs", path)
        self.assertLess(time.monotonic() - started, 10)

    def test_bad_context(self):
        self.expect_invalid("--context", self.write("ctx.json", "[1]"))
        self.expect_invalid("--context", self.write("ctx2.json", "{oops"))

    def test_huge_inputs_file_refused_without_reading(self):
        path = os.path.join(self.dir, "huge.json")
        with open(path, "wb") as f:      # sparse: 300 MB that take no disk and no time
            f.truncate(300 * 1024 * 1024)
        started = time.monotonic()
        report = self.expect_invalid("--inputs", path)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("limit", report["error"])
        # Refused from its size: the CLI never holds the file (or the 64 MiB cap) in memory.
        probe = ("import resource, subprocess, sys\n"
                 "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
        out = subprocess.run([sys.executable, "-c", probe, BIN, "run", "--code", self.code,
                              "--inputs", path], env=self.env(), stdout=subprocess.PIPE,
                             check=True, timeout=60).stdout
        self.assertLess(int(out), 40 * 1024, "the CLI grew to %s KiB refusing a huge file" % int(out))

    def test_inputs_limit_follows_the_setting(self):
        path = self.inputs_file({"s": "a" * 5000})
        self.expect_invalid("--inputs", path, env=self.env(BLOCKBOX_MAX_INPUT_BYTES="4096"))
        self.run_block("--inputs", path, env=self.env(BLOCKBOX_MAX_INPUT_BYTES="8192"), expect_exit=0)

    def test_inputs_from_a_pipe_are_capped(self):
        big = b'{"s": "' + b"a" * (3 << 20) + b'"}'
        self.expect_invalid("--inputs", "-", stdin=big, env=self.env(BLOCKBOX_MAX_INPUT_BYTES="1048576"))

    def test_code_limits(self):
        self.expect_invalid(code=self.write("big.py", "#" * ((1 << 20) + 1)))
        self.run_block(code=self.write("ok.py", PLAIN + "#" * 1000), expect_exit=0)
        self.expect_invalid(code=self.write("nul.py", b"def run(self):\n    return {}\n\x00"))

    def test_non_utf8_code_refused(self):
        self.expect_invalid(code=self.write("latin1.py", b"def run(self):\n    return {'x': '\xff\xfe'}\n"))
        self.expect_invalid("--init", self.write("init.py", b"def init():\n    return {'\xe9': 1}\n"))

    def test_empty_code_refused(self):
        self.expect_invalid(code=self.write("empty.py", ""))
        self.expect_invalid(code=self.write("blank.py", "\n\n   \n"))

    def test_bad_function_names(self):
        self.expect_invalid("--function", "run; import os")
        self.expect_invalid("--init-function", "a b")


class StrictOutput(CliTest):
    """Issue 8: what the CLI prints is written by the trusted side from the checked value,
    never the backend's bytes. Each test fails on the binary before the fix (verified:
    it printed 1., 01, raw ESC and DEL bytes with exit 0 and accepted the "pad" reply)."""

    def raw(self, command):
        status, out, _ = self.cli("run", "--code", self.code, "--inputs",
                                  self.inputs_file({"__echo": command}))
        return status, out

    def test_outputs_are_canonical(self):
        status, out = self.raw('outputs: {"a" :\t[1, 2],\r\n "b": "x", "n": 123456789012345678901234567890}')
        self.assertEqual(status, 0, out)
        self.assertIn('"outputs": {"a":[1,2],"b":"x","n":123456789012345678901234567890}', out)

    def test_lenient_numbers_are_refused(self):
        for text in ('{"a": 1.}', '{"a": 01}', '{"a": -0.e5}', '{"a": 1e400}', '{"a": NaN}'):
            with self.subTest(outputs=text):
                _, report, _ = self.echo("outputs:" + text, expect_exit=4)
                self.assertEqual(report["error_type"], "InvalidResponse")

    def test_control_bytes_never_reach_the_terminal(self):
        # ESC between tokens (cJSON skipped it as whitespace) is refused ...
        status, out = self.raw('outputs:{"a":\x1b1}')
        self.assertEqual(status, 4, out)
        # ... and DEL or C1 controls inside strings are printed escaped
        status, out = self.raw('outputs:{"a":"x\x7f\x9b[2J"}')
        self.assertEqual(status, 0, out)
        self.assertIn('"a":"x\\u007f\\u009b[2J"', out)
        self.assertFalse(any(c < " " or "\x7f" <= c <= "\x9f" for c in out[:-1]), repr(out))

    def test_c1_controls_in_streams_are_escaped(self):
        # A block's stdout or error text with an 8-bit CSI (U+009B) or DEL: valid JSON
        # unescaped, but a terminal reads it as an escape sequence. The report's string
        # writer (src/buf.c) escapes them like C0 controls. Seen failing before that
        # writer escaped C1: the report held the raw bytes C2 9B.
        status, out = self.raw("stdout:x\u009b31m\u007fy")
        self.assertEqual(status, 0, out)
        self.assertIn('x\\u009b31m\\u007fy", "stderr"', out)
        self.assertFalse(any("\x7f" <= c <= "\x9f" for c in out), repr(out))

    def test_unknown_reply_keys_are_refused(self):
        _, report, _ = self.echo("hostile:pad", expect_exit=4)
        self.assertEqual(report["error_type"], "InvalidResponse")
        self.assertIn("unknown key 'pad'", report["error"])
        _, report, _ = self.echo("hostile:escape_between_tokens", expect_exit=4)
        self.assertEqual(report["error_type"], "InvalidResponse")

    def test_overflowing_inputs_are_refused_like_outputs(self):
        for text in ('{"x": 1e400}', '{"x": -1e309}'):
            with self.subTest(inputs=text):
                _, report, _ = self.run_block("--inputs", self.write("big.json", text), expect_exit=2)
                self.assertEqual(report["error_type"], "InvalidRequest")
                self.assertIn("too large for a double", report["error"])
        self.run_block("--inputs", self.write("edge.json", '{"x": 1e308}'), expect_exit=0)


class Secrets(CliTest):
    """cli() asserts on every call that neither Modal credential is printed."""

    def expect_leak_withheld(self, report, var="MODAL_TOKEN_SECRET"):
        self.assertEqual(report["error_type"], "SandboxViolation")
        self.assertIn(var, report["error"])
        self.assertIn("withheld", report["error"])
        self.assertEqual(report["stdout"], "")

    def test_secret_from_a_backend_is_withheld(self):
        _, report, _ = self.echo("env:MODAL_TOKEN_SECRET", expect_exit=3)
        self.expect_leak_withheld(report)
        _, report, _ = self.echo("env:MODAL_TOKEN_ID", expect_exit=3)
        self.expect_leak_withheld(report, "MODAL_TOKEN_ID")
        # Without the secret in the environment the same run is fine.
        _, report, _ = self.echo("env:MODAL_TOKEN_SECRET", expect_exit=0,
                                 env=self.env(MODAL_TOKEN_SECRET=None))
        self.assertIn("MODAL_TOKEN_SECRET=(unset)", report["stdout"])

    def test_secret_with_json_specials_is_withheld(self):
        nasty = 'sec"ret\\value-' + os.urandom(4).hex()
        proc = subprocess.run([BIN, "run", "--code", self.code, "--inputs",
                               self.inputs_file({"__echo": "env:MODAL_TOKEN_SECRET"})],
                              env=self.env(MODAL_TOKEN_SECRET=nasty), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(proc.returncode, 3)
        self.assertNotIn(nasty.encode(), proc.stdout + proc.stderr)
        self.assertNotIn(json.dumps(nasty)[1:-1].encode(), proc.stdout + proc.stderr)
        self.expect_leak_withheld(json.loads(proc.stdout))

    def test_secret_in_outputs_is_withheld(self):
        _, report, _ = self.run_block("--input", "tok=" + json.dumps(SECRET), expect_exit=3)
        self.expect_leak_withheld(report)

    def test_secret_in_a_usage_error_is_redacted(self):
        _, report, err = self.run_block("--frobnicate" + SECRET, expect_exit=2)
        self.assertIn("(redacted)", report["error"])
        self.assertIn("(redacted)", err)

    def test_errors_do_not_print_secrets(self):
        self.run_block(env=self.env(WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE="quantum"), expect_exit=4)
        self.run_block("--mode", "modal", "--workspace", "ws1",
                       env=self.env(WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE="modal"))
        self.cli("doctor")
        self.cli("doctor", "--json")
        self.cli("version", "--json")


class Commands(CliTest):
    def test_version(self):
        status, out, _ = self.cli("version")
        self.assertEqual(status, 0)
        self.assertRegex(out, r"^blockbox \d+\.\d+\.\d+ \(runtime \S+")
        status, out, _ = self.cli("version", "--json")
        self.assertEqual(status, 0)
        info = json.loads(out)
        self.assertRegex(info["version"], r"^\d+\.\d+\.\d+$")
        self.assertTrue(info["runtime_version"])
        status, out2, _ = self.cli("--version")
        self.assertEqual(status, 0)
        self.assertIn(info["version"], out2)
        self.assertEqual(self.cli("version", "--bogus")[0], 2)

    def test_help(self):
        for args in (["--help"], ["help"], ["-h"]):
            status, out, _ = self.cli(*args)
            self.assertEqual(status, 0)
            self.assertIn("run --code", out)
            self.assertIn("policy check", out)
        for args in (["help", "run"], ["run", "--help"]):
            status, out, _ = self.cli(*args)
            self.assertEqual(status, 0)
            self.assertIn("--input NAME=@FILE", out)
            self.assertIn("--max-inputs", out)

    def test_no_command_and_unknown_command(self):
        status, out, err = self.cli()
        self.assertEqual(status, 2)
        self.assertIn("usage", err)
        status, out, err = self.cli("frobnicate")
        self.assertEqual(status, 2)
        self.assertEqual(json.loads(out)["error_type"], "InvalidRequest")
        self.assertIn("usage", err)

    def test_policy_check(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        status, _, err = self.cli("policy", "check", os.path.join(root, "policies", "default.json"))
        self.assertEqual(status, 0, err)
        status, _, err = self.cli("policy", "check", self.write("broken.json", '{"defaultAction": '))
        self.assertEqual(status, 2)
        self.assertTrue(err.strip(), "a broken policy needs a diagnostic")
        self.assertEqual(self.cli("policy", "check")[0], 2)
        self.assertEqual(self.cli("policy")[0], 2)
        self.assertEqual(self.cli("policy", "lint", "x")[0], 2)


def main():
    global BIN, ECHO
    argv = list(sys.argv)
    for flag in ("--bin", "--echo"):
        if flag in argv:
            i = argv.index(flag)
            value = os.path.abspath(argv[i + 1])
            del argv[i:i + 2]
            if flag == "--bin":
                BIN = value
            else:
                ECHO = value
    BIN = BIN or os.environ.get("BLOCKBOX_BIN")
    ECHO = ECHO or os.environ.get("BB_TEST_ECHO_DRIVER")
    if not BIN or not os.access(BIN, os.X_OK) or not ECHO or not os.path.isfile(ECHO):
        sys.exit("test_cli.py: give --bin PATH/blockbox and --echo PATH/libblockbox_test_driver.so")
    unittest.main(argv=argv)


if __name__ == "__main__":
    main()
