#!/usr/bin/python3
"""test_local_layers.py: one attack per jail layer through the CLI, each shown stopped
with the layer on and succeeding with it off (BLOCKBOX_INSECURE_DISABLE_LAYERS)."""

# Layers overlap on purpose (defence in depth), so an attack that two layers stop is
# shown with the OTHER one switched off as well; each test says which. Summary:
#
#   layer    attack                                    also switched off, and why
#   seccomp  socket() (any socket family)              -
#   netns    TCP connect to the test's 127.0.0.1 port  seccomp (denies socket())
#   mntns    read a world-readable host file in /tmp   -
#   pidns    kill(test pid, 0): is the host pid there? seccomp (traps kill())
#   ipcns    shmget() of the test's SysV segment       seccomp (traps shmget())
#   utsns    read the host's hostname                  -
#   cgroup   memory bomb -> MemoryLimit (kernel OOM)   rlimits too for the "bomb works" leg
#                                                      (RLIMIT_AS stands in for the cgroup)
#   uid      read a root-owned 0600 host file          mntns (hides the file)
#   userns   read another user's 0600 host file        mntns, uid, caps (each stops it)
#   caps     capget() shows capabilities; DAC override mntns, uid, userns (each stops the
#            on another user's 0600 file               DAC attack on its own)
#   rlimits  write a file past BLOCKBOX_MAX_FILE_MB    -
#
# Every layer can be switched off on its own; the doctor/describe report lists it as
# "disabled". The attacks that need host files owned by root or another user need
# root, like the layers they test (the suite runs as root on the CI host).

import ctypes
import os
import random
import socket
import sys
import tempfile
import time
import unittest
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cli_args  # noqa: E402  (tests/cli_args.py)
import cli_run  # noqa: E402  (tests/cli_run.py)

BIN = None
RUN_TIMEOUT = 60


def run_block(code, inputs, disable=None, env=None):
    """Runs `code` through `blockbox run`; returns (exit status, parsed stdout, stderr)."""
    child_env = {"BLOCKBOX_INSECURE_DISABLE_LAYERS": disable} if disable else {}
    child_env.update(env or {})
    proc = cli_run.run_local(BIN, code, inputs, env=child_env, timeout=RUN_TIMEOUT)
    out = cli_run.report(proc)
    if disable:
        assert "WARNING" in proc.stderr and disable in proc.stderr, \
            "switching layers off must warn on stderr: %r" % proc.stderr
    return proc.returncode, out, proc.stderr


def outputs(result):
    rc, out, stderr = result
    assert rc == 0 and out["success"], "the block failed (exit %d): %s / %s" % (rc, out, stderr[-500:])
    return out["outputs"]


def needs_root(test):
    return unittest.skipUnless(os.geteuid() == 0, "the attack needs host files of root/other users")(test)


class HostFile:
    """A file on the host with given content, owner and mode; removed afterwards."""

    def __init__(self, content, mode, uid=None):
        fd, self.path = tempfile.mkstemp(prefix="bb-local-layer-", dir="/tmp")
        os.write(fd, content.encode())
        os.close(fd)
        if uid is not None:
            os.chown(self.path, uid, uid)
        os.chmod(self.path, mode)

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        os.unlink(self.path)


READ_FILE = """
def run(self, path):
    try:
        with open(path) as f:
            return {"read": f.read()}
    except OSError as e:
        return {"error": type(e).__name__}
"""


def private_file_test(uid, disable, readable, doc=None):
    """A test (as root) that a block reads a 0600 host file owned by `uid` (its content when
    `readable`, else PermissionError) with the layers `disable` switched off."""
    content = "root only" if uid == 0 else "not yours"

    @needs_root
    def test(self):
        with HostFile(content, 0o600, uid=uid) as path:
            self.assertEqual(outputs(run_block(READ_FILE, {"path": path}, disable=disable)),
                             {"read": content} if readable else {"error": "PermissionError"})
    test.__doc__ = doc
    return test


class SeccompLayer(unittest.TestCase):
    CODE = """
import socket
def run(self):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.close()
    return {"made": True}
"""

    def test_socket_is_a_violation_with_seccomp(self):
        rc, out, _ = run_block(self.CODE, {})
        self.assertEqual(rc, 3, out)
        self.assertEqual(out["error_type"], "SandboxViolation")
        self.assertIn("socket", out["error"])
        self.assertIn("socket", out.get("denied_syscalls", []))

    def test_socket_works_without_seccomp(self):
        self.assertEqual(outputs(run_block(self.CODE, {}, disable="seccomp")), {"made": True})

    def test_a_caught_denial_carries_on_and_is_reported(self):
        code = """
import socket
def run(self):
    try:
        socket.socket()
    except PermissionError:
        pass
    return {"after": 1}
"""
        rc, out, _ = run_block(code, {})
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["outputs"], {"after": 1})
        self.assertEqual(out.get("denied_syscalls"), ["socket"])


class NetnsLayer(unittest.TestCase):
    """seccomp denies socket() first, so netns is shown with seccomp off."""

    CODE = """
import socket
def run(self, port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(b"escaped")
        s.close()
        return {"connected": True}
    except OSError as e:
        return {"connected": False, "error": type(e).__name__, "errno": e.errno}
"""

    def setUp(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.received = []

    def tearDown(self):
        self.listener.close()

    def accept_one(self):
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(5)
            self.received.append(conn.recv(100))
            conn.close()
        except OSError:
            pass

    def test_listener_unreachable_with_netns(self):
        out = outputs(run_block(self.CODE, {"port": self.port}, disable="seccomp"))
        self.assertFalse(out["connected"], out)
        self.listener.settimeout(0.2)
        self.accept_one()
        self.assertEqual(self.received, [])

    def test_listener_reached_without_netns(self):
        # The connection waits in the listen backlog, its bytes in the socket buffer, so
        # it is accepted after the run: no accept deadline races the CLI's start-up (a
        # thread waiting 5 s for it failed under load 18).
        out = outputs(run_block(self.CODE, {"port": self.port}, disable="seccomp,netns"))
        self.accept_one()
        self.assertTrue(out["connected"], out)
        self.assertEqual(self.received, [b"escaped"])

    def test_all_layers_on_denies_the_socket_itself(self):
        rc, out, _ = run_block(self.CODE, {"port": self.port})
        self.assertEqual(out["outputs"]["connected"], False)
        self.assertIn("socket", out.get("denied_syscalls", []))


class MntnsLayer(unittest.TestCase):
    def test_host_tmp_file_invisible_with_mntns(self):
        with HostFile("host secret %d" % random.getrandbits(32), 0o644) as path:
            out = outputs(run_block(READ_FILE, {"path": path}))
            self.assertEqual(out, {"error": "FileNotFoundError"})
            listing = outputs(run_block(
                "def run(self, name):\n    return {'seen': name in os.listdir('/tmp')}\n",
                {"name": os.path.basename(path)}))
            self.assertEqual(listing, {"seen": False})

    def test_host_tmp_file_readable_without_mntns(self):
        secret = "host secret %d" % random.getrandbits(32)
        with HostFile(secret, 0o644) as path:
            self.assertEqual(outputs(run_block(READ_FILE, {"path": path}, disable="mntns")), {"read": secret})


class PidnsLayer(unittest.TestCase):
    """seccomp traps kill(), so pidns is shown with seccomp off."""

    CODE = """
def run(self, pid):
    r = {"me": os.getpid(), "parent": os.getppid()}
    try:
        os.kill(pid, 0)
        r["probe"] = "exists"
    except ProcessLookupError:
        r["probe"] = "no such process"
    except PermissionError:
        r["probe"] = "exists"  # EPERM: the process is there, we may not signal it
    return r
"""

    def test_host_process_invisible_with_pidns(self):
        out = outputs(run_block(self.CODE, {"pid": os.getpid()}, disable="seccomp"))
        self.assertEqual(out["me"], 1)
        self.assertEqual(out["parent"], 0)
        self.assertEqual(out["probe"], "no such process")

    def test_host_process_visible_without_pidns(self):
        out = outputs(run_block(self.CODE, {"pid": os.getpid()}, disable="seccomp,pidns"))
        self.assertNotEqual(out["me"], 1)
        self.assertEqual(out["probe"], "exists")


class IpcnsLayer(unittest.TestCase):
    """seccomp traps shmget(), so ipcns is shown with seccomp off."""

    CODE = """
import ctypes
def run(self, key):
    libc = ctypes.CDLL(None, use_errno=True)
    return {"id": libc.shmget(key, 0, 0), "errno": ctypes.get_errno()}
"""

    def setUp(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.key = random.randint(0x10000000, 0x7ffffff0)
        self.shmid = self.libc.shmget(self.key, 4096, 0o1666)  # IPC_CREAT | 0666
        if self.shmid < 0:
            self.skipTest("cannot create a SysV segment: errno %d" % ctypes.get_errno())

    def tearDown(self):
        self.libc.shmctl(self.shmid, 0, None)  # IPC_RMID

    def test_host_segment_invisible_with_ipcns(self):
        out = outputs(run_block(self.CODE, {"key": self.key}, disable="seccomp"))
        self.assertEqual(out, {"id": -1, "errno": 2})  # ENOENT

    def test_host_segment_found_without_ipcns(self):
        out = outputs(run_block(self.CODE, {"key": self.key}, disable="seccomp,ipcns"))
        self.assertEqual(out, {"id": self.shmid, "errno": 0})


class UtsnsLayer(unittest.TestCase):
    CODE = "def run(self):\n    return {'node': os.uname().nodename}\n"

    def test_host_name_hidden_with_utsns(self):
        host = socket.gethostname()
        if host == "blockbox":
            self.skipTest("the host is called blockbox too")
        self.assertEqual(outputs(run_block(self.CODE, {})), {"node": "blockbox"})

    def test_host_name_seen_without_utsns(self):
        self.assertEqual(outputs(run_block(self.CODE, {}, disable="utsns")), {"node": socket.gethostname()})


class CgroupLayer(unittest.TestCase):
    CODE = """
def run(self, mb):
    b = bytearray(mb << 20)
    for i in range(0, len(b), 4096):
        b[i] = 1
    return {"touched_mb": len(b) >> 20}
"""
    ENV = {"BLOCKBOX_MEMORY_MB": "64"}

    def test_memory_bomb_is_a_memory_limit_with_cgroup(self):
        rc, out, _ = run_block(self.CODE, {"mb": 300}, env=self.ENV)
        self.assertEqual(rc, 3, out)
        self.assertEqual(out["error_type"], "MemoryLimit")

    # The address-space budget without a memory cgroup: the zygote's size + the memory cap
    # + room for libraries, arenas and one stack per allowed thread (rlimits.c): beyond it.
    RLIMIT_ENV = {"BLOCKBOX_MEMORY_MB": "64", "BLOCKBOX_MAX_THREADS": "8"}

    def test_without_cgroup_only_the_rlimit_stands_in(self):
        rc, out, _ = run_block(self.CODE, {"mb": 1024}, disable="cgroup", env=self.RLIMIT_ENV)
        # RLIMIT_AS: a Python MemoryError, not the kernel's OOM kill (MemoryLimit). In a
        # sanitizer build ASan's allocator exits the worker instead (SandboxCrash).
        self.assertFalse(out["success"], out)
        self.assertNotEqual(out["error_type"], "MemoryLimit")
        self.assertIn((rc, out["error_type"]), [(1, "MemoryError"), (3, "SandboxCrash")], out)

    def test_without_cgroup_and_rlimits_the_bomb_completes(self):
        self.assertEqual(outputs(run_block(self.CODE, {"mb": 1024}, disable="cgroup,rlimits",
                                           env=self.RLIMIT_ENV)), {"touched_mb": 1024})


class UidLayer(unittest.TestCase):
    """mntns hides every host file, so uid is shown with mntns off."""

    test_root_only_file_unreadable_with_uid = private_file_test(0, "mntns", readable=False)
    test_root_only_file_readable_without_uid = private_file_test(0, "mntns,uid", readable=True)


class UsernsLayer(unittest.TestCase):
    """With mntns, uid and caps all off, the worker is root with every capability of
    its own user namespace; the namespace alone still stops DAC override on a file of
    a user it does not map."""

    test_other_users_file_unreadable_with_userns = private_file_test(12345, "mntns,uid,caps", readable=False)
    test_other_users_file_readable_without_userns = private_file_test(
        12345, "mntns,uid,caps,userns", readable=True)


class CapsLayer(unittest.TestCase):
    CAPGET = """
import ctypes
def run(self):
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()
    rc = ctypes.CDLL(None).capget(ctypes.byref(header), data)
    return {"rc": rc, "effective": data[0].effective | data[1].effective << 32,
            "permitted": data[0].permitted | data[1].permitted << 32}
"""

    def test_no_capability_with_caps(self):
        self.assertEqual(outputs(run_block(self.CAPGET, {})), {"rc": 0, "effective": 0, "permitted": 0})

    def test_capabilities_present_without_caps(self):
        out = outputs(run_block(self.CAPGET, {}, disable="caps"))
        self.assertEqual(out["rc"], 0)
        self.assertNotEqual(out["effective"], 0)

    test_dac_override_stopped_with_caps = private_file_test(12345, "mntns,uid,userns", readable=False,
        doc="Worker = real root (no userns, no uid switch), capabilities dropped.")

    test_dac_override_works_without_caps = private_file_test(12345, "mntns,uid,userns,caps", readable=True)


class RlimitsLayer(unittest.TestCase):
    CODE = """
def run(self, mb):
    try:
        with open("/tmp/big" if os.path.isdir("/tmp") else "big", "wb") as f:
            f.write(b"x" * (mb << 20))
        return {"written": mb}
    except OSError as e:
        return {"errno": e.errno}
"""
    ENV = {"BLOCKBOX_MAX_FILE_MB": "1"}

    def test_big_file_stopped_with_rlimits(self):
        self.assertEqual(outputs(run_block(self.CODE, {"mb": 4}, env=self.ENV)), {"errno": 27})  # EFBIG

    def test_big_file_written_without_rlimits(self):
        self.assertEqual(outputs(run_block(self.CODE, {"mb": 4}, disable="rlimits", env=self.ENV)),
                         {"written": 4})


class EveryLayerIsCovered(unittest.TestCase):
    """A layer added to jail.c without a test here fails this suite."""

    def test_every_known_layer_has_a_test_class(self):
        rc, out, _ = run_block("def run(self):\n    return {}\n", {}, env={"BLOCKBOX_REQUIRE": "bogus"})
        self.assertEqual(rc, 4)
        known = out["error"].split("known: ")[1].rstrip(")").split(", ")
        layers = [k for k in known if k not in ("all", "none")]
        self.assertGreaterEqual(len(layers), 11)
        module = sys.modules[__name__]
        for layer in layers:
            self.assertTrue(hasattr(module, layer.capitalize() + "Layer"), "no test for layer %s" % layer)


if __name__ == "__main__":
    cli_args.main(sys.modules[__name__])
