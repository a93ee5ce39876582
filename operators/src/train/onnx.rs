//! Export of a [`Model`] to a valid `.onnx` file (opset 17), by a small hand-written encoder of
//! the few protobuf messages an ONNX model needs (`ModelProto`, `GraphProto`, `NodeProto`,
//! `TensorProto`, `ValueInfoProto`, `AttributeProto`); field numbers are those of `onnx.proto3`.
//!
//! The graph computes exactly [`Model::forward`]:
//!
//! | name | type | what |
//! |---|---|---|
//! | input `sparse` | int64 `[batch, fields]` | hashed rows (only when the model has sparse fields) |
//! | input `dense` | float `[batch, dense]` | dense features (only when `dense > 0`) |
//! | input `text` | float `[batch, text_dim]` | text embedding (only when `text_dim > 0`) |
//! | output `logit` | float `[batch, outputs]` | the logits |
//! | output `prediction` | float `[batch, outputs]` | probability (sigmoid / softmax) or value |
//!
//! Metadata properties: `weir.spec` (the [`ModelSpec`] as JSON), `weir.version`, and
//! `weir.published_at` when given.

use super::loss::Loss;
use super::model::{Model, ModelSpec};

/// Wire-format helpers.
struct Message(Vec<u8>);

impl Message {
    fn new() -> Self {
        Message(Vec::new())
    }
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }
    fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }
    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn string(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn message(&mut self, field: u32, m: Message) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

const FLOAT: i64 = 1;
const INT64: i64 = 7;

/// An attribute value.
enum Attr {
    Int(i64),
}

fn attribute(name: &str, value: Attr) -> Message {
    let mut m = Message::new();
    m.string(1, name);
    match value {
        Attr::Int(i) => {
            m.int(3, i).int(20, 2);
        }
    }
    m
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Message>) -> Message {
    let mut m = Message::new();
    for i in inputs {
        m.string(1, i);
    }
    for o in outputs {
        m.string(2, o);
    }
    m.string(3, name).string(4, op);
    for a in attrs {
        m.message(5, a);
    }
    m
}

fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> Message {
    let mut m = Message::new();
    for &d in dims {
        m.int(1, d as i64);
    }
    m.int(2, FLOAT).string(8, name);
    let mut raw = Vec::with_capacity(values.len() * 4);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    m.bytes(9, &raw);
    m
}

fn int64_tensor(name: &str, dims: &[usize], values: &[i64]) -> Message {
    let mut m = Message::new();
    for &d in dims {
        m.int(1, d as i64);
    }
    m.int(2, INT64).string(8, name);
    let mut raw = Vec::with_capacity(values.len() * 8);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    m.bytes(9, &raw);
    m
}

/// `ValueInfoProto` of a tensor with a symbolic batch dimension and fixed inner dimensions.
fn value_info(name: &str, elem_type: i64, inner: &[usize]) -> Message {
    let mut shape = Message::new();
    let mut batch = Message::new();
    batch.string(2, "batch");
    shape.message(1, batch);
    for &d in inner {
        let mut dim = Message::new();
        dim.int(1, d as i64);
        shape.message(1, dim);
    }
    let mut tensor = Message::new();
    tensor.int(1, elem_type).message(2, shape);
    let mut ty = Message::new();
    ty.message(1, tensor);
    let mut m = Message::new();
    m.string(1, name).message(2, ty);
    m
}

/// Names of the graph's inputs for a spec, in order.
pub fn input_names(spec: &ModelSpec) -> Vec<&'static str> {
    let mut names = Vec::new();
    if !spec.fields.is_empty() {
        names.push("sparse");
    }
    if spec.dense > 0 {
        names.push("dense");
    }
    if spec.text_dim > 0 {
        names.push("text");
    }
    names
}

/// The model as the bytes of a `.onnx` file.
pub fn export(model: &Model<f32>, version: u64, published_at: Option<i64>) -> Vec<u8> {
    let spec = &model.spec;
    let p = &model.params;
    let outputs = spec.outputs;
    let fields = spec.fields.len();
    let mut graph = Message::new();
    let mut nodes: Vec<Message> = Vec::new();
    let mut inits: Vec<Message> = Vec::new();
    let mut terms: Vec<String> = Vec::new();

    if spec.linear && fields > 0 {
        inits.push(float_tensor("linear_weight", &[spec.buckets as usize, outputs], &p.linear));
        inits.push(int64_tensor("axes_fields", &[1], &[1]));
        nodes.push(node("Gather", "linear_gather", &["linear_weight", "sparse"], &["linear_rows"], vec![attribute("axis", Attr::Int(0))]));
        nodes.push(node("ReduceSum", "linear_sum", &["linear_rows", "axes_fields"], &["linear_logit"], vec![attribute("keepdims", Attr::Int(0))]));
        terms.push("linear_logit".into());
    }
    if !p.layers.is_empty() {
        let mut parts: Vec<&str> = Vec::new();
        let e = spec.embedding_dim;
        if e > 0 && fields > 0 {
            inits.push(float_tensor("embedding_table", &[spec.buckets as usize, e], &p.embeddings));
            inits.push(int64_tensor("embedding_flat_shape", &[2], &[0, (fields * e) as i64]));
            nodes.push(node("Gather", "embedding_gather", &["embedding_table", "sparse"], &["embedding_rows"], vec![attribute("axis", Attr::Int(0))]));
            nodes.push(node("Reshape", "embedding_flatten", &["embedding_rows", "embedding_flat_shape"], &["embedding_flat"], vec![]));
            parts.push("embedding_flat");
            if spec.interactions {
                // ½ (‖Σ_f e_f‖² − Σ_f ‖e_f‖²), as [batch, 1].
                inits.push(float_tensor("half", &[1], &[0.5]));
                nodes.push(node("ReduceSum", "fm_sum", &["embedding_rows", "axes_fields_fm"], &["fm_sum"], vec![attribute("keepdims", Attr::Int(0))]));
                inits.push(int64_tensor("axes_fields_fm", &[1], &[1]));
                nodes.push(node("Mul", "fm_sum_sq", &["fm_sum", "fm_sum"], &["fm_sum_sq"], vec![]));
                nodes.push(node("ReduceSum", "fm_total", &["fm_sum_sq", "axes_fields_fm"], &["fm_total"], vec![attribute("keepdims", Attr::Int(1))]));
                nodes.push(node("Mul", "fm_sq", &["embedding_flat", "embedding_flat"], &["fm_sq"], vec![]));
                nodes.push(node("ReduceSum", "fm_squares", &["fm_sq", "axes_fields_fm"], &["fm_squares"], vec![attribute("keepdims", Attr::Int(1))]));
                nodes.push(node("Sub", "fm_diff", &["fm_total", "fm_squares"], &["fm_diff"], vec![]));
                nodes.push(node("Mul", "fm_logit", &["fm_diff", "half"], &["fm_logit"], vec![]));
                terms.push("fm_logit".into());
            }
        }
        if spec.dense > 0 {
            parts.push("dense");
        }
        if spec.text_dim > 0 {
            parts.push("text");
        }
        let mut x = parts[0].to_string();
        if parts.len() > 1 {
            nodes.push(node("Concat", "head_input", &parts, &["head_input"], vec![attribute("axis", Attr::Int(1))]));
            x = "head_input".into();
        }
        let last = p.layers.len() - 1;
        for (l, layer) in p.layers.iter().enumerate() {
            let w = format!("layer{l}_weight");
            inits.push(float_tensor(&w, &[layer.inputs, layer.outputs], &layer.weight));
            let z = format!("layer{l}_out");
            let mut ins = vec![x.clone(), w];
            if !layer.bias.is_empty() {
                let b = format!("layer{l}_bias");
                inits.push(float_tensor(&b, &[layer.outputs], &layer.bias));
                ins.push(b);
            }
            let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
            nodes.push(node("Gemm", &format!("layer{l}"), &ins, &[&z], vec![]));
            x = z;
            if l < last {
                let h = format!("layer{l}_relu");
                nodes.push(node("Relu", &h, &[&x], &[&h], vec![]));
                x = h;
            }
        }
        terms.push(x);
    }
    inits.push(float_tensor("bias", &[outputs], &p.bias));
    let mut acc = terms[0].clone();
    for (i, t) in terms.iter().enumerate().skip(1) {
        let out = format!("logit_sum{i}");
        nodes.push(node("Add", &out, &[&acc, t], &[&out], vec![]));
        acc = out;
    }
    nodes.push(node("Add", "logit", &[&acc, "bias"], &["logit"], vec![]));
    match spec.loss {
        Loss::BinaryCrossEntropy => nodes.push(node("Sigmoid", "prediction", &["logit"], &["prediction"], vec![])),
        Loss::SoftmaxCrossEntropy => nodes.push(node("Softmax", "prediction", &["logit"], &["prediction"], vec![attribute("axis", Attr::Int(1))])),
        Loss::MeanSquaredError => nodes.push(node("Identity", "prediction", &["logit"], &["prediction"], vec![])),
    }

    for n in nodes {
        graph.message(1, n);
    }
    graph.string(2, "weir_model");
    for t in inits {
        graph.message(5, t);
    }
    if fields > 0 {
        graph.message(11, value_info("sparse", INT64, &[fields]));
    }
    if spec.dense > 0 {
        graph.message(11, value_info("dense", FLOAT, &[spec.dense]));
    }
    if spec.text_dim > 0 {
        graph.message(11, value_info("text", FLOAT, &[spec.text_dim]));
    }
    graph.message(12, value_info("logit", FLOAT, &[outputs]));
    graph.message(12, value_info("prediction", FLOAT, &[outputs]));

    let mut model_proto = Message::new();
    model_proto.int(1, 8).string(2, "weir").string(3, env!("CARGO_PKG_VERSION")).int(5, version as i64);
    model_proto.message(7, graph);
    let mut opset = Message::new();
    opset.string(1, "").int(2, 17);
    model_proto.message(8, opset);
    let mut props = vec![("weir.spec", serde_json::to_string(spec).expect("a spec serialises")), ("weir.version", version.to_string())];
    if let Some(t) = published_at {
        props.push(("weir.published_at", t.to_string()));
    }
    for (k, v) in props {
        let mut entry = Message::new();
        entry.string(1, k).string(2, &v);
        model_proto.message(14, entry);
    }
    model_proto.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_encode_like_protobuf() {
        let mut m = Message::new();
        m.varint(300);
        assert_eq!(m.0, vec![0xac, 0x02]);
        let mut m = Message::new();
        m.int(1, 8);
        assert_eq!(m.0, vec![0x08, 0x08]);
    }

    #[test]
    fn export_is_deterministic() {
        let model = Model::<f32>::new(ModelSpec::mlp(&["user", "item"], 64, 4, &[8])).unwrap();
        assert_eq!(export(&model, 3, Some(10)), export(&model, 3, Some(10)));
    }
}
