# blocks.py: loads the project's own block cases (blocks.json here) for the suites that
# run blocks from the repository alone: the local-vs-modal CLI differential and the runtime's.
import base64
import json
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "blocks.json")
KINDS = ("functional", "block_error", "bad_input")


def load(*kinds):
    """The cases of these kinds (all when none is named), in file order. A case's
    `code_b64` (code that is not UTF-8 text) becomes `code_bytes`."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError("unknown case kinds: %s" % sorted(unknown))
    with open(PATH, encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    for case in cases:
        if "code_b64" in case:
            case["code_bytes"] = base64.b64decode(case.pop("code_b64"))
    return [case for case in cases if not kinds or case["kind"] in kinds]
