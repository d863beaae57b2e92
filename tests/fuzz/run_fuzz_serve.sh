#!/usr/bin/env bash
# run_fuzz_serve.sh: builds the `blockbox serve` request-path fuzzer with clang
# (libFuzzer + ASan + UBSan) against the built library, seeds it with Roboflow-shaped
# requests and runs it for a bounded time. Usage: run_fuzz_serve.sh SRC_DIR BUILD_DIR [SECONDS]
set -euo pipefail
src=$1 build=$2 secs=${3:-20}
command -v clang >/dev/null || { echo "clang is missing (scripts/deps.sh installs it)" >&2; exit 1; }
out=$build/bin/fuzz_serve
# shellcheck disable=SC2046
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
    -I"$src/include" -I"$src/src/serve" "$src/tests/fuzz/fuzz_serve.c" \
    "$src"/src/serve/{inflate,protocol,auth,ndvalue,sbuf}.c "$build/lib/libblockbox.a" \
    $(pkg-config --libs libcjson zlib openssl libseccomp libcurl libcap) -lpthread -ldl -lm -o "$out"
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
/usr/bin/python3 - "$corpus" <<'PY'
import gzip, hashlib, json, os, sys
d = sys.argv[1]
code = "def run(self, x):\n    return {'y': x}\n"
h = hashlib.md5((code + "\n").encode()).hexdigest()
reqs = [
    {"code_hash": h, "run_function_name": "run", "inputs_json": json.dumps({"x": 1}),
     "workflow_context": {}, "code_str": code, "imports": []},
    {"code_hash": h, "run_function_name": "run", "inputs_json": "{}", "workflow_context": {}},
    {"code_hash": h, "code_str": code, "imports": ["import os"], "init_function_code": "def init():\n  return {}\n",
     "ndarray_form": "data", "runtime_version": "1"},
    {"result": {"_type": "ndarray", "dtype": "float32", "shape": [2], "data": "AACAPwAAAEA="}},
]
def frame(flags, key, secret, chunk, body):
    return bytes([flags, len(key), len(secret), chunk]) + key + secret + body
for i, r in enumerate(reqs):
    body = json.dumps(r).encode()
    with open(os.path.join(d, "plain%d" % i), "wb") as f:
        f.write(frame(0, b"fuzz-key", b"fuzz-secret", 7, body))
    with open(os.path.join(d, "gzip%d" % i), "wb") as f:
        f.write(frame(1, b"fuzz-key", b"wrong", 3, gzip.compress(body, 1)))
PY
# ASan's leak check stays on: the request path must not leak on any input.
"$out" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 | tail -15
