#!/usr/bin/python3
# workflow.py: runs the Workflows-shaped custom block of manifest.json through the Python
# binding on a synthetic frame and detections; WORKFLOWS_CUSTOM_PYTHON_EXECUTION_MODE picks
# local or modal. Prints a canonical JSON summary of the outputs (the test compares modes).
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))   # not needed once pip-installed

import numpy as np  # noqa: E402

import blockbox  # noqa: E402


def make_inputs():
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    frame[40:120, 60:200] = (30, 60, 90)
    detections = blockbox.Detections(
        xyxy=[[60, 40, 200, 120], [10, 10, 50, 60], [150, 100, 300, 230]],
        confidence=[0.92, 0.31, 0.77], class_id=[0, 1, 2], class_name=["car", "person", "dog"],
        detection_id=["d-1", "d-2", "d-3"], image_size=(320, 240))
    return {"image": blockbox.Image(frame, parent_id="camera-1"), "predictions": detections,
            "min_confidence": 0.5}


def summary(value):
    """JSON-able view: pixels by digest, detections in their wire form, arrays as lists."""
    if isinstance(value, blockbox.Image):
        px = value.numpy_image
        return {"image": list(px.shape), "sha256": hashlib.sha256(px.tobytes()).hexdigest(),
                "parent_id": value.parent_id}
    if isinstance(value, blockbox.Detections):
        return value.to_wire()
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.name, "value": value.tolist()}
    if isinstance(value, dict):
        return {k: summary(v) for k, v in value.items()}
    return value


def main():
    with open(os.path.join(HERE, "manifest.json")) as f:
        code = json.load(f)["code"]
    with blockbox.Executor.from_env() as ex:
        block = ex.load(code["run_function_code"], init=code.get("init_function_code"),
                        imports=code.get("imports"), function=code.get("run_function_name", "run"),
                        init_function=code.get("init_function_name", "init"))
        result = block.run_result(inputs=make_inputs())
        print(json.dumps({"driver": ex.driver, "outputs": summary(result.outputs), "stdout": result.stdout,
                          "debug_traces": [t["value"] for t in result.debug_traces]},
                         sort_keys=True, indent=1))


if __name__ == "__main__":
    main()
