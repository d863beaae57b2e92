# test_amalgamate.py: unit tests of src/runtime/amalgamate.py, which assembles the runtime's
# modules into blockbox_runtime.py: the build's file is in sync, output is deterministic, refusals.
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(ROOT, "src", "runtime")
TOOL = os.path.join(SRC, "amalgamate.py")
_spec = importlib.util.spec_from_file_location("amalgamate_under_test", TOOL)
amalgamate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(amalgamate)
MAX_MODULE_LINES = 700


class ModulesTest(unittest.TestCase):
    def test_the_builds_file_is_the_amalgamation_of_these_modules(self):
        built = os.environ.get("BLOCKBOX_RUNTIME_DIR")
        if not built:
            self.skipTest("BLOCKBOX_RUNTIME_DIR not set (ctest sets it to build/runtime)")
        out = subprocess.run([sys.executable, TOOL, "--check", os.path.join(built, "blockbox_runtime.py")],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_every_module_is_listed_documented_and_small(self):
        present = sorted(f for f in os.listdir(SRC) if f.endswith(".py") and f != "amalgamate.py")
        self.assertEqual(sorted(amalgamate.MODULES), present)
        for name in amalgamate.MODULES:
            with open(os.path.join(SRC, name), encoding="utf-8") as f:
                text = f.read()
            self.assertTrue(text.startswith('"""'), "%s must start with its docstring" % name)
            self.assertLessEqual(text.count("\n"), MAX_MODULE_LINES, name)

    def test_output_is_deterministic_and_compiles(self):
        first = amalgamate.amalgamate()
        self.assertEqual(first, amalgamate.amalgamate())
        with tempfile.TemporaryDirectory() as tmp:
            a, b = os.path.join(tmp, "a", "blockbox_runtime.py"), os.path.join(tmp, "b.py")
            for path in (a, b):
                out = subprocess.run([sys.executable, TOOL, "--out", path], capture_output=True, text=True)
                self.assertEqual(out.returncode, 0, out.stderr)
            with open(a, "rb") as fa, open(b, "rb") as fb:
                self.assertEqual(fa.read(), fb.read())
            with open(a, encoding="utf-8") as f:
                self.assertEqual(f.read(), first)
            self.assertEqual(sorted(os.listdir(tmp)), ["a", "b.py"], "no temporary file is left")
        compile(first, "blockbox_runtime.py", "exec")
        # the modules in the order of the list, each once, after the generated-file header
        names = re.findall(r"^# =+ (\S+\.py) =+$", first, re.M)
        self.assertEqual(tuple(names), amalgamate.MODULES)
        self.assertTrue(first.startswith("# blockbox_runtime.py: GENERATED"))
        # app.py and deploy.py read the version as text
        self.assertRegex(first, r'(?m)^RUNTIME_VERSION\s*=\s*"[^"]+"$')

    def test_check_finds_a_stale_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "blockbox_runtime.py")
            amalgamate.write(path)
            with open(path, "a", encoding="utf-8") as f:
                f.write("# an edit\n")
            out = subprocess.run([sys.executable, TOOL, "--check", path], capture_output=True, text=True)
            self.assertEqual(out.returncode, 1)
            self.assertIn("is not the amalgamation", out.stderr)

    def test_load_builds_the_module_in_memory(self):
        name = "blockbox_runtime_loaded_by_test"
        try:
            module = amalgamate.load(name)
            self.assertIs(sys.modules[name], module)
            reply = module.execute_request({"code_hash": "x", "inputs_json": "{}"})
            self.assertEqual(reply["error_type"], "UnknownCodeHash")
        finally:
            sys.modules.pop(name, None)


class RefusalsTest(unittest.TestCase):
    """What the tool refuses, each on a copy of the modules with one fault."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bb-amalgamate-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        for name in amalgamate.MODULES:
            shutil.copy(os.path.join(SRC, name), self.tmp)

    def write(self, name, text):
        with open(os.path.join(self.tmp, name), "w", encoding="utf-8") as f:
            f.write(text)

    def refused(self, pattern, modules=amalgamate.MODULES):
        with self.assertRaisesRegex(amalgamate.AmalgamationError, pattern):
            amalgamate.amalgamate(self.tmp, modules)
        out = os.path.join(self.tmp, "out", "blockbox_runtime.py")
        cli = subprocess.run([sys.executable, TOOL, "--src", self.tmp, "--out", out],
                             capture_output=True, text=True)
        if modules == amalgamate.MODULES:
            self.assertEqual(cli.returncode, 2, cli.stderr)
            self.assertRegex(cli.stderr, pattern)
            self.assertFalse(os.path.exists(os.path.dirname(out)), "nothing is written")

    def test_the_copy_itself_is_accepted(self):
        self.assertEqual(amalgamate.amalgamate(self.tmp), amalgamate.amalgamate())

    def test_unlisted_module(self):
        self.write("unlisted_module.py", '"""unlisted_module.py: a new module."""\n')
        self.refused(r"not in amalgamate\.MODULES.*unlisted_module\.py")

    def test_listed_module_missing(self):
        os.unlink(os.path.join(self.tmp, "traces.py"))
        self.refused(r"traces\.py")

    def test_name_bound_by_two_modules(self):
        with open(os.path.join(self.tmp, "warmup.py"), "a", encoding="utf-8") as f:
            f.write("\n\ndef _b64text(raw):\n    return ''\n")
        self.refused(r"warmup\.py: top-level name '_b64text' is also bound by base\.py")

    def test_name_assigned_over_an_import(self):
        with open(os.path.join(self.tmp, "warmup.py"), "a", encoding="utf-8") as f:
            f.write("\nnp = None\n")
        self.refused(r"top-level name 'np'")

    def test_the_same_import_twice_is_no_clash(self):
        self.write("extra.py", '"""extra.py: imports only."""\nimport json\nimport numpy as np\n'
                               'from typing import Any\n')
        amalgamate.amalgamate(self.tmp, amalgamate.MODULES + ("extra.py",))
        self.write("extra.py", '"""extra.py: imports only."""\nimport ujson as json\n')
        self.refused(r"'json'", amalgamate.MODULES + ("extra.py",))

    def test_module_without_docstring(self):
        with open(os.path.join(SRC, "batch.py"), encoding="utf-8") as f:
            body = f.read().split('"""', 2)[2]
        self.write("batch.py", "# no docstring\n" + body)
        self.refused(r"batch\.py: must start with a docstring")

    def test_module_that_does_not_parse(self):
        with open(os.path.join(self.tmp, "capture.py"), "a", encoding="utf-8") as f:
            f.write("\ndef broken(:\n")
        self.refused(r"capture\.py:\d+:")


if __name__ == "__main__":
    unittest.main()
