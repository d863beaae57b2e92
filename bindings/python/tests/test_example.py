# test_example.py: examples/python/workflow.py (a Workflows-shaped block with an image and
# detections) gives identical outputs with WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE local and
# modal (the modal driver against the HTTPS emulator of tests/emulator).
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))

from harness import Emulator  # noqa: E402

EXAMPLE = os.path.join(ROOT, "examples", "python", "workflow.py")
MODE_KEYS = ("WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE", "MODAL_WEB_ENDPOINT_URL", "BLOCKBOX_CA_FILE",
             "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "BLOCKBOX_WORKSPACE_ID")


def run_example(extra_env):
    env = {k: v for k, v in os.environ.items() if k not in MODE_KEYS}
    env.update(extra_env)
    p = subprocess.run([sys.executable, EXAMPLE], env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("example failed (%s): %s" % (extra_env.get(MODE_KEYS[0]), p.stderr[-3000:]))
    return json.loads(p.stdout)


class Example(unittest.TestCase):
    def test_local_and_modal_give_identical_outputs(self):
        local = run_example({"WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE": "local"})
        with Emulator() as emu:
            modal = run_example(emu.env())
            self.assertGreaterEqual(emu.stats().get("executions", 0), 1, emu.stats())
        self.assertEqual(local.pop("driver"), "local")
        self.assertEqual(modal.pop("driver"), "modal")
        self.assertEqual(local, modal)
        out = local["outputs"]
        self.assertEqual(out["counts"], {"car": 1, "dog": 1})
        self.assertEqual([p["detection_id"] for p in out["kept"]["predictions"]], ["d-1", "d-3"])
        self.assertEqual(out["brightness"]["value"][0], 60.0)   # the flat (30, 60, 90) patch
        self.assertEqual(out["annotated"]["image"], [240, 320, 3])
        self.assertEqual(out["runs"], 1)
        self.assertEqual(local["stdout"], "kept 2 of 3 boxes\n")
        self.assertEqual(local["debug_traces"], [{"kept": 2}])


if __name__ == "__main__":
    unittest.main()
