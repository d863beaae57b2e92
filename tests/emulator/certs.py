# certs.py: makes a throw-away CA and a server certificate for 127.0.0.1/localhost with
# the openssl CLI, so the emulator speaks real, verifiable TLS at test time.
import os
import subprocess


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(directory, names=("127.0.0.1", "localhost")):
    """Writes ca.pem, ca.key, server.pem, server.key into directory; returns their paths.
    The server certificate names every entry of `names` in subjectAltName."""
    os.makedirs(directory, exist_ok=True)
    paths = {k: os.path.join(directory, k) for k in ("ca.pem", "ca.key", "server.pem", "server.key")}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    sans = ",".join(("IP:" if n.replace(".", "").isdigit() or ":" in n else "DNS:") + n for n in names)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=blockbox test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=directory)
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n" % sans)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
             cwd=directory)
    return paths


def make_self_signed(directory, name="127.0.0.1"):
    """A certificate no CA vouches for (for the untrusted-certificate test)."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "rogue.pem"), os.path.join(directory, "rogue.key")
    if not os.path.exists(cert):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key",
                 "-out", "rogue.pem", "-days", "2", "-subj", "/CN=" + name,
                 "-addext", "subjectAltName=IP:" + name, cwd=directory)
    return cert, key
