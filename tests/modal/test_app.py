#!/usr/bin/python3
# test_app.py: tests drivers/modal/app.py against a stub `modal` that takes exactly the pinned
# version's parameters: options, images, names, cache trust, protocol, and the sandbox boundary.
import asyncio
import base64
import contextlib
import gzip
import hashlib
import importlib.util
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODAL_DIR = os.path.join(ROOT, "drivers", "modal")
APP_PY = os.path.join(MODAL_DIR, "app.py")
AMALGAMATE = os.path.join(ROOT, "src", "runtime", "amalgamate.py")
MIRROR = os.environ.get("BLOCKBOX_MODAL_CLIENT_GIT", "/work/.mirror/modal-labs+modal-client/repo")
sys.path.insert(0, HERE)
import fake_modal  # noqa: E402
import modal_signatures  # noqa: E402

BLOCK_DIR = None


def block_dir():
    """BLOCK_DIR of the image, assembled from the checkout (what add_local_file copies:
    the runtime amalgamated from src/runtime, and sandbox_main.py)."""
    global BLOCK_DIR
    if BLOCK_DIR is None:
        import atexit
        import shutil
        import tempfile
        BLOCK_DIR = tempfile.mkdtemp(prefix="bb-modal-block-")
        atexit.register(shutil.rmtree, BLOCK_DIR, True)
        spec = importlib.util.spec_from_file_location("blockbox_amalgamate", AMALGAMATE)
        amalgamate = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(amalgamate)
        amalgamate.write(os.path.join(BLOCK_DIR, "blockbox_runtime.py"))
        os.symlink(os.path.join(MODAL_DIR, "sandbox_main.py"), os.path.join(BLOCK_DIR, "sandbox_main.py"))
    return BLOCK_DIR


def load_app(env_extra=None):
    fake = fake_modal.make()
    fake_modal.Sandbox.local_dir = block_dir()
    sys.modules["modal"] = fake
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("BLOCKBOX_"):
            del os.environ[k]
    os.environ.update(env_extra or {})
    try:
        spec = importlib.util.spec_from_file_location("blockbox_modal_app", APP_PY)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module, fake


def envelope(code="def run(self, a):\n    return {'b': a + 1}\n", imports=(), inputs=None, **extra):
    req = {"code_hash": hashlib.md5((code + "\n" + "\n".join(imports)).encode()).hexdigest(),
           "run_function_name": "run", "code_str": code, "imports": list(imports),
           "inputs_json": json.dumps(inputs if inputs is not None else {"a": 1}),
           "workflow_context": {}}
    req.update(extra)
    return req


def run(coro):
    return asyncio.run(coro)


class Signatures(unittest.TestCase):
    """The stub is the pinned client's contract (item 7)."""

    def test_stored_file_is_the_pinned_version(self):
        with open(os.path.join(MODAL_DIR, "requirements-deploy.txt")) as f:
            pins = dict(line.strip().split("==") for line in f if "==" in line)
        self.assertEqual(pins["modal"], fake_modal.VERSION)

    def test_stored_file_matches_the_client_source(self):
        if not os.path.isdir(MIRROR):
            self.skipTest("no modal-client git dir at %s (set BLOCKBOX_MODAL_CLIENT_GIT)" % MIRROR)
        stored = modal_signatures.load_stored()
        fresh = modal_signatures.extract(MIRROR, stored["commit"])
        self.assertEqual(fresh["modal_version"], stored["modal_version"])
        self.assertEqual(fresh["signatures"], stored["signatures"])

    def test_stub_refuses_unknown_and_deprecated_parameters(self):
        modal = fake_modal.make()
        app = modal.App("x")
        with self.assertRaisesRegex(TypeError, "deprecated"):
            app.function(max_inputs=1)
        with self.assertRaisesRegex(TypeError, "unexpected keyword"):
            app.function(restrict_modal_acess=True)
        with self.assertRaisesRegex(TypeError, "deprecated"):
            run(modal.Sandbox.create.aio("true", cidr_allowlist=[]))
        with self.assertRaisesRegex(TypeError, "unexpected keyword"):
            modal.fastapi_endpoint(methods="POST")
        with self.assertRaisesRegex(TypeError, "unexpected keyword"):
            modal.Image.debian_slim(python="3.11")

    def test_stub_refuses_blocking_calls_from_async_code(self):
        d = fake_modal.Dict.from_name("n")
        with self.assertRaisesRegex(RuntimeError, "use .aio"):
            fake_modal.make().Sandbox.create("true")
        self.assertIsNone(d.get("k"))


class Declarations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app, cls.modal = load_app()
        cls.execute = cls.app.execute

    def test_one_trusted_proxy_auth_endpoint(self):
        self.assertEqual(self.execute.endpoint, {"method": "POST", "requires_proxy_auth": True,
                                                 "label": "blockbox-execute"})
        self.assertEqual([f for f in self.modal.functions if f.endpoint], [self.execute])
        self.assertEqual(self.modal.functions, [self.execute], "no Modal function runs block code")
        self.assertEqual(self.execute.concurrency, {"max_inputs": 16})
        for key in ("min_containers", "scaledown_window", "enable_memory_snapshot", "region"):
            self.assertIn(key, self.execute.options)

    def test_block_image_pins_are_local_modes(self):
        steps = self.app.block_image.steps
        self.assertEqual(steps[0][0], "from_registry")
        self.assertTrue(steps[0][1][0].startswith("debian:12."))
        apt = dict(p.split("=", 1) for p in [s for s in steps if s[0] == "apt_install"][0][1])
        names = sorted(apt)
        local = subprocess.run(["dpkg-query", "-W", "-f", "${Package}=${Version}\\n"] + names,
                               capture_output=True, text=True)
        if local.returncode != 0:
            self.skipTest("dpkg-query cannot see %s here" % names)
        installed = dict(line.split("=", 1) for line in local.stdout.split())
        self.assertEqual(apt, installed, "the sandbox image must pin exactly this host's packages")
        self.assertIn("python3-numpy", apt)
        self.assertIn("python3-opencv", apt)
        copied = [s for s in steps if s[0] == "add_local_file"]
        self.assertEqual({os.path.basename(s[1][0]) for s in copied}, {"blockbox_runtime.py", "sandbox_main.py"})
        self.assertTrue(all(s[2] == {"copy": True} for s in copied))
        check = [s for s in steps if s[0] == "run_commands"][0][1][0]
        self.assertIn("--self-check %s" % self.app.RUNTIME_VERSION, check)
        self.assertEqual(self.app.RUNTIME_VERSION, self.runtime_version())

    @staticmethod
    def runtime_version():
        sys.path.insert(0, block_dir())
        import blockbox_runtime
        return blockbox_runtime.RUNTIME_VERSION

    def test_sandbox_self_check_of_this_host(self):
        ok = subprocess.run(["/usr/bin/python3", "-I", os.path.join(block_dir(), "sandbox_main.py"),
                             "--self-check", self.runtime_version()], capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        bad = subprocess.run(["/usr/bin/python3", "-I", os.path.join(block_dir(), "sandbox_main.py"),
                              "--self-check", "999"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("runtime", bad.stderr)

    def test_endpoint_image_pins_fastapi(self):
        pip = [s for s in self.app.endpoint_image.steps if s[0] == "pip_install"][0][1]
        self.assertTrue(all("==" in p for p in pip), pip)
        self.assertTrue(any(p.startswith("fastapi") for p in pip))

    def test_sandbox_options(self):
        fake_modal.Sandbox.created.clear()
        sb = run(self.app._create_sandbox(30))
        sb._terminate()
        kw = sb.kwargs
        self.assertIs(kw["block_network"], True)
        self.assertEqual(kw["timeout"], 30)
        self.assertEqual(kw["memory"], (1024, 1024))
        self.assertEqual(kw["cpu"], (1.0, 1.0))
        self.assertEqual(kw["region"], self.app.REGION)
        self.assertIs(kw["image"], self.app.block_image)
        for absent in ("secrets", "volumes", "network_file_systems", "encrypted_ports",
                       "outbound_domain_allowlist", "include_oidc_identity_token"):
            self.assertNotIn(absent, kw)
        self.assertEqual(sb.args[0], "/usr/bin/python3")

    def test_bad_knobs_refused(self):
        for env in ({"BLOCKBOX_MODAL_APP": "Bad_Name"}, {"BLOCKBOX_MODAL_APP": "a" * 49},
                    {"BLOCKBOX_MODAL_MEMORY_MB": "lots"}, {"BLOCKBOX_MODAL_TIMEOUT": "0"}):
            with self.assertRaises(RuntimeError):
                load_app(env)


class DeployTool(unittest.TestCase):
    def deploy(self, *args):
        return subprocess.run([sys.executable, os.path.join(MODAL_DIR, "deploy.py")] + list(args),
                              capture_output=True, text=True)

    def test_dry_run_deploys_this_checkout_with_the_runtime_tag(self):
        out = self.deploy("deploy", "--dry-run", "--app", "bbx", "--env", "BLOCKBOX_MODAL_WARM_SANDBOXES=0")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("modal deploy %s" % APP_PY, out.stdout)
        self.assertIn("runtime %s, modal %s" % (Declarations.runtime_version(), fake_modal.VERSION), out.stdout)
        self.assertIn("MODAL_WEB_ENDPOINT_URL=https://roboflow--bbx-execute.modal.run", out.stdout)
        self.assertIn("modal app stop bbx", self.deploy("remove", "--dry-run", "--app", "bbx").stdout)
        self.assertIn("modal app list", self.deploy("list", "--dry-run").stdout)

    def test_bad_arguments_refused(self):
        self.assertNotEqual(self.deploy("deploy", "--dry-run", "--app", "Bad_App").returncode, 0)
        self.assertNotEqual(self.deploy("deploy", "--dry-run", "--env", "PATH=/x").returncode, 0)


class Names(unittest.TestCase):
    def test_every_name_fits_for_any_accepted_id(self):
        import blockbox_modal_endpoint as ep
        ids = ["a", "ws-1", "x" * 55, "x" * 56, "y" * 128, "Z_" * 64]
        names = set()
        for ws in ids:
            self.assertTrue(ep.check_workspace(ws, False))
            name = ep.modal_name("bbx-code-", ws)
            self.assertLessEqual(len(name), 64, name)
            names.add(name)
            fake_modal.Dict.from_name(name, create_if_missing=True)
        self.assertEqual(len(names), len(ids))
        long_id = "q" * 100
        hashed = ep.modal_name("bbx-code-", long_id)
        self.assertNotEqual(ep.modal_name("bbx-code-", hashed[len("bbx-code-"):]), hashed,
                            "an id shaped like a hashed name gets its own name")
        with self.assertRaises(ep.Refused):
            ep.check_workspace("x" * 129, False)


class Endpoint(unittest.TestCase):
    """The endpoint through app.run_in_sandbox with the stub's real local sandboxes."""

    def setUp(self):
        self.app, self.modal = load_app({"BLOCKBOX_MODAL_WARM_SANDBOXES": "0",
                                         "BLOCKBOX_MODAL_TIMEOUT": "3"})
        self.ep = self.app.ep
        fake_modal.Dict.created.clear()
        fake_modal.Sandbox.created.clear()
        self.cache, self.pool = self.app._endpoint_state()

    def tearDown(self):
        self.app._state.clear()

    def call(self, request, workspace="ws1", encoding=None, raw=None):
        body = raw if raw is not None else json.dumps(request).encode()
        if encoding == "gzip" and raw is None:
            body = gzip.compress(body)
        logs = io.StringIO()
        with contextlib.redirect_stderr(logs):
            status, out, headers = run(self.ep.handle(
                body, encoding, workspace, self.cache,
                lambda ws, b: self.app.run_in_sandbox(self.pool, ws, b), self.app.SETTINGS))
        self.logs, self.headers = logs.getvalue(), headers
        self.assertEqual(status, 200)
        return json.loads(out)

    def test_runs_in_a_fresh_sandbox_each_call(self):
        for a in (1, 2):
            response = self.call(envelope(inputs={"a": a}))
            self.assertIs(response["success"], True, response)
            self.assertEqual(json.loads(response["result"]), {"b": a + 1})
        self.assertEqual(len(fake_modal.Sandbox.created), 2)
        self.assertTrue(all(s.terminated for s in fake_modal.Sandbox.created))

    def test_gzip_and_bomb(self):
        self.assertIs(self.call(envelope(), encoding="gzip")["success"], True)
        bomb = gzip.compress(b" " * (self.ep.MAX_REQUEST_BYTES + 10))
        self.assertEqual(self.call(None, raw=bomb, encoding="gzip")["error_type"], "InvalidRequest")

    def test_bare_error_and_local_text(self):
        code = "def run(self, a):\n    x = 1\n    return {'b': a / 0}\n"
        response = self.call(envelope(code=code))
        self.assertEqual(response["error_type"], "ZeroDivisionError")
        self.assertEqual(response["error"], "division by zero", "Roboflow's client adds the prefix")
        self.assertEqual(response["line_number"], 3)
        self.assertEqual(response["function_name"], "run")
        self.assertNotIn("Blockbox-Error", self.headers, "a block error is the block's own")

    def test_self_only_when_first_parameter_is_self(self):
        code = "def validate_syntax():\n    return {'ok': True}\n"
        response = self.call(envelope(code=code, run_function_name="validate_syntax", inputs={}))
        self.assertIs(response["success"], True, response)
        code = "def run(self):\n    return {'ctx': self.get_workflow_context()}\n"
        response = self.call(envelope(code=code, inputs={}, workflow_context={"step_name": "s"}))
        self.assertEqual(json.loads(response["result"]), {"ctx": {"step_name": "s"}})

    def test_missing_function_is_a_name_error(self):
        response = self.call(envelope(code="def other(self):\n    return {}\n"))
        self.assertEqual(response["error_type"], "NameError")

    def test_ndarrays_in_value_form_unless_the_client_reads_data(self):
        code = "def run(self):\n    return {'m': np.arange(6, dtype=np.float32).reshape(2, 3)}\n"
        value = json.loads(self.call(envelope(code=code, inputs={}))["result"])["m"]
        self.assertEqual(value, {"_type": "ndarray", "dtype": "float32", "shape": [2, 3],
                                 "value": [[0, 1, 2], [3, 4, 5]]})
        data = json.loads(self.call(envelope(code=code, inputs={}, ndarray_form="data"))["result"])["m"]
        self.assertEqual(base64.b64decode(data["data"]), struct.pack("<6f", *range(6)))

    def test_hash_only_unknown_hash_and_workspace_isolation(self):
        first = envelope(inputs={"a": 1})
        self.assertTrue(self.call(first, workspace="ws1")["success"])
        hash_only = {k: v for k, v in first.items() if k not in ("code_str", "imports")}
        self.assertEqual(json.loads(self.call(hash_only, workspace="ws1")["result"]), {"b": 2})
        other = self.call(hash_only, workspace="ws2")
        self.assertEqual(other["error_type"], "UnknownCodeHash", "workspaces never share a cache entry")
        self.assertEqual({d for d in fake_modal.Dict.created}, {"bbx-code-ws1", "bbx-code-ws2"})

    def test_cache_entries_are_rehashed(self):
        # Verified to fail with the re-hash in CodeCache._verified switched off.
        first = envelope(inputs={"a": 1})
        self.call(first)
        store = fake_modal.Dict.created["bbx-code-ws1"]
        key = next(iter(store.data))
        planted = json.loads(store.data[key])
        planted["code_str"] = "def run(self, a):\n    return {'b': 'planted'}\n"
        store.data[key] = json.dumps(planted).encode()
        self.cache.local.clear()                  # a new endpoint container: reads the Dict
        hash_only = {k: v for k, v in first.items() if k not in ("code_str", "imports")}
        response = self.call(hash_only)
        self.assertEqual(response["error_type"], "UnknownCodeHash", response)
        self.assertIn("cache-entry-refused", self.logs)

    def test_init_code_is_part_of_the_key(self):
        code = "def run(self):\n    return {'v': self._init_results.get('v')}\n"
        with_init = envelope(code=code, inputs={}, init_function_code="def init():\n    return {'v': 1}\n")
        plain = envelope(code=code, inputs={})
        self.assertEqual(json.loads(self.call(with_init)["result"]), {"v": 1})
        self.assertEqual(json.loads(self.call(plain)["result"]), {"v": None})
        hash_only = {k: v for k, v in plain.items() if k not in ("code_str", "imports")}
        self.assertEqual(json.loads(self.call(hash_only)["result"]), {"v": None})
        self.assertEqual(json.loads(self.call(with_init)["result"]), {"v": 1})
        self.assertEqual(len(fake_modal.Dict.created["bbx-code-ws1"].data), 2)
        orphan = dict(hash_only, init_function_code="def init():\n    return {}\n")
        self.assertEqual(self.call(orphan)["error_type"], "InvalidRequest")
        # docs/wire.md's init_code_hash picks the entry with that init in a hash-only call
        digest = hashlib.md5((with_init["init_function_code"] + "\ninit").encode()).hexdigest()
        self.assertEqual(json.loads(self.call(dict(hash_only, init_code_hash=digest))["result"]), {"v": 1})
        other = dict(hash_only, init_code_hash="0" * 32)
        self.assertEqual(self.call(other)["error_type"], "UnknownCodeHash")

    def test_workspace_required_unless_anonymous(self):
        response = self.call(envelope(), workspace=None)
        self.assertEqual(response["error_type"], "ConfigurationError")
        self.assertIn("workspace_id", response["error"])
        self.assertEqual(self.call(envelope(), workspace="a b")["error_type"], "InvalidRequest")

    def test_timeout_is_trusted(self):
        response = self.call(envelope(code="def run(self, a):\n    while True:\n        pass\n"))
        self.assertEqual(response["error_type"], "Timeout")
        self.assertEqual(self.headers, {"Blockbox-Error": "Timeout"})
        self.assertTrue(fake_modal.Sandbox.created[-1].terminated)

    def test_memory_kill_is_trusted_memory_limit(self):
        code = "import os, signal\ndef run(self, a):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        response = self.call(envelope(code=code))
        self.assertEqual(response["error_type"], "MemoryLimit")
        self.assertEqual(self.headers, {"Blockbox-Error": "MemoryLimit"})

    def test_logs_name_no_code_or_inputs(self):
        self.call(envelope(code="def run(self, a):\n    return {'secret_output': 'S3CR3T'}\n",
                           inputs={"a": "INPUT-SECRET"}))
        self.assertIn("block-", self.logs)
        for needle in ("S3CR3T", "INPUT-SECRET", "secret_output"):
            self.assertNotIn(needle, self.logs)


EVIL = '''
import os, pickle, sys
class Evil:
    def __reduce__(self):
        return (exec, ("import os; os.environ['BB_PWNED'] = '1'",))
class EvilError(Exception):
    def __reduce__(self):
        return (exec, ("import os; os.environ['BB_PWNED'] = '1'",))
def write_every_fd(data, first):
    """Writes data to every descriptor from `first` up to 63 that takes it, then exits."""
    for fd in range(first, 64):
        try:
            os.write(fd, data)
        except OSError:
            pass
    os._exit(0)
def run(self, mode):
    payload = pickle.dumps(Evil())
    if mode == "raise":
        raise EvilError("x")
    if mode == "return":
        return {"x": Evil()}
    if mode == "fds":
        write_every_fd(payload, 0)
    if mode == "forge":
        forged = b'{"success": true, "result": "{\\\\"x\\\\": 1}", "stdout": "", "stderr": ""}'
        write_every_fd(forged, 3)
    if mode == "modal":
        pickle.loads = lambda *a, **k: Evil()
        import modal
    if mode == "flood":
        write_every_fd(b" " * (90 << 20), 3)
    return {"ok": True}
'''


class Boundary(unittest.TestCase):
    """Item 1: a block that tampers with pickle, Modal internals or its own return path
    cannot affect the endpoint. The attack is an object whose unpickling sets BB_PWNED in
    the unpickling process; `test_attack_works_on_the_old_design` shows it does what it
    says when trusted code unpickles what the block made (the old app's path: the
    function's return value and exceptions came back through Modal's pickle)."""

    def setUp(self):
        os.environ.pop("BB_PWNED", None)
        self.endpoint = Endpoint("call")
        self.endpoint.setUp()

    def tearDown(self):
        self.endpoint.tearDown()
        self.assertNotIn("BB_PWNED", os.environ, "the block ran code in the endpoint")

    def test_attack_works_on_the_old_design(self):
        namespace = {}
        exec(EVIL, namespace)
        try:
            namespace["run"](None, "raise")
        except Exception as exc:  # noqa: BLE001 - what Modal would pickle back
            pickle.loads(pickle.dumps(exc))
        self.assertEqual(os.environ.pop("BB_PWNED", None), "1")

    def test_hostile_blocks(self):
        expect = {"raise": ("EvilError", False), "return": (True, False), "fds": ("InvalidResponse", True),
                  "forge": (True, False), "modal": ("ModuleNotFoundError", False),
                  "flood": ("OutputLimit", True)}
        for mode, (want, trusted) in expect.items():
            response = self.endpoint.call(envelope(code=EVIL, inputs={"mode": mode}))
            if want is True:
                self.assertIs(response["success"], True, (mode, response))
            else:
                self.assertEqual(response["error_type"], want, (mode, response))
            self.assertEqual("Blockbox-Error" in self.endpoint.headers, trusted, mode)
            self.assertNotIn("BB_PWNED", os.environ, mode)
            # and the endpoint still serves others normally
            ok = self.endpoint.call(envelope(), workspace="other")
            self.assertEqual(json.loads(ok["result"]), {"b": 2}, mode)


if __name__ == "__main__":
    unittest.main(verbosity=1)
