#!/usr/bin/env python3
# deploy.py: deploys, lists and removes blockbox's Modal app from this checkout, with the
# runtime version as the image tag and the knobs recorded; prints the endpoint URL to use.
"""blockbox's Modal deploy tool (drivers/modal/README.md, "Deploying").

    drivers/modal/deploy.py deploy [--app NAME] [--env KEY=VALUE ...] [--runtime-dir DIR] [--dry-run]
    drivers/modal/deploy.py list
    drivers/modal/deploy.py remove [--app NAME]
    drivers/modal/deploy.py url [--app NAME] [--workspace MODAL_WORKSPACE]

Needs `pip install -r drivers/modal/requirements-deploy.txt` (the pinned modal client)
and `modal token new` once. `deploy` checks the client version against the pin, then
amalgamates the runtime from this checkout's src/runtime modules (no build needed;
`--runtime-dir build/runtime` ships a build's blockbox_runtime.py instead), runs
`modal deploy drivers/modal/app.py` with that file (BLOCKBOX_RUNTIME_DIR) and
BLOCKBOX_RUNTIME_VERSION set from it (the block image's tag and self-check), and prints
the MODAL_WEB_ENDPOINT_URL for clients. `list` shows the deployed blockbox apps; `remove`
stops one (`modal app stop`). `--dry-run` prints the commands only.
"""
import argparse
import importlib.util
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
APP_PY = os.path.join(HERE, "app.py")
AMALGAMATE = os.path.join(ROOT, "src", "runtime", "amalgamate.py")
KNOBS = ("BLOCKBOX_MODAL_REGION", "BLOCKBOX_MODAL_MEMORY_MB", "BLOCKBOX_MODAL_CPU",
         "BLOCKBOX_MODAL_TIMEOUT", "BLOCKBOX_MODAL_WARM_SANDBOXES", "BLOCKBOX_MODAL_WARM_IDLE",
         "BLOCKBOX_MODAL_MIN_CONTAINERS", "BLOCKBOX_MODAL_SCALEDOWN", "BLOCKBOX_MODAL_CONCURRENCY",
         "BLOCKBOX_MODAL_ALLOW_ANONYMOUS")


def pinned_modal():
    with open(os.path.join(HERE, "requirements-deploy.txt")) as f:
        for line in f:
            if line.startswith("modal=="):
                return line.strip().split("==", 1)[1]
    raise SystemExit("requirements-deploy.txt pins no modal version")


def runtime_dir(given):
    """The directory of the blockbox_runtime.py to ship: `given` (a build's), else one
    made now from the checkout's modules (src/runtime/amalgamate.py; removed at exit)."""
    if given:
        os.environ["BLOCKBOX_RUNTIME_DIR"] = os.path.abspath(given)
    else:
        os.environ.pop("BLOCKBOX_RUNTIME_DIR", None)
    spec = importlib.util.spec_from_file_location("blockbox_amalgamate", AMALGAMATE)
    amalgamate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(amalgamate)
    try:
        return amalgamate.runtime_dir()
    except amalgamate.AmalgamationError as exc:
        raise SystemExit("the runtime: %s" % exc) from None


def runtime_version(directory):
    path = os.path.join(directory, "blockbox_runtime.py")
    with open(path, encoding="utf-8") as f:
        m = re.search(r'^RUNTIME_VERSION\s*=\s*"([^"]+)"', f.read(), re.M)
    if not m:
        raise SystemExit("no RUNTIME_VERSION in %s" % path)
    return m.group(1)


def endpoint_url(app, workspace):
    """Modal's host for label {app}-execute (labels over 56 characters are not produced:
    app names are at most 48)."""
    return "https://%s--%s-execute.modal.run" % (workspace, app)


def run(cmd, env, dry):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    if dry:
        return 0
    return subprocess.call(cmd, env=env)


def check_client(dry):
    want = pinned_modal()
    if dry:
        return
    try:
        import modal
    except ImportError:
        raise SystemExit("the modal client is not installed: pip install -r %s"
                         % os.path.join(HERE, "requirements-deploy.txt")) from None
    have = getattr(modal, "__version__", "?")
    if have != want:
        raise SystemExit("modal %s is installed, the app is checked against %s: "
                         "pip install -r drivers/modal/requirements-deploy.txt" % (have, want))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("deploy", "list", "remove", "url"))
    parser.add_argument("--app", default=os.environ.get("BLOCKBOX_MODAL_APP", "blockbox"))
    parser.add_argument("--workspace", default=os.environ.get("MODAL_WORKSPACE_NAME", "roboflow"),
                        help="the Modal workspace (host prefix of the URL)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="a BLOCKBOX_MODAL_* knob for this deployment")
    parser.add_argument("--runtime-dir", metavar="DIR",
                        help="ship DIR/blockbox_runtime.py (e.g. build/runtime) instead of "
                             "amalgamating src/runtime now")
    parser.add_argument("--dry-run", action="store_true")
    options = parser.parse_args(argv)
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,47}$", options.app):
        raise SystemExit("--app must be 1-48 of [a-z0-9-]")
    shipped = runtime_dir(options.runtime_dir)
    env = dict(os.environ, BLOCKBOX_MODAL_APP=options.app, BLOCKBOX_RUNTIME_DIR=shipped,
               BLOCKBOX_RUNTIME_VERSION=runtime_version(shipped))
    for item in options.env:
        key, sep, value = item.partition("=")
        if not sep or key not in KNOBS:
            raise SystemExit("--env takes KEY=VALUE with KEY one of: " + ", ".join(KNOBS))
        env[key] = value
    if options.command == "url":
        print(endpoint_url(options.app, options.workspace))
        return 0
    check_client(options.dry_run)
    if options.command == "deploy":
        print("blockbox runtime %s, modal %s, app %s" % (env["BLOCKBOX_RUNTIME_VERSION"], pinned_modal(),
                                                          options.app))
        rc = run(["modal", "deploy", APP_PY], env, options.dry_run)
        if rc == 0:
            print("MODAL_WEB_ENDPOINT_URL=%s   (clients append ?workspace_id=ID)"
                  % endpoint_url(options.app, options.workspace))
        return rc
    if options.command == "list":
        return run(["modal", "app", "list"], env, options.dry_run)
    return run(["modal", "app", "stop", options.app], env, options.dry_run)


if __name__ == "__main__":
    sys.exit(main())
