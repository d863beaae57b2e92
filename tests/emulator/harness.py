# harness.py: starts the Modal endpoint emulator as a child process and talks to its
# control endpoints (faults, stats, reset) for Python tests and benchmarks.
import json
import os
import ssl
import subprocess
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"


class Emulator:
    def __init__(self, token_id="wk-test-id", token_secret="ws-test-secret", cert_dir=None,
                 extra_args=()):
        self.token_id, self.token_secret = token_id, token_secret
        self.cert_dir = cert_dir or tempfile.mkdtemp(prefix="bbemu-certs-")
        env = dict(os.environ, EMULATOR_TOKEN_ID=token_id, EMULATOR_TOKEN_SECRET=token_secret)
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "emulator.py"), "--cert-dir",
                                      self.cert_dir, *extra_args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            err = self.proc.stderr.read()
            self.proc.kill()
            raise RuntimeError("emulator did not start: %r %s" % (line, err[-2000:]))
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        self.port = int(fields["port"])
        self.ca = fields["ca"]
        self.url = "https://127.0.0.1:%d/" % self.port
        self._tls = ssl.create_default_context(cafile=self.ca)

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self._tls, timeout=10) as resp:
            return json.loads(resp.read())

    def stats(self):
        return self._call("GET", "/_stats")

    def faults(self, *faults):
        return self._call("POST", "/_faults", list(faults))

    def reset(self):
        return self._call("POST", "/_reset", {})

    def env(self, workspace="ws1"):
        """Environment variables that point the modal driver at this emulator."""
        return {"WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE": "modal",
                "MODAL_WEB_ENDPOINT_URL": self.url, "BLOCKBOX_CA_FILE": self.ca,
                "MODAL_TOKEN_ID": self.token_id, "MODAL_TOKEN_SECRET": self.token_secret,
                "BLOCKBOX_WORKSPACE_ID": workspace}

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
