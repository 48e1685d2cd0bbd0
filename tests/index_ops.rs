//! neurite's index, mask and comparison ops, its indexing, reshape and scalar operators, and
//! its tensor printing, against PyTorch: `tests/data/index_ops.json` holds torch's inputs,
//! outputs, gradients and printed strings, written by `bench/pytorch/check_index_ops.py`
//! (so CI needs no torch). Each case is replayed here and compared.

use std::collections::HashMap;

use neurite::tensor::{BoolTensor, IntTensor};
use neurite::Tensor;
use serde_json::Value;

fn data() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/index_ops.json");
    let text = std::fs::read_to_string(path).expect("tests/data/index_ops.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn shape(v: &Value) -> Vec<usize> {
    v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| match x {
            Value::Number(n) => n.as_f64().unwrap() as f32,
            Value::String(s) => s.parse().unwrap(),
            _ => panic!("not a float: {x}"),
        })
        .collect()
}

fn tensor(v: &Value) -> Tensor {
    Tensor::from_vec(floats(v), &shape(v))
}

fn ints(v: &Value) -> IntTensor {
    let values = v["values"].as_array().unwrap();
    IntTensor::from_vec(
        values.iter().map(|x| x.as_i64().unwrap()).collect(),
        &shape(v),
    )
}

fn mask(v: &Value) -> BoolTensor {
    let values = v["values"].as_array().unwrap();
    BoolTensor::from_vec(
        values.iter().map(|x| x.as_bool().unwrap()).collect(),
        &shape(v),
    )
}

/// One output of a case, of whichever type the op returns.
enum Out {
    Float(Tensor),
    Int(IntTensor),
    Bool(BoolTensor),
}

/// The neurite side of each case of the JSON, by name.
fn run(
    name: &str,
    x: &HashMap<String, Tensor>,
    i: &HashMap<String, IntTensor>,
    m: &HashMap<String, BoolTensor>,
) -> Vec<Out> {
    use Out::{Bool, Float, Int};
    let pair = |t: (Tensor, IntTensor)| vec![Float(t.0), Int(t.1)];
    match name {
        "gather_dim1" => vec![Float(x["x"].gather(1, &i["index"]))],
        "gather_dim0" => vec![Float(x["x"].gather(0, &i["index"]))],
        "scatter_add_dim0" => vec![Float(x["x"].scatter_add(0, &i["index"], &x["src"]))],
        "scatter_add_small_index" => vec![Float(x["x"].scatter_add(1, &i["index"], &x["src"]))],
        "topk_largest" => pair(x["x"].topk(3, 1, true)),
        "topk_smallest_dim0" => pair(x["x"].topk(2, 0, false)),
        "where" => vec![Float(Tensor::where_cond(&m["mask"], &x["a"], &x["b"]))],
        "where_broadcast_mask" => vec![Float(x["a"].where_(&m["mask"], &x["b"]))],
        "masked_fill" => vec![Float(x["x"].masked_fill(&m["mask"], -5.0))],
        "max_dim1" => pair(x["x"].max_with_indices(1, false)),
        "max_dim0_keepdim" => pair(x["x"].max_with_indices(0, true)),
        "min_dim1" => pair(x["x"].min_with_indices(1, false)),
        "argmax_dim1" => vec![Int(x["x"].argmax(1))],
        "argmin_dim0" => vec![Int(x["x"].argmin(0))],
        "max_all" => vec![Float(x["x"].max_all())],
        "min_all" => vec![Float(x["x"].min_all())],
        "cross_entropy_int_targets" => vec![Float(x["logits"].cross_entropy(&i["targets"]))],
        "embedding_int_ids" => vec![Float(x["weight"].embedding_of(&i["ids"]))],
        "compare_gt_scalar" => vec![Bool(x["x"].gt(0.5)), Bool(x["x"].le(-0.5))],
        "compare_broadcast" => {
            let (a, y) = (&x["x"], &x["y"]);
            vec![
                Bool(a.ge(y)),
                Bool(a.lt(y)),
                Bool(a.eq(a.i((.., ..1)))),
                Bool(a.ne(y)),
            ]
        }
        "index_slices" => {
            let a = &x["x"];
            vec![
                Float(a.i((.., 1..3))),
                Float(a.i(-1)),
                Float(a.i((0, -1))),
                Float(a.i((1.., ..2))),
                Float(a.select(1, -2)),
            ]
        }
        "reshape_infer" => vec![Float(x["x"].t().reshape(&[-1, 4]))],
        "scalar_operators" => {
            let a = &x["x"];
            vec![
                Float(1.0 - a),
                Float(2.0 * a + 1.0),
                Float(3.0 / (a + 5.0)),
                Float(-a.clone() / 2.0),
            ]
        }
        "to_int_truncates" => vec![Int((&x["x"] * 2.0).to_int())],
        other => panic!("no neurite replay for case {other}"),
    }
}

fn assert_close(name: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: {what} has {} values, torch {}",
        got.len(),
        want.len()
    );
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 + 1e-5 * w.abs(),
            "{name}: {what}[{k}] is {g}, torch gives {w}"
        );
    }
}

#[test]
fn index_ops_match_pytorch_values_and_gradients() {
    let data = data();
    let cases = data["cases"].as_object().unwrap();
    assert!(cases.len() >= 20, "the JSON holds {} cases", cases.len());
    for (name, case) in cases {
        let inputs: HashMap<String, Tensor> = case["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), tensor(v).requires_grad_()))
            .collect();
        let index: HashMap<String, IntTensor> = case["ints"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), ints(v)))
            .collect();
        let masks: HashMap<String, BoolTensor> = case["masks"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), mask(v)))
            .collect();
        let outs = run(name, &inputs, &index, &masks);
        let want = case["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), want.len(), "{name}: number of outputs");
        let mut loss: Option<Tensor> = None;
        for (k, (out, w)) in outs.iter().zip(want).enumerate() {
            let what = format!("output {k}");
            match out {
                Out::Float(t) => {
                    assert_eq!(t.shape(), shape(w), "{name}: {what} shape");
                    assert_close(name, &what, &t.to_vec(), &floats(w));
                    let term = t.mul(&tensor(&w["weights"])).sum_all();
                    loss = Some(match loss {
                        Some(l) => l.add(&term),
                        None => term,
                    });
                }
                Out::Int(t) => {
                    assert_eq!(t.shape(), shape(w), "{name}: {what} shape");
                    assert_eq!(t.to_vec(), ints(w).to_vec(), "{name}: {what}");
                }
                Out::Bool(t) => {
                    assert_eq!(t.shape(), shape(w), "{name}: {what} shape");
                    assert_eq!(t.to_vec(), mask(w).to_vec(), "{name}: {what}");
                }
            }
        }
        let grads = case["grads"].as_object().unwrap();
        if let Some(loss) = loss.filter(|l| l.requires_grad()) {
            loss.backward().unwrap();
            for (input, want) in grads {
                let got = inputs[input]
                    .grad()
                    .map(|g| g.to_vec())
                    .unwrap_or_else(|| vec![0.0; inputs[input].numel()]);
                assert_close(name, &format!("gradient of {input}"), &got, &floats(want));
            }
        }
    }
}

#[test]
fn tensors_print_as_pytorch_prints_them() {
    let data = data();
    let cases = data["display"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let want = case["text"].as_str().unwrap();
        let precision = case["precision"].as_u64().unwrap() as usize;
        let got = match case["kind"].as_str().unwrap() {
            "int" => format!("{}", ints(case)),
            "bool" => format!("{}", mask(case)),
            _ => {
                let mut t = tensor(case);
                if case["requires_grad"].as_bool().unwrap() {
                    t = t.requires_grad_();
                }
                if case.get("op").is_some() {
                    t = &t * 2.0; // `x * 2.0` in the script: MulBackward0
                }
                format!("{t:.precision$}")
            }
        };
        assert_eq!(
            got, want,
            "{name}: neurite printed\n{got}\ntorch printed\n{want}"
        );
    }
}
