# test_blockbox.py: unittest suite of the Python binding against the built libblockbox
# (local driver): values both ways, exceptions, lifetimes, threads, library lookup.
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import blockbox  # noqa: E402

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None

def _png(width, height):
    """A grey RGB PNG made with the standard library only (no cv2 on the caller's side)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * (3 * width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def in_threads(n, work):
    """Runs work(0) ... work(n - 1) at once, each in a thread of its own; returns what they
    raised (an empty list when nothing did)."""
    errors = []

    def guarded(i):
        try:
            work(i)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)
    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


ECHO = "def run(self, **kw):\n    return kw\n"


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ex = blockbox.Executor(mode="local", timeout=20)
        cls.echo = cls.ex.load(ECHO)

    @classmethod
    def tearDownClass(cls):
        cls.ex.close()


class Values(Base):
    def test_plain_values(self):
        v = {"i": 1, "f": 2.5, "s": "héllo ☃", "b": True, "n": None, "l": [1, [2, "x"]], "d": {"k": [1]}}
        self.assertEqual(self.echo.run(**v), v)

    def test_ndarrays_every_dtype_both_ways(self):
        for dt in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "float32", "float64"):
            a = (np.arange(24) % 7).astype(dt).reshape(2, 3, 4)
            out = self.echo.run(a=a)["a"]
            self.assertEqual(out.dtype, a.dtype, dt)
            np.testing.assert_array_equal(out, a)
            # Read-only, over the result's memory (no copy back, issue 13); a copy is writable.
            # (It was a writable copy before the binary path.)
            self.assertFalse(out.flags.writeable, dt)
            with self.assertRaises(ValueError):
                out[0, 0, 0] = 1
            mine = out.copy()
            mine[0, 0, 0] = 1

    def test_ndarray_layouts(self):
        a = np.arange(12, dtype=">i4").reshape(3, 4)        # big-endian
        np.testing.assert_array_equal(self.echo.run(a=a)["a"], a)
        t = np.arange(12, dtype=np.float32).reshape(3, 4).T  # not C-contiguous
        np.testing.assert_array_equal(self.echo.run(a=t)["a"], t)
        e = np.zeros((0, 3), dtype=np.uint8)
        self.assertEqual(self.echo.run(a=e)["a"].shape, (0, 3))
        nan = np.array([np.nan, np.inf], dtype=np.float64)   # raw bytes keep them
        np.testing.assert_array_equal(self.echo.run(a=nan)["a"], nan)

    def test_block_computes_on_arrays(self):
        b = self.ex.load("def run(self, f):\n    return {'inv': 255 - f, 'sum': int(f.sum())}\n")
        f = np.random.default_rng(1).integers(0, 256, (4, 5, 3), dtype=np.uint8)
        out = b.run(f=f)
        np.testing.assert_array_equal(out["inv"], 255 - f)
        self.assertEqual(out["sum"], int(f.sum()))

    def test_scalars_bytes_datetime_batch(self):
        when = datetime.datetime(2024, 5, 6, 7, 8, 9)
        out = self.echo.run(s=np.int64(3), raw=b"\x00\xff", when=when,
                            many=blockbox.Batch([1, np.arange(2)]))
        self.assertEqual(out["s"], 3)
        self.assertEqual(out["raw"], b"\x00\xff")
        self.assertEqual(out["when"], when)
        self.assertIsInstance(out["many"], blockbox.Batch)
        self.assertEqual(out["many"][0], 1)
        np.testing.assert_array_equal(out["many"][1], np.arange(2))

    def test_opaque_objects(self):
        b = self.ex.load("class Thing:\n    def __str__(self):\n        return 'thing'\n"
                         "def run(self):\n    return {'t': Thing()}\n")
        self.assertEqual(b.run()["t"], blockbox.Opaque("Thing", "thing"))

    @unittest.skipIf(cv2 is None, "cv2 not installed")
    def test_image_from_numpy_png_is_exact(self):
        b = self.ex.load("def run(self, image):\n"
                         "    return {'px': image.numpy_image, 'shape': list(image.numpy_image.shape),"
                         " 'pid': image.parent_metadata.parent_id}\n")
        frame = np.random.default_rng(2).integers(0, 256, (32, 48, 3), dtype=np.uint8)
        out = b.run(image=blockbox.Image(frame, parent_id="cam1"))
        np.testing.assert_array_equal(out["px"], frame)
        self.assertEqual(out["shape"], [32, 48, 3])
        self.assertEqual(out["pid"], "cam1")

    @unittest.skipIf(cv2 is None, "cv2 not installed")
    def test_image_out(self):
        b = self.ex.load("def run(self, image):\n"
                         "    img = WorkflowImageData.copy_and_replace(image, numpy_image=255 - image.numpy_image)\n"
                         "    return {'image': img}\n")
        frame = np.full((16, 16, 3), 40, dtype=np.uint8)
        out = b.run(image=blockbox.Image(frame, parent_id="p"))["image"]
        self.assertIsInstance(out, blockbox.Image)
        self.assertEqual(out.parent_id, "p")
        self.assertEqual(out.numpy_image.shape, (16, 16, 3))
        self.assertLessEqual(int(np.abs(out.numpy_image.astype(int) - 215).max()), 2)  # JPEG q95

    def test_image_from_bytes(self):
        png = _png(3, 2)
        b = self.ex.load("def run(self, image):\n    return {'shape': list(image.numpy_image.shape)}\n")
        self.assertEqual(b.run(image=blockbox.Image(image_bytes=png)), {"shape": [2, 3, 3]})
        with self.assertRaises(blockbox.InvalidRequest):
            blockbox.Image(image_bytes=b"GIF89a....")

    def test_detections_both_ways(self):
        dets = blockbox.Detections(xyxy=[[0, 0, 10, 20], [5, 5, 15, 25]], confidence=[0.9, 0.4],
                                   class_id=[1, 2], class_name=["car", "dog"],
                                   detection_id=["a", "b"], image_size=(64, 48))
        b = self.ex.load("def run(self, d):\n"
                         "    keep = d[d.confidence > 0.5]\n"
                         "    return {'n': len(d), 'names': list(d.data['class_name']), 'kept': keep}\n")
        out = b.run(d=dets)
        self.assertEqual(out["n"], 2)
        self.assertEqual(out["names"], ["car", "dog"])
        kept = out["kept"]
        self.assertIsInstance(kept, blockbox.Detections)
        self.assertEqual(len(kept), 1)
        np.testing.assert_allclose(kept.xyxy, [[0, 0, 10, 20]])
        self.assertEqual(kept.class_name, ["car"])
        self.assertEqual(kept.detection_id, ["a"])
        self.assertEqual(kept.image_size, (64, 48))

    def test_context_and_init_and_imports(self):
        b = self.ex.load("def run(self, x):\n"
                         "    return {'ctx': self.get_workflow_context(), 'init': self._init_results,"
                         " 'r': fractions.Fraction(x, 2).denominator}\n",
                         init="def init():\n    return {'ready': 1}\n", imports=["import fractions"])
        out = b.run(context={"workflow_id": "w"}, x=3)
        self.assertEqual(out, {"ctx": {"workflow_id": "w"}, "init": {"ready": 1}, "r": 2})

    def test_named_functions_and_batch_list(self):
        b = self.ex.load("def go(self, x):\n    return [{'y': x}, {'y': x + 1}]\n", function="go")
        self.assertEqual(b.run(x=1), [{"y": 1}, {"y": 2}])

    def test_streams_and_debug_traces(self):
        b = self.ex.load("import sys\ndef run(self):\n    print('out')\n    print('err', file=sys.stderr)\n"
                         "    debug_traces.append({'k': 1})\n    return {}\n")
        r = b.run_result()
        self.assertEqual((r.outputs, r.stdout, r.stderr), ({}, "out\n", "err\n"))
        self.assertEqual([t["value"] for t in r.debug_traces], [{"k": 1}])


class Errors(Base):
    def test_block_error_fields(self):
        b = self.ex.load("def run(self):\n    print('before')\n    debug_traces.append(7)\n"
                         "    return {'x': 1 / 0}\n")
        with self.assertRaises(blockbox.BlockError) as cm:
            b.run()
        e = cm.exception
        self.assertIsInstance(e, blockbox.Error)
        self.assertEqual(e.error_type, "ZeroDivisionError")
        self.assertEqual(e.line_number, 4)
        self.assertEqual(e.function_name, "run")
        self.assertEqual(str(e), "Error in line 4, in run: ZeroDivisionError: division by zero")
        self.assertIn("ZeroDivisionError", e.traceback)
        self.assertEqual(e.stdout, "before\n")
        self.assertEqual([t["value"] for t in e.debug_traces], [7])
        self.assertEqual(e.exit_code, 1)
        self.assertEqual(b.stats["errors"], 1)

    def limit_error(self, error, code, **options):
        """The `error` a run of `code` raises on an executor of its own with these options."""
        with blockbox.Executor(mode="local", **options) as ex:
            b = ex.load(code)
            with self.assertRaises(error) as cm:
                b.run()
        return cm.exception

    def test_timeout(self):
        e = self.limit_error(blockbox.Timeout, "def run(self):\n    while True:\n        pass\n", timeout=1)
        self.assertIsInstance(e, blockbox.SandboxError)
        self.assertIsInstance(e, TimeoutError)
        self.assertEqual(e.error_type, "Timeout")
        self.assertEqual(e.exit_code, 3)

    def test_memory_limit(self):
        self.limit_error(blockbox.MemoryLimit,
                         "def run(self):\n    x = bytearray(400 << 20)\n    return {'n': len(x)}\n",
                         memory_mb=128)

    def test_sandbox_violation_names_the_call(self):
        b = self.ex.load("import socket\ndef run(self):\n    socket.socket()\n    return {}\n")
        with self.assertRaises(blockbox.SandboxViolation) as cm:
            b.run()
        self.assertIn("socket", cm.exception.denied_syscalls)

    def test_output_limit(self):
        self.limit_error(blockbox.OutputLimit, "def run(self):\n    return {'s': 'x' * 100000}\n",
                         max_output_bytes=4096)

    def test_invalid_inputs(self):
        with self.assertRaises(blockbox.InvalidRequest):
            self.echo.run(x=float("nan"))
        with self.assertRaises(blockbox.InvalidRequest):
            self.echo.run(x=np.zeros(2, dtype=np.complex64))
        with self.assertRaises(blockbox.InvalidRequest):
            self.echo.run(x=object())
        with self.assertRaises(blockbox.InvalidRequest):
            self.ex.load("def run(self):\n    return {}\n", function="not a name")
        self.assertEqual(self.echo.run(x=1), {"x": 1})   # the block still works

    def test_configuration_errors(self):
        with self.assertRaises(blockbox.ConfigurationError) as cm:
            blockbox.Executor(mode="nosuchdriver")
        self.assertIn("local", str(cm.exception))     # lists the known drivers
        with self.assertRaises(blockbox.Error):
            blockbox.Executor(no_such_setting=1)
        with self.assertRaises(blockbox.Error):
            blockbox.Executor(timeout="soon")

    def test_execution_disabled(self):
        with self.assertRaises(blockbox.ExecutionDisabled):
            with blockbox.Executor(mode="local", allow_execution=False) as ex:
                ex.load(ECHO).run()

    def test_missing_library_is_a_clear_error(self):
        env = dict(os.environ, BLOCKBOX_LIBRARY="/nonexistent/libblockbox.so")
        p = subprocess.run([sys.executable, "-c", "import blockbox\ntry:\n blockbox.Executor()\n"
                            "except blockbox.ConfigurationError as e: print('CE', e)"],
                           env=env, cwd=os.path.dirname(HERE), capture_output=True, text=True)
        self.assertIn("CE libblockbox not found via BLOCKBOX_LIBRARY=/nonexistent", p.stdout, p.stderr)


def _state(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Lifetimes(unittest.TestCase):
    def test_context_managers_and_closed_objects(self):
        with blockbox.Executor(mode="local") as ex:
            self.assertEqual(ex.driver, "local")
            self.assertIn("{", ex.describe())
            with ex.load(ECHO) as b:
                self.assertEqual(b.run(a=1), {"a": 1})
                self.assertEqual(len(b.code_hash), 32)
            with self.assertRaises(blockbox.Error):
                b.run(a=1)
            b2 = ex.load(ECHO)
        with self.assertRaises(blockbox.Error):   # closing the executor closed its blocks
            b2.run()
        with self.assertRaises(blockbox.Error):
            ex.load(ECHO)

    def test_garbage_collected_objects_free_their_workers(self):
        # A block dropped without close() is freed by its finalizer: its worker goes away.
        ex = blockbox.Executor(mode="local", spare_workers=0)
        b = ex.load("import os\ndef run(self):\n    return {'pid': os.getpid()}\n")
        b.run()
        before = set(self._workers())
        self.assertTrue(before)
        del b
        import gc
        gc.collect()
        deadline = time.time() + 10
        while time.time() < deadline and not before - set(self._workers()):
            time.sleep(0.05)
        self.assertTrue(before - set(self._workers()), "the dropped block's worker still runs")
        ex.close()

    @staticmethod
    def _workers():
        """pids of the workers under this process's zygote(s)."""
        kids = []
        with open("/proc/self/task/%d/children" % os.getpid()) as f:
            zygotes = f.read().split()
        for z in zygotes:
            try:
                with open("/proc/%s/task/%s/children" % (z, z)) as f:
                    kids += f.read().split()
            except OSError:
                pass
        return [k for k in kids if _state(k) not in ("Z", "X", None)]   # killed = gone (reaped later)


def _owner_of(array):
    """The result owner behind an output array, or None when the array is not a view over a
    result buffer (walks numpy bases to the memoryview, then its ctypes array)."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        return getattr(base.obj, "_owner", None)
    return None


class BinaryPath(unittest.TestCase):
    """Issue 12/13: arrays and raw frames travel as buffers beside the JSON: one copy at most
    into the run's shared memory, none back (outputs are read-only views over the result)."""

    @classmethod
    def setUpClass(cls):
        from blockbox import _lib
        cls.lib = _lib.library()
        cls.ex = blockbox.Executor(mode="local", timeout=20)
        cls.inv = cls.ex.load("def run(self, f):\n    return {'g': 255 - f}\n")
        # Does this backend hand results back as buffers (the local driver's shared memory)?
        cls.returns_buffers = _owner_of(cls.inv.run(f=np.zeros((2, 2, 3), np.uint8))["g"]) is not None

    def needs_result_buffers(self):
        if not self.returns_buffers:
            self.skipTest("the local driver returns results in the data form (no shared memory)")

    @classmethod
    def tearDownClass(cls):
        cls.ex.close()

    def frame(self, h=120, w=160, seed=4):
        return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)

    def test_library_has_the_binary_path(self):
        self.assertTrue(self.lib.has_buffers, "libblockbox without bb_block_run_buffers")

    def test_inputs_travel_by_reference(self):
        from blockbox.values import encode_run
        f = self.frame()
        text, arrays = encode_run({"f": f, "n": 3})
        self.assertEqual(json.loads(text), {"f": {"_type": "ndarray", "dtype": "uint8", "shape": [120, 160, 3],
                                                  "buffer": 0}, "n": 3})
        self.assertIs(arrays[0], f, "a C-contiguous array is handed to C as it is (no copy)")
        t = f.transpose(1, 0, 2)
        _, arrays = encode_run({"t": t})
        self.assertTrue(arrays[0].flags.c_contiguous)   # the one copy, for a strided array
        np.testing.assert_array_equal(arrays[0], t)
        self.assertEqual(encode_run({"x": 1}), ('{"x":1}', []))

    def test_frame_round_trip_without_a_copy_back(self):
        self.needs_result_buffers()
        f = self.frame()
        out = self.inv.run(f=f)
        g = out["g"]
        np.testing.assert_array_equal(g, 255 - f)
        self.assertIsNotNone(_owner_of(g), "the output is not a view over the result buffer")
        self.assertFalse(g.flags.writeable)
        with self.assertRaises(ValueError):
            g.flags.writeable = True   # the mapping is read-only; numpy cannot be talked into it
        np.testing.assert_array_equal(self.inv.run(f=f.transpose(1, 0, 2))["g"], 255 - f.transpose(1, 0, 2))

    def test_result_lives_exactly_as_long_as_its_arrays(self):
        self.needs_result_buffers()
        import gc
        import weakref
        with blockbox.Executor(mode="local") as ex:
            b = ex.load("def run(self, f):\n    return {'g': 255 - f, 'h': f[:2] * 1}\n")
            f = self.frame()
            out = b.run(f=f)
            owner = weakref.ref(_owner_of(out["g"]))
            self.assertIs(_owner_of(out["h"]), owner(), "one owner per result")
            g = out["g"]
            del out
            gc.collect()
            self.assertIsNotNone(owner(), "freed while an array still uses it")
            b.close()
        gc.collect()
        # the block and the executor are gone; the result's memory is not
        np.testing.assert_array_equal(g, 255 - f)
        del g
        gc.collect()
        self.assertIsNone(owner(), "the result outlived its last array")

    def test_arrays_past_the_buffer_limit_use_the_data_form(self):
        from blockbox.values import MAX_BUFFERS, encode_run
        arrays = {"a%02d" % i: np.full((2, 2), i, dtype=np.int32) for i in range(MAX_BUFFERS + 6)}
        text, bufs = encode_run(arrays)
        self.assertEqual(len(bufs), MAX_BUFFERS)
        self.assertEqual(text.count('"data":'), 6)
        echo = self.ex.load(ECHO)
        out = echo.run(**arrays)
        for k, v in arrays.items():
            np.testing.assert_array_equal(out[k], v)

    def test_every_dtype_through_buffers(self):
        echo = self.ex.load(ECHO)
        for dt in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "float32", "float64"):
            a = (np.arange(30) % 7).astype(dt).reshape(5, 6)
            out = echo.run(a=a, be=a.astype(a.dtype.newbyteorder(">")))
            self.assertEqual(out["a"].dtype, a.dtype, dt)
            np.testing.assert_array_equal(out["a"], a)
            np.testing.assert_array_equal(out["be"], a)
        self.assertEqual(echo.run(e=np.zeros((0, 4), np.float32))["e"].shape, (0, 4))

    @unittest.skipUnless(blockbox.values.RAW_IMAGES, "raw frames need the runtime's raw image decoding")
    def test_raw_image_in(self):
        from blockbox.values import encode_run
        f = self.frame(64, 80)
        img = blockbox.Image(f, parent_id="cam")
        text, bufs = encode_run({"image": img})
        wire = json.loads(text)["image"]
        self.assertEqual((wire["type"], wire["shape"], wire["buffer"]), ("raw", [64, 80, 3], 0))
        self.assertNotIn("value", wire, "no PNG and no base64 for a raw frame")
        b = self.ex.load("def run(self, image):\n"
                         "    return {'px': image.numpy_image, 'pid': image.parent_metadata.parent_id}\n")
        out = b.run(image=img)
        np.testing.assert_array_equal(out["px"], f)   # exact: no lossy coding on the way
        self.assertEqual(out["pid"], "cam")

    @unittest.skipIf(cv2 is None, "cv2 not installed")
    @unittest.skipUnless(blockbox.values.RAW_IMAGES, "raw frames need the runtime's raw image decoding")
    def test_raw_image_base64_on_demand_and_16_bit_falls_back(self):
        f = self.frame(16, 24)
        b = self.ex.load("def run(self, image):\n    return {'n': len(image.base64_image)}\n")
        self.assertGreater(b.run(image=blockbox.Image(f))["n"], 0)
        deep = np.zeros((8, 8, 3), np.uint16)
        from blockbox.values import encode_run
        text, bufs = encode_run({"image": blockbox.Image(deep)})
        self.assertEqual(json.loads(text)["image"]["type"], "base64")   # not uint8 pixels: PNG
        self.assertEqual(bufs, [])

    def test_threads_keep_their_own_buffers(self):
        blocks = [self.ex.load("def run(self, f, k):\n    return {'g': f + k}\n") for _ in range(3)]

        def worker(i):
            for j in range(5):
                f = np.full((50, 40, 3), i * 10 + j, dtype=np.uint8)
                out = blocks[i].run(f=f, k=np.uint8(1))
                np.testing.assert_array_equal(out["g"], f + 1)
        self.assertEqual(in_threads(3, worker), [])


class Threads(unittest.TestCase):
    def test_two_threads_run_blocks_in_parallel(self):
        # Each run sleeps 2 s inside its sandbox. If the GIL were held during the foreign
        # call, the two runs would be serialised and their host-side intervals disjoint.
        with blockbox.Executor(mode="local") as ex:
            code = "def run(self):\n    time.sleep(2)\n    return {'ok': True}\n"
            blocks = [ex.load(code), ex.load(code)]
            spans = [None, None]

            def worker(i):
                t0 = time.monotonic()
                self.assertEqual(blocks[i].run(), {"ok": True})
                spans[i] = (t0, time.monotonic())
            self.assertEqual(in_threads(2, worker), [])
            (a0, a1), (b0, b1) = spans
            self.assertTrue(a0 < b1 and b0 < a1, "runs did not overlap: %r" % (spans,))

    def test_main_thread_runs_while_a_block_sleeps(self):
        with blockbox.Executor(mode="local") as ex:
            slow = ex.load("def run(self):\n    time.sleep(4)\n    return {}\n")
            fast = ex.load(ECHO)
            t = threading.Thread(target=slow.run)
            t.start()
            time.sleep(0.2)   # let it enter bb_block_run (ordering, not a timed assertion)
            self.assertEqual(fast.run(x=1), {"x": 1})
            self.assertTrue(t.is_alive(), "the slow run finished before a trivial one")
            t.join()

    def test_one_block_from_many_threads(self):
        with blockbox.Executor(mode="local") as ex:
            b = ex.load(ECHO)
            results, lock = [], threading.Lock()

            def worker(i):
                for j in range(10):
                    out = b.run(i=i, j=j)
                    with lock:
                        results.append(out == {"i": i, "j": j})
            self.assertEqual(in_threads(4, worker), [])
            self.assertEqual(results, [True] * 40)
            self.assertEqual(b.stats["runs"], 40)


if __name__ == "__main__":
    unittest.main()
