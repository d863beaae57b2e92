#!/usr/bin/python3
"""test_ordinary_python.py: ordinary Python runs in the jail (issue 9 item 7) while the
matching attack still fails, through the CLI. Each test names what it stopped before:
it was verified failing on the tree before the change (UTF-8: UnicodeEncodeError;
asyncio: socketpair denied; signals: PermissionError / SIGSEGV for abort; faulthandler:
no fileno; sqlite: fchown reported; /dev/shm: missing)."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

BIN = None
RUN_TIMEOUT = 90


def run_block(code, env=None):
    """Runs `code` through `blockbox run`; returns (exit status, parsed stdout)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False, encoding="utf-8") as f:
        f.write(code)
        path = f.name
    try:
        child_env = {k: v for k, v in os.environ.items()
                     if not k.startswith("BLOCKBOX_") and k != "WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE"}
        child_env["WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE"] = "local"
        child_env.update(env or {})
        proc = subprocess.run([BIN, "run", "--code", path], env=child_env, capture_output=True,
                              timeout=RUN_TIMEOUT)
    finally:
        os.unlink(path)
    try:
        out = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        raise AssertionError("blockbox printed no JSON (exit %d): %r / %r"
                             % (proc.returncode, proc.stdout[:500], proc.stderr[:500]))
    return proc.returncode, out


class OrdinaryPython(unittest.TestCase):
    def ok(self, code):
        rc, out = run_block(code)
        self.assertEqual(rc, 0, out)
        self.assertTrue(out["success"], out)
        self.assertEqual(out.get("denied_syscalls", []), [], out)
        return out

    def test_utf8_files_names_and_streams(self):
        out = self.ok("import sys, os, locale\n"
                      "def run(self):\n"
                      "    open('café.txt', 'w').write('café ☕')\n"
                      "    text = open('café.txt').read()\n"
                      "    print('naïve', file=sys.stderr); print('Ωmega')\n"
                      "    return {'text': text, 'names': os.listdir('.'),\n"
                      "            'fs': sys.getfilesystemencoding(), 'pref': locale.getpreferredencoding()}\n")
        self.assertEqual(out["outputs"]["text"], "café ☕")
        self.assertIn("café.txt", out["outputs"]["names"])
        self.assertEqual(out["outputs"]["fs"], "utf-8")
        self.assertEqual(out["outputs"]["pref"], "utf-8")
        self.assertEqual(out["stdout"], "Ωmega\n")
        self.assertEqual(out["stderr"], "naïve\n")

    def test_asyncio_runs(self):
        out = self.ok("import asyncio\n"
                      "async def work(n):\n    await asyncio.sleep(0.01)\n    return n * 2\n"
                      "def run(self):\n"
                      "    async def main():\n        return await asyncio.gather(*(work(i) for i in range(3)))\n"
                      "    return {'r': asyncio.run(main())}\n")
        self.assertEqual(out["outputs"]["r"], [0, 2, 4])

    def test_sockets_other_than_an_inner_pair_stay_denied(self):
        rc, out = run_block("import socket\n"
                            "def run(self):\n    res = {}\n"
                            "    for name, make in (('unix', lambda: socket.socket(socket.AF_UNIX)),\n"
                            "                       ('inet', lambda: socket.socket()),\n"
                            "                       ('inet_pair', lambda: socket.socketpair(socket.AF_INET))):\n"
                            "        try:\n            make(); res[name] = 'made'\n"
                            "        except OSError as e:\n            res[name] = e.errno\n"
                            "    a, b = socket.socketpair()\n"
                            "    try:\n        a.bind('\\0bb-abstract'); res['bind'] = 'bound'\n"
                            "    except OSError as e:\n        res['bind'] = e.errno\n"
                            "    return res\n")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["outputs"], {"unix": 1, "inet": 1, "inet_pair": 1, "bind": 1})
        self.assertEqual(sorted(out["denied_syscalls"]), ["bind", "socket", "socketpair"])

    def test_signals_to_itself_behave_as_in_cpython(self):
        out = self.ok("import os, signal\n"
                      "def run(self):\n    got = []\n"
                      "    signal.signal(signal.SIGUSR1, lambda *a: got.append('usr1'))\n"
                      "    os.kill(os.getpid(), signal.SIGUSR1)\n    signal.raise_signal(signal.SIGUSR1)\n"
                      "    signal.pthread_kill(__import__('threading').get_ident(), signal.SIGUSR1)\n"
                      "    os.kill(os.getpid(), 0)\n"
                      "    signal.signal(signal.SIGTERM, signal.SIG_IGN); os.kill(os.getpid(), signal.SIGTERM)\n"
                      "    try:\n        signal.raise_signal(signal.SIGINT)\n"
                      "    except KeyboardInterrupt:\n        got.append('int')\n"
                      "    return {'got': got}\n")
        self.assertEqual(out["outputs"]["got"], ["usr1", "usr1", "usr1", "int"])

    def test_abort_is_a_crash_named_sigabrt(self):
        rc, out = run_block("import os\ndef run(self):\n    os.abort()\n")
        self.assertEqual(rc, 3, out)
        self.assertEqual(out["error_type"], "SandboxCrash")
        self.assertIn("SIGABRT", out["error"])

    def test_default_fatal_signal_ends_the_worker(self):
        rc, out = run_block("import os, signal\ndef run(self):\n"
                            "    os.kill(os.getpid(), signal.SIGTERM)\n    return {'alive': True}\n")
        self.assertEqual(rc, 3, out)
        self.assertIn("SIGTERM", out["error"])

    def test_signals_to_anything_else_are_denied(self):
        rc, out = run_block("import os, signal\ndef run(self):\n    res = []\n"
                            "    for target in (-1, 0 if os.getpid() != 1 else 2, os.getppid() or 2, 12345):\n"
                            "        try:\n            os.kill(target, signal.SIGKILL); res.append('sent')\n"
                            "        except OSError as e:\n            res.append(e.errno)\n"
                            "    import ctypes\n    libc = ctypes.CDLL(None, use_errno=True)\n"
                            "    other = 2 if os.getpid() == 1 else 1\n"
                            "    if libc.syscall(234, other, other, 9) == 0:\n        res.append('sent')\n"   # tgkill
                            "    else:\n        res.append(ctypes.get_errno())\n"
                            "    return {'achieved': 'sent' in res, 'res': res}\n")
        self.assertEqual(rc, 0, out)
        self.assertFalse(out["outputs"]["achieved"], out)
        self.assertIn("kill", out["denied_syscalls"])

    def test_faulthandler_and_c_level_output(self):
        out = self.ok("import faulthandler, os, sys\n"
                      "def run(self):\n    faulthandler.enable()\n"
                      "    os.write(sys.stdout.fileno(), 'fd1 ü\\n'.encode())\n"
                      "    faulthandler.dump_traceback(all_threads=False)\n"
                      "    return {'enabled': faulthandler.is_enabled()}\n")
        self.assertTrue(out["outputs"]["enabled"])
        self.assertEqual(out["stdout"], "fd1 ü\n")
        self.assertIn('File "<run_code>", line 5 in run', out["stderr"])

    def test_sqlite_on_disk_is_not_a_denial(self):
        out = self.ok("import sqlite3\ndef run(self):\n    db = sqlite3.connect('t.db')\n"
                      "    db.execute('create table t (x)'); db.execute('insert into t values (1)'); db.commit()\n"
                      "    db.execute('pragma journal_mode=wal'); db.execute('insert into t values (2)'); db.commit()\n"
                      "    return {'rows': db.execute('select count(*) from t').fetchone()[0]}\n")
        self.assertEqual(out["outputs"]["rows"], 2)

    def test_private_dev_shm(self):
        out = self.ok("import multiprocessing, os, mmap, _posixshmem\n"
                      "def run(self):\n    lock = multiprocessing.Lock()\n    with lock:\n        pass\n"
                      "    fd = _posixshmem.shm_open('/bb-test', os.O_CREAT | os.O_RDWR, 0o600)\n"
                      "    os.ftruncate(fd, 4096); m = mmap.mmap(fd, 4096); m[0] = 7\n"
                      "    names = os.listdir('/dev/shm'); v = m[0]; m.close(); os.close(fd)\n"
                      "    _posixshmem.shm_unlink('/bb-test')\n"
                      "    return {'v': v, 'names': names}\n")
        self.assertEqual(out["outputs"]["v"], 7)
        self.assertEqual(out["outputs"]["names"], ["bb-test"], "another worker's or the host's /dev/shm")

    def test_dev_shm_is_capped_by_the_worker_tmpfs(self):
        rc, out = run_block("import os\ndef run(self):\n    n = 0\n"
                            "    with open('/dev/shm/fill', 'wb') as f:\n"
                            "        try:\n            while n < 4096:\n"
                            "                f.write(b'x' * (1 << 20)); f.flush(); n += 1\n"
                            "        except OSError as e:\n            return {'mb': n, 'errno': e.errno}\n"
                            "    return {'mb': n}\n", env={"BLOCKBOX_TMPFS_MB": "16"})
        self.assertEqual(rc, 0, out)
        self.assertLessEqual(out["outputs"]["mb"], 16)
        self.assertEqual(out["outputs"].get("errno"), 28)   # ENOSPC (or EFBIG would be 27)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    args, rest = parser.parse_known_args()
    BIN = args.bin
    unittest.main(argv=[sys.argv[0]] + rest)
