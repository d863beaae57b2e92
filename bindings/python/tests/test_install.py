# test_install.py: an installed blockbox works from any prefix: `cmake --install` into a
# temporary prefix, a C program linked against the installed library runs a block (the
# library finds its worker relative to itself), and `pip install` of the binding (offline,
# Debian's setuptools, no build isolation) runs a block against that installed library.
# Needs BLOCKBOX_BUILD_DIR (the cmake build tree) in the environment.
import ctypes.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
BUILD = os.environ.get("BLOCKBOX_BUILD_DIR")
CMAKE = os.environ.get("CMAKE_COMMAND", "cmake")

PROGRAM = r"""
#include <blockbox.h>
#include <stdio.h>
int main(void) {
    bb_error *err = NULL;
    bb_executor *ex = bb_executor_new(NULL, &err);
    if (!ex) { fprintf(stderr, "executor: %s\n", bb_error_message(err)); return 2; }
    bb_block_spec spec = { .run_code = "def run(self, x):\n    return {'y': x + 1}\n" };
    bb_block *blk = bb_block_load(ex, &spec, &err);
    if (!blk) { fprintf(stderr, "load: %s\n", bb_error_message(err)); return 3; }
    bb_result *res = bb_block_run(blk, "{\"x\": 41}", NULL);
    int ok = bb_result_ok(res);
    puts(ok ? bb_result_outputs(res) : bb_error_message(bb_result_error(res)));
    bb_result_free(res); bb_block_free(blk); bb_executor_free(ex);
    return ok ? 0 : 1;
}
"""


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BLOCKBOX_", "WORKFLOWS_", "MODAL_")) and k != "PYTHONPATH"}
    env.update(extra)
    return env


@unittest.skipUnless(BUILD, "set BLOCKBOX_BUILD_DIR")   # ctest always sets it
class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bb-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        subprocess.run([CMAKE, "--install", BUILD, "--prefix", cls.prefix], check=True,
                       stdout=subprocess.DEVNULL)
        libs = [os.path.join(root, f) for root, _, files in os.walk(cls.prefix) for f in files
                if f == "libblockbox.so"]
        assert len(libs) == 1, libs
        cls.lib = libs[0]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_c_program_linked_against_the_installed_library(self):
        # Without the lookup relative to the library, this fails with "the sandbox worker
        # /usr/local/libexec/blockbox/blockbox-worker is missing" (the configured prefix).
        src = os.path.join(self.tmp, "prog.c")
        exe = os.path.join(self.tmp, "prog")
        with open(src, "w") as f:
            f.write(PROGRAM)
        libdir = os.path.dirname(self.lib)
        subprocess.run(["cc", "-o", exe, src, "-I", os.path.join(self.prefix, "include"), "-L", libdir,
                        "-Wl,-rpath," + libdir, "-lblockbox"], check=True)
        p = subprocess.run([exe], env=clean_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, '{"y":42}'), p.stderr)

    def test_pip_install_offline_and_run(self):
        src = os.path.join(self.tmp, "src")
        shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        site = os.path.join(self.tmp, "site")
        p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                            "--no-deps", "--no-cache-dir", "--target", site, src],
                           env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"), capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        script = ("import blockbox, numpy as np\n"
                  "print(blockbox.__file__)\n"
                  "with blockbox.Executor.from_env() as ex:\n"
                  "    b = ex.load('def run(self, a):\\n    return {\"b\": a[::-1]}\\n')\n"
                  "    print(b.run(a=np.arange(3, dtype=np.int16))['b'].tolist())\n")
        p = subprocess.run([sys.executable, "-c", script], cwd=self.tmp, capture_output=True, text=True,
                           env=clean_env(PYTHONPATH=site, BLOCKBOX_LIBRARY=self.lib), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        where, value = p.stdout.splitlines()
        self.assertTrue(where.startswith(site), where)
        self.assertEqual(value, "[2, 1, 0]")

    def test_installed_package_without_a_library_says_so(self):
        site = os.path.join(self.tmp, "bare")
        shutil.copytree(os.path.join(PKG, "blockbox"), os.path.join(site, "blockbox"))
        p = subprocess.run([sys.executable, "-c", "import blockbox\ntry:\n    blockbox.Executor()\n"
                            "except blockbox.ConfigurationError as e:\n    print('CE', e)\nelse:\n"
                            "    print('LOADED', blockbox._lib.library_path())"],
                           cwd=self.tmp, capture_output=True, text=True, env=clean_env(PYTHONPATH=site))
        if ctypes.util.find_library("blockbox") or any(
                os.path.exists(os.path.join(d, "libblockbox.so")) for d in
                ("/usr/local/lib", "/usr/local/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")):
            self.assertTrue(p.stdout.startswith("LOADED /"), p.stdout + p.stderr)   # a system install
        else:
            self.assertTrue(p.stdout.startswith("CE libblockbox not found"), p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
