#!/usr/bin/python3
# test_app.py: tests drivers/modal/app.py with a stub `modal` module: decorator options,
# envelope validation, code caching by md5, dispatch to the restricted function, logs.
import asyncio
import contextlib
import gzip
import hashlib
import importlib.util
import io
import json
import os
import sys
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
APP_PY = os.path.join(ROOT, "drivers", "modal", "app.py")
RUNTIME_DIR = os.path.join(ROOT, "src", "runtime")


class FakeImage:
    def __init__(self, calls):
        self.calls = calls

    @classmethod
    def debian_slim(cls, **kw):
        return cls([("debian_slim", (), kw)])

    def __getattr__(self, name):
        def step(*args, **kw):
            return FakeImage(self.calls + [(name, args, kw)])
        return step


class FakeDict(dict):
    names = []

    @classmethod
    def from_name(cls, name, **kw):
        cls.names.append((name, kw))
        return cls()

    def put(self, key, value):
        self[key] = json.loads(json.dumps(value))   # Modal pickles: no shared references


class FakeFunction:
    def __init__(self, fn, options, endpoint):
        self.fn, self.options, self.endpoint = fn, options, endpoint
        self.remote_calls = 0
        self.remote_override = None

    def remote(self, *args):
        self.remote_calls += 1
        if self.remote_override:
            return self.remote_override(*args)
        return self.fn(*args)


def make_fake_modal():
    modal = types.ModuleType("modal")
    modal.Image = FakeImage
    modal.Dict = FakeDict
    modal.functions = []

    def fastapi_endpoint(**kw):
        def wrap(fn):
            fn._endpoint_options = kw
            return fn
        return wrap

    class App:
        def __init__(self, name=None, **kw):
            self.name, self.kw = name, kw

        def function(self, **options):
            def wrap(fn):
                f = FakeFunction(fn, options, getattr(fn, "_endpoint_options", None))
                modal.functions.append(f)
                return f
            return wrap

    modal.App = App
    modal.fastapi_endpoint = fastapi_endpoint
    return modal


def load_app(workspace="ws1", env_extra=None):
    fake = make_fake_modal()
    sys.modules["modal"] = fake
    saved = dict(os.environ)
    os.environ["BLOCKBOX_WORKSPACE_ID"] = workspace
    os.environ.pop("BLOCKBOX_RUNTIME_VERSION", None)
    os.environ.update(env_extra or {})
    try:
        spec = importlib.util.spec_from_file_location("blockbox_modal_app_%s" % workspace, APP_PY)
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
           "workflow_context": {}, "runtime_version": "1"}
    req.update(extra)
    return req


class DecoratorOptions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app, cls.modal = load_app("acme-01")

    def test_app_name_per_workspace(self):
        self.assertEqual(self.app.app.name, "inference-workspace-acme-01")
        self.assertEqual(self.app.APP_NAME, "inference-workspace-acme-01")

    def test_restricted_function_options_exactly(self):
        run_block = self.app.run_block
        self.assertEqual(set(run_block.options), {"image", "restrict_modal_access", "max_inputs",
                                                  "timeout", "region", "block_network"})
        self.assertIs(run_block.options["restrict_modal_access"], True)
        self.assertEqual(run_block.options["max_inputs"], 1)
        self.assertEqual(run_block.options["timeout"], 20)
        self.assertEqual(run_block.options["region"], "us-central1")
        self.assertIs(run_block.options["block_network"], True)
        self.assertIsNone(run_block.endpoint, "the restricted function must not be a web endpoint")

    def test_block_image(self):
        calls = self.app.run_block.options["image"].calls
        self.assertEqual(calls[0], ("debian_slim", (), {"python_version": "3.11"}))
        pip = [c for c in calls if c[0] == "pip_install"]
        self.assertEqual(len(pip), 1)
        names = " ".join(pip[0][1])
        self.assertIn("numpy", names)
        self.assertIn("opencv-python-headless", names)
        env = [c[1][0] for c in calls if c[0] == "env"][0]
        sys.path.insert(0, RUNTIME_DIR)
        import blockbox_runtime
        self.assertEqual(env["BLOCKBOX_RUNTIME_VERSION"], blockbox_runtime.RUNTIME_VERSION)
        files = [c for c in calls if c[0] == "add_local_file"]
        self.assertEqual(len(files), 1)
        self.assertTrue(files[0][1][0].endswith("src/runtime/blockbox_runtime.py"))
        self.assertEqual(files[0][2], {"copy": True})

    def test_endpoint_is_trusted_and_proxy_authenticated(self):
        execute = self.app.execute
        self.assertEqual(execute.endpoint, {"method": "POST", "requires_proxy_auth": True})
        self.assertNotIn("restrict_modal_access", execute.options)
        self.assertNotIn("block_network", execute.options)
        endpoints = [f for f in self.modal.functions if f.endpoint is not None]
        self.assertEqual(endpoints, [execute], "exactly one web endpoint, the trusted one")

    def test_bad_workspace_refused_at_deploy(self):
        for bad in ("", "a.b", "x" * 129, "ws/1"):
            with self.assertRaises(RuntimeError):
                load_app(bad)


class Endpoint(unittest.TestCase):
    def setUp(self):
        self.app, self.modal = load_app("ws1")
        self.cache = self.app.CodeCache(FakeDict())
        self.remote_calls = []

        def remote(body):
            self.remote_calls.append(json.loads(body))
            return self.app.run_block.fn(body)
        self.remote = remote
        sys.path.insert(0, RUNTIME_DIR)

    def call(self, request, encoding=None, workspace="ws1", raw=None):
        body = raw if raw is not None else json.dumps(request).encode()
        if encoding == "gzip" and raw is None:
            body = gzip.compress(body)
        logs = io.StringIO()
        with contextlib.redirect_stderr(logs):
            status, out = self.app.handle(body, encoding, workspace, self.cache, self.remote)
        self.logs = logs.getvalue()
        self.assertEqual(status, 200)
        return json.loads(out)

    def refused(self, request, error_type="InvalidRequest", **kw):
        before = len(self.remote_calls)
        response = self.call(request, **kw)
        self.assertIs(response["success"], False, response)
        self.assertEqual(response["error_type"], error_type, response)
        self.assertEqual(len(self.remote_calls), before, "a refused request must not reach the function")
        return response

    def test_runs_a_block_in_the_restricted_function(self):
        response = self.call(envelope(inputs={"a": 41}))
        self.assertIs(response["success"], True, response)
        self.assertEqual(json.loads(response["result"]), {"b": 42})
        self.assertEqual(len(self.remote_calls), 1)

    def test_gzip_body(self):
        response = self.call(envelope(inputs={"a": 1}), encoding="gzip")
        self.assertIs(response["success"], True, response)

    def test_gzip_bomb_refused(self):
        bomb = gzip.compress(b" " * (self.app.MAX_REQUEST_BYTES + 10))
        self.refused(None, raw=bomb, encoding="gzip")

    def test_corrupt_gzip_and_unknown_encoding(self):
        self.refused(None, raw=b"\x1f\x8b not gzip", encoding="gzip")
        self.refused(None, raw=b"{}", encoding="br")

    def test_hash_only_after_code_then_unknown_hash(self):
        first = envelope(inputs={"a": 1})
        self.assertTrue(self.call(first)["success"])
        hash_only = {k: v for k, v in first.items() if k not in ("code_str", "imports")}
        hash_only["inputs_json"] = json.dumps({"a": 5})
        response = self.call(hash_only)
        self.assertEqual(json.loads(response["result"]), {"b": 6})
        self.assertEqual(self.remote_calls[-1]["code_str"], first["code_str"])
        other = envelope(code="def run(self):\n    return {}\n")
        del other["code_str"]
        response = self.refused(other, error_type="UnknownCodeHash")
        self.assertIn(other["code_hash"], response["error"])

    def test_code_cache_survives_a_new_container_through_the_dict(self):
        first = envelope()
        self.call(first)
        store = self.cache.store
        self.assertIn("block-" + first["code_hash"], store)
        self.cache = self.app.CodeCache(store)   # a new endpoint container, same Dict
        hash_only = {k: v for k, v in first.items() if k != "code_str"}
        self.assertTrue(self.call(hash_only)["success"])

    def test_validation(self):
        self.refused(None, raw=b"{not json")
        self.refused(None, raw=b"[1, 2]")
        self.refused(envelope(extra_field=1))
        self.refused(envelope(code_hash="0" * 31))
        self.refused(envelope(code_hash="Z" * 32))
        bad = envelope()
        bad["code_hash"] = hashlib.md5(b"something else").hexdigest()
        response = self.refused(bad)
        self.assertIn("does not match", response["error"])
        as_text = envelope()
        as_text["imports"] = "import os"
        self.refused(as_text)
        self.refused(envelope(imports=["import os\nimport sys"]))
        self.refused(envelope(run_function_name="run; import os"))
        self.refused(envelope(workflow_context=[1]))
        self.refused(envelope(inputs_json={"a": 1}))
        self.refused(envelope(code_str=None), error_type="UnknownCodeHash")   # null = absent
        self.refused(envelope(code_str=5))

    def test_runtime_version_mismatch_is_clear(self):
        response = self.refused(envelope(runtime_version="999"), error_type="ConfigurationError")
        self.assertIn("runtime version mismatch", response["error"])
        self.assertIn("999", response["error"])

    def test_image_runtime_mismatch_is_clear(self):
        import blockbox_runtime
        saved = blockbox_runtime.RUNTIME_VERSION
        blockbox_runtime.RUNTIME_VERSION = "0-old"
        try:
            response = self.call(envelope())
        finally:
            blockbox_runtime.RUNTIME_VERSION = saved
        self.assertEqual(response["error_type"], "ConfigurationError")
        self.assertIn("redeploy", response["error"])

    def test_wrong_workspace_refused(self):
        self.refused(envelope(), error_type="ConfigurationError", workspace="other")

    def test_function_timeout_becomes_timeout(self):
        class FunctionTimeoutError(Exception):
            pass

        def remote(body):
            raise FunctionTimeoutError("deadline")
        self.remote = remote
        response = self.call(envelope())
        self.assertEqual(response["error_type"], "Timeout")

    def test_logs_name_blocks_by_md5_only(self):
        req = envelope(code="def run(self, a):\n    return {'secret_marker_code': a}\n",
                       inputs={"a": "secret_marker_input"})
        self.call(req)
        self.assertIn("block-" + req["code_hash"], self.logs)
        self.assertNotIn("secret_marker", self.logs)

    def test_fastapi_wrapper(self):
        class FakeRequest:
            headers = {"content-encoding": "gzip"}
            query_params = {"workspace_id": "ws1"}

            async def body(self):
                return gzip.compress(json.dumps(envelope()).encode())
        self.app._cache = self.cache
        self.app.run_block.remote_override = lambda body: self.app.run_block.fn(body)
        status, body = asyncio.run(self.app.execute.fn(FakeRequest()))
        self.assertEqual(status, 200)
        self.assertTrue(json.loads(body)["success"])
        self.assertEqual(self.app.run_block.remote_calls, 1)


if __name__ == "__main__":
    unittest.main(verbosity=1)
