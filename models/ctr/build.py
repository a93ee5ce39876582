"""Builds Weir's small CTR models from their definition, with seeded weights.

    .cache/venv/bin/python models/ctr/build.py        # (re)writes models/ctr/*.onnx

The model (see models/ctr/README.md):

    sparse  int64   [batch, 4]   hashed buckets of (user, item, category, price bucket),
                                 each in [0, BUCKETS) -- weir_operators::hashing::bucket
    dense   float32 [batch, 4]   ln(1+price), sin/cos of hour of day, 1.0 (bias feature)
    text    float32 [batch, 384] (ctr_mlp_text only) the item title's MiniLM embedding

    emb     = Gather(table[BUCKETS, 8], sparse) -> [batch, 4, 8] -> [batch, 32]
    x       = Concat(emb, dense[, text])
    h       = Relu(x @ W1 + b1)                                  -> [batch, 32]
    p_click = Sigmoid(h @ W2 + b2)                               -> [batch, 1]

The output is deterministic: numpy's PCG64 with a fixed seed per file, float32 weights. Two
weight sets of the plain model exist (seeds 1 and 2) so tests can serve two model versions.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BUCKETS = 4096
EMB = 8
FIELDS = 4
DENSE = 4
TEXT = 384
HIDDEN = 32
OPSET = 17


def build(seed: int, with_text: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    width = FIELDS * EMB + DENSE + (TEXT if with_text else 0)
    table = (rng.standard_normal((BUCKETS, EMB)) * 0.1).astype(np.float32)
    w1 = (rng.standard_normal((width, HIDDEN)) * np.sqrt(2.0 / width)).astype(np.float32)
    b1 = (rng.standard_normal(HIDDEN) * 0.01).astype(np.float32)
    w2 = (rng.standard_normal((HIDDEN, 1)) * np.sqrt(1.0 / HIDDEN)).astype(np.float32)
    b2 = np.array([-1.5], dtype=np.float32)  # a CTR prior of about 18 %
    flat_shape = np.array([-1, FIELDS * EMB], dtype=np.int64)

    inputs = [
        helper.make_tensor_value_info("sparse", TensorProto.INT64, ["batch", FIELDS]),
        helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["batch", DENSE]),
    ]
    concat = ["emb_flat", "dense"]
    if with_text:
        inputs.append(helper.make_tensor_value_info("text", TensorProto.FLOAT, ["batch", TEXT]))
        concat.append("text")
    nodes = [
        helper.make_node("Gather", ["table", "sparse"], ["emb"], axis=0),
        helper.make_node("Reshape", ["emb", "flat_shape"], ["emb_flat"]),
        helper.make_node("Concat", concat, ["x"], axis=1),
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h_pre"]),
        helper.make_node("Relu", ["h_pre"], ["h"]),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p_click"]),
    ]
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(flat_shape, "flat_shape"),
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    outputs = [helper.make_tensor_value_info("p_click", TensorProto.FLOAT, ["batch", 1])]
    name = "weir-ctr-mlp" + ("-text" if with_text else "")
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="weir models/ctr/build.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    out = os.path.dirname(os.path.abspath(__file__))
    for file, seed, with_text in [("ctr_mlp.onnx", 1, False), ("ctr_mlp_v2.onnx", 2, False), ("ctr_mlp_text.onnx", 3, True)]:
        path = os.path.join(out, file)
        model = build(seed, with_text)
        # Deterministic bytes: serialise once, write as is.
        with open(path, "wb") as f:
            f.write(model.SerializeToString(deterministic=True))
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
