#!/usr/bin/env python3
"""Reference predictions of an exported Weir model by the official ONNX Runtime.

Usage: onnx_predict.py MODEL.onnx INPUTS.json

INPUTS.json holds {"sparse": [[int]], "dense": [[float]], "text": [[float]]} (only the inputs the
model has). Checks the model with onnx.checker (full check, shape inference), runs it on the CPU
provider and prints {"logit": [[...]], "prediction": [[...]]} as JSON on stdout.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> int:
    model_path, inputs_path = sys.argv[1], sys.argv[2]
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    with open(inputs_path) as f:
        raw = json.load(f)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in session.get_inputs():
        dtype = np.int64 if spec.type == "tensor(int64)" else np.float32
        feeds[spec.name] = np.asarray(raw[spec.name], dtype=dtype)
    logit, prediction = session.run(["logit", "prediction"], feeds)
    json.dump({"logit": logit.tolist(), "prediction": prediction.tolist()}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
