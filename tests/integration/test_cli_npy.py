#!/usr/bin/env python3
"""test_cli_npy.py: `blockbox run --input NAME=@FILE.npy` (issue 12): good files of every
allowed dtype and header version reach the block as arrays through the binary path; hostile
ones (fortran order, object or big-endian dtypes, headers or shapes that lie about the file)
are refused with InvalidRequest and exit 2 before the array is allocated; output buffers are
printed in the JSON data form, or written as .npy files with --output-dir.

    /usr/bin/python3 tests/integration/test_cli_npy.py --bin build/bin/blockbox \
        --echo build/lib/libblockbox_test_driver.so [-v]

The echo driver (no sandbox) takes no buffers, so the core hands it the arrays in the data
form: enough for every refusal and for the reading. The round trips run on the local driver.
"""
import base64
import io
import json
import os
import struct
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402  (CliTest: the one-JSON-object checks, no secrets printed)

INVERT = "def run(self, f):\n    return {'g': 255 - f, 'shape': list(f.shape), 'flags': f.flags.c_contiguous}\n"
ECHO_ARRAYS = "def run(self, **kw):\n    return {k: v for k, v in kw.items()}\n"


def npy_bytes(a, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, a, allow_pickle=False)
    else:
        np.lib.format.write_array(buf, a, version=version, allow_pickle=False)
    return buf.getvalue()


def raw_npy(header, data=b"", version=(1, 0), hlen=None):
    """A .npy file with a header written by hand (whatever it claims)."""
    text = header.encode("latin1") if isinstance(header, str) else header
    if version[0] == 1:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(text) if hlen is None else hlen)
    else:
        prefix = b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(text) if hlen is None else hlen)
    return prefix + text + data


def from_data_form(obj):
    raw = base64.b64decode(obj["data"], validate=True)
    return np.frombuffer(raw, dtype=np.dtype(obj["dtype"]).newbyteorder("<")).reshape(obj["shape"])


class Npy(test_cli.CliTest):
    def refused(self, content, *words, env=None, name="bad.npy"):
        path = self.write(name, content)
        _, report, err = self.run_block("--input", "f=@" + path, expect_exit=2, env=env)
        self.assertEqual(report["error_type"], "InvalidRequest")
        for w in words:
            self.assertIn(w, report["error"])
        self.assertIn(path, report["error"])
        return report


class Reading(Npy):
    """Through the echo driver: the core turns the buffer back into the data form for it."""

    def echoed(self, a, version=None):
        path = self.write("a.npy", npy_bytes(a, version))
        _, report, _ = self.run_block("--input", "f=@" + path, "--input", "n=1", expect_exit=0)
        got = report["outputs"]["inputs"]["f"]
        self.assertEqual(got["_type"], "ndarray")
        self.assertEqual(report["outputs"]["inputs"]["n"], 1)
        return got

    def test_every_allowed_dtype(self):
        for dt in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float16", "float32", "float64"):
            with self.subTest(dtype=dt):
                a = (np.arange(24) % 5).astype(dt).reshape(2, 3, 4)
                got = self.echoed(a)
                self.assertEqual(got["dtype"], dt)
                self.assertEqual(got["shape"], [2, 3, 4])
                np.testing.assert_array_equal(from_data_form(got), a)

    def test_header_versions_2_and_3(self):
        a = np.arange(10, dtype=np.float32)
        for version in ((1, 0), (2, 0), (3, 0)):
            with self.subTest(version=version):
                np.testing.assert_array_equal(from_data_form(self.echoed(a, version)), a)

    def test_empty_and_zero_d_arrays(self):
        got = self.echoed(np.zeros((0, 3), dtype=np.uint8))
        self.assertEqual(got["shape"], [0, 3])
        got = self.echoed(np.array(7, dtype=np.int64))
        self.assertEqual(got["shape"], [])
        self.assertEqual(from_data_form(got), 7)

    def test_numpy_writes_any_spacing(self):
        # Python 2 era headers: "L" suffixes, double quotes, no trailing comma, no padding
        header = '{"descr": "<i2", "shape": (2L, 2L), "fortran_order": False}\n'
        path = self.write("old.npy", raw_npy(header, struct.pack("<4h", 1, -2, 3, -4)))
        _, report, _ = self.run_block("--input", "f=@" + path, expect_exit=0)
        np.testing.assert_array_equal(from_data_form(report["outputs"]["inputs"]["f"]), [[1, -2], [3, -4]])

    def test_image_files_keep_their_form(self):
        path = self.write("img.png", test_cli.png_bytes())
        _, report, _ = self.run_block("--input", "image=@" + path, expect_exit=0)
        self.assertEqual(report["outputs"]["inputs"]["image"]["type"], "base64")


class Hostile(Npy):
    def test_fortran_order_refused(self):
        a = np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3))
        self.refused(npy_bytes(a), "fortran_order arrays are refused")

    def test_object_dtype_refused(self):
        buf = io.BytesIO()
        np.save(buf, np.array([1, "x", None], dtype=object), allow_pickle=True)
        self.refused(buf.getvalue(), "object")

    def test_big_endian_refused(self):
        self.refused(npy_bytes(np.arange(4, dtype=">f4")), "little-endian")

    def test_other_dtypes_refused(self):
        for a, word in ((np.zeros(2, dtype=np.complex64), "allowlist"),
                        (np.array(["ab"]), "allowlist"),
                        (np.zeros(2, dtype=[("x", "<i4"), ("y", "<f4")]), "structured"),
                        (np.zeros(2, dtype="datetime64[s]"), "allowlist")):
            with self.subTest(dtype=str(a.dtype)):
                self.refused(npy_bytes(a), word)

    def test_data_shorter_than_the_header_says(self):
        good = npy_bytes(np.arange(100, dtype=np.uint8))
        self.refused(good[:-1], "holds 99 bytes", "says 100")

    def test_data_longer_than_the_header_says(self):
        self.refused(npy_bytes(np.arange(100, dtype=np.uint8)) + b"\x00", "holds 101 bytes")

    def test_huge_shape_in_a_tiny_file(self):
        # 2^31-1 cubed elements claimed by a 100-byte file: refused from the header alone
        header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647), }\n"
        self.refused(raw_npy(header, b"\x00" * 8), "larger than the input limit")
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000,), }\n"
        self.refused(raw_npy(header, b"\x00" * 8), "holds 8 bytes", "says 1000000")

    def test_array_over_the_input_limit(self):
        a = np.zeros(2 * (1 << 20), dtype=np.uint8)   # 2 MiB, the limit set to 1 MiB
        self.refused(npy_bytes(a), "larger than the input limit",
                     env=self.env(BLOCKBOX_MAX_INPUT_BYTES=str(1 << 20)))

    def test_header_past_the_end_of_the_file(self):
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }\n"
        self.refused(raw_npy(header, b"\x00", hlen=60000), "past the end")
        self.refused(raw_npy(header, b"\x00", version=(2, 0), hlen=0x7fffffff), "claims")
        self.refused(b"\x93NUMPY\x01\x00\x05", "header")   # ends inside its length

    def test_bad_magic_and_versions(self):
        self.refused(b"PK\x03\x04 not numpy at all", "magic")
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }\n"
        self.refused(raw_npy(header, b"\x00", version=(4, 0)), "version 4.0")
        self.refused(raw_npy(header, b"\x00", version=(1, 1)), "version 1.1")

    def test_malformed_headers(self):
        cases = {
            "{'descr': '|u1', 'shape': (1,), }": "lacks fortran_order",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), 'extra': 1}": "unexpected or repeated key",
            "{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (1,)}": "repeated key",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (-1,)}": "non-negative",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1.5,)}": "tuple of integers",
            "{'descr': '|u1', 'fortran_order': 0, 'shape': (1,)}": "not a bool",
            "{'descr': '|u1', 'fortran_order': False, 'shape': [1]}": "not a tuple",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1,)} junk": "text after",
            "['descr', '|u1']": "not a dict",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296,)}": "2^31-1",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (%s)}" % ("1," * 33): "dimensions",
            "{'descr': '|u1\xe9', 'fortran_order': False, 'shape': (1,)}": "printable ASCII",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1,)}\x1b[2J": "printable ASCII",
        }
        for header, word in cases.items():
            with self.subTest(header=header):
                report = self.refused(raw_npy(header, b"\x00"), word)
                self.assertNotIn("\x1b", report["error"])

    def test_not_a_regular_file(self):
        os.mkdir(os.path.join(self.dir, "d.npy"))
        _, report, _ = self.run_block("--input", "f=@" + os.path.join(self.dir, "d.npy"), expect_exit=2)
        self.assertIn("not a regular file", report["error"])
        _, report, _ = self.run_block("--input", "f=@/nonexistent/x.npy", expect_exit=2)
        self.assertIn("cannot open", report["error"])

    def test_too_many_npy_inputs(self):
        path = self.write("one.npy", npy_bytes(np.zeros(1, dtype=np.uint8)))
        args = []
        for i in range(65):
            args += ["--input", "a%d=@%s" % (i, path)]
        _, report, _ = self.run_block(*args, expect_exit=2)
        self.assertIn("more than 64", report["error"])


class RoundTrip(Npy):
    """The local driver: the array reaches the block as a numpy array, the result comes back
    as a buffer and is printed in the data form (or written to --output-dir)."""

    def env(self, **extra):
        env = super().env(**extra)
        env["WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE"] = "local"
        env.pop("BLOCKBOX_DRIVER_PATH", None)
        return env

    def frame_file(self):
        """The test frame (48x64 BGR) and the path of a .npy file holding it."""
        f = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        return f, self.write("f.npy", npy_bytes(f))

    def output_dir(self):
        """A new, empty directory for --output-dir."""
        path = os.path.join(self.dir, "out")
        os.mkdir(path)
        return path

    def test_frame_in_inverse_out_in_the_data_form(self):
        f, path = self.frame_file()
        code = self.write("inv.py", INVERT)
        _, report, _ = self.run_block("--code", code, "--input", "f=@" + path, expect_exit=0)
        out = report["outputs"]
        self.assertEqual(out["shape"], [48, 64, 3])
        self.assertIs(out["flags"], True)
        self.assertEqual(sorted(out["g"]), ["_type", "data", "dtype", "shape"])
        np.testing.assert_array_equal(from_data_form(out["g"]), 255 - f)

    def test_output_dir_writes_npy_files(self):
        f, path = self.frame_file()
        code = self.write("many.py", "def run(self, f):\n"
                                     "    return {'g': 255 - f, 'nested': {'h/../x': f[:2].astype('float32')},"
                                     " 'n': 3}\n")
        outdir = self.output_dir()
        _, report, _ = self.run_block("--code", code, "--input", "f=@" + path, "--output-dir", outdir,
                                      expect_exit=0)
        out = report["outputs"]
        self.assertEqual(out["n"], 3)
        g = out["g"]
        self.assertEqual(g["_type"], "ndarray")
        self.assertNotIn("data", g, "the array went to a file, not into the report")
        self.assertEqual(os.path.dirname(g["file"]), outdir)
        np.testing.assert_array_equal(np.load(g["file"], allow_pickle=False), 255 - f)
        h = out["nested"]["h/../x"]
        self.assertEqual(os.path.dirname(h["file"]), outdir, "a key cannot climb out of --output-dir")
        loaded = np.load(h["file"], allow_pickle=False)
        self.assertEqual(loaded.dtype, np.float32)
        np.testing.assert_array_equal(loaded, f[:2].astype(np.float32))
        self.assertEqual(sorted(os.listdir(outdir)), ["g.npy", "nested.h____x.npy"])
        # a second run into the same directory replaces nothing
        _, report, _ = self.run_block("--code", code, "--input", "f=@" + path, "--output-dir", outdir,
                                      expect_exit=2)
        self.assertIn("existing files are not replaced", report["error"])
        self.assertEqual(sorted(os.listdir(outdir)), ["g.npy", "nested.h____x.npy"])
        np.testing.assert_array_equal(np.load(g["file"], allow_pickle=False), 255 - f)   # untouched
        os.unlink(g["file"])   # now g.npy is written, then nested's file is refused: g.npy goes again
        _, report, _ = self.run_block("--code", code, "--input", "f=@" + path, "--output-dir", outdir,
                                      expect_exit=2)
        self.assertEqual(sorted(os.listdir(outdir)), ["nested.h____x.npy"])

    def test_output_dir_names_that_collide(self):
        code = self.write("two.py", "def run(self):\n    return {'a/b': np.zeros(2), 'a?b': np.ones(2), 'l': [np.arange(3)]}\n")
        outdir = self.output_dir()
        _, report, _ = self.run_block("--code", code, "--output-dir", outdir, expect_exit=0)
        out = report["outputs"]
        self.assertNotEqual(out["a/b"]["file"], out["a?b"]["file"])
        np.testing.assert_array_equal(np.load(out["a/b"]["file"]), np.zeros(2))
        np.testing.assert_array_equal(np.load(out["a?b"]["file"]), np.ones(2))
        np.testing.assert_array_equal(np.load(out["l"][0]["file"]), np.arange(3))
        self.assertEqual(os.path.basename(out["l"][0]["file"]), "l.0.npy")

    def test_output_dir_long_names_fit_a_file_name(self):
        # Keys are any length; a file name is at most 255 bytes: the names are cut (and
        # two keys cut to the same name get a tag), not refused as a bad request.
        code = self.write("long.py", "def run(self):\n"
                                     "    return {'k' * 260: np.zeros(2), 'k' * 261: np.ones(2),\n"
                                     "            'n': {'m' * 200: {'o' * 200: np.arange(3)}}}\n")
        outdir = self.output_dir()
        _, report, _ = self.run_block("--code", code, "--output-dir", outdir, expect_exit=0)
        out = report["outputs"]
        files = [out["k" * 260]["file"], out["k" * 261]["file"], out["n"]["m" * 200]["o" * 200]["file"]]
        self.assertEqual(len(set(files)), 3)
        for f in files:
            self.assertLessEqual(len(os.path.basename(f)), 255)
        np.testing.assert_array_equal(np.load(files[0]), np.zeros(2))
        np.testing.assert_array_equal(np.load(files[1]), np.ones(2))
        np.testing.assert_array_equal(np.load(files[2]), np.arange(3))

    def test_no_output_names_a_buffer(self):
        # Whatever the driver hands back as buffers (arrays, raw images), the report prints
        # bytes, never a "buffer" index the reader could not resolve.
        f, path = self.frame_file()
        code = self.write("img.py", "def run(self, f, image):\n"
                                    "    img = WorkflowImageData.copy_and_replace(image, numpy_image=f)\n"
                                    "    return {'img': img, 'g': [255 - f]}\n")
        img_path = self.write("i.png", test_cli.png_bytes())
        _, report, _ = self.run_block("--code", code, "--input", "f=@" + path, "--input", "image=@" + img_path,
                                      expect_exit=0)
        self.assertNotIn('"buffer"', json.dumps(report["outputs"]))
        np.testing.assert_array_equal(from_data_form(report["outputs"]["g"][0]), 255 - f)
        img = report["outputs"]["img"]
        if img.get("type") == "raw":
            np.testing.assert_array_equal(np.frombuffer(base64.b64decode(img["data"]), np.uint8).reshape(img["shape"]), f)

    def test_output_dir_must_exist(self):
        _, path = self.frame_file()
        code = self.write("inv.py", INVERT)
        _, report, _ = self.run_block("--code", code, "--input", "f=@" + path, "--output-dir",
                                      os.path.join(self.dir, "missing"), expect_exit=2)
        self.assertIn("not a directory", report["error"])


if __name__ == "__main__":
    test_cli.main()
