//! The command line: clear errors, generator determinism.

use std::process::Command;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

#[test]
fn a_missing_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = weir()
        .args(["run", "window-stats", "--input", "/nonexistent/clicks-*.jsonl", "--output"])
        .arg(dir.path().join("o.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no input files match /nonexistent/clicks-*.jsonl"), "{stderr}");
}

#[test]
fn an_unknown_output_format_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"ts\":1,\"event\":\"click\",\"item\":\"a\"}\n").unwrap();
    let out = weir().args(["run", "window-stats", "--quiet", "--input"]).arg(&input).args(["--output", "out.xlsx"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must end in .jsonl, .csv or .parquet"));
}

#[test]
fn gen_is_deterministic_and_writes_truth() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for run in 0..2 {
        let out = dir.path().join(format!("clicks-{run}.jsonl"));
        let truth = dir.path().join(format!("truth-{run}.jsonl"));
        let status = weir().args(["gen", "--events", "3000", "--seed", "5", "--out"]).arg(&out).arg("--truth").arg(&truth).status().unwrap();
        assert!(status.success());
        files.push((std::fs::read(&out).unwrap(), std::fs::read(&truth).unwrap()));
    }
    assert_eq!(files[0], files[1]);
    assert_eq!(files[0].0.iter().filter(|b| **b == b'\n').count(), 3000);
    let truth = String::from_utf8(files[0].1.clone()).unwrap();
    let first: serde_json::Value = serde_json::from_str(truth.lines().next().unwrap()).unwrap();
    let p = first["p_click"].as_f64().unwrap();
    assert!(p > 0.0 && p < 1.0);
}

#[test]
fn run_writes_output_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clicks.parquet");
    assert!(weir().args(["gen", "--events", "2000", "--format", "parquet", "--out"]).arg(&input).status().unwrap().success());
    let output = dir.path().join("stats.csv");
    let out = weir().args(["run", "window-stats", "--quiet", "--workers", "2", "--input"]).arg(&input).arg("--output").arg(&output).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2000 events in"), "{stderr}");
    let csv = std::fs::read_to_string(&output).unwrap();
    assert!(csv.starts_with("window_start,window_end,item,views,clicks,ctr\n"), "{csv}");
}

#[test]
fn run_ctr_score_scores_every_event_with_the_given_model() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clicks.jsonl");
    assert!(weir().args(["gen", "--events", "3000", "--seed", "3", "--out"]).arg(&input).status().unwrap().success());
    let output = dir.path().join("scores.jsonl");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/ctr/ctr_mlp.onnx");
    let out = weir()
        .args(["run", "ctr-score", "--quiet", "--max-batch", "100", "--model", model, "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3000 events in, 3000 out"), "{stderr}");
    let text = std::fs::read_to_string(&output).unwrap();
    let rows: Vec<serde_json::Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(rows.len(), 3000);
    let mut users_seen = std::collections::HashSet::new();
    for row in &rows {
        let p = row["p_click"].as_f64().unwrap_or_else(|| panic!("no score in {row}"));
        assert!(p > 0.0 && p < 1.0, "{row}");
        assert_eq!(row["model_version"], 1, "{row}");
        users_seen.insert(row["user"].as_str().unwrap().to_owned());
    }
    assert!(users_seen.len() > 100, "the rows carry the events' users");
}

#[test]
fn run_ctr_score_without_a_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clicks.jsonl");
    assert!(weir().args(["gen", "--events", "10", "--out"]).arg(&input).status().unwrap().success());
    let out = weir().args(["run", "ctr-score", "--quiet", "--input"]).arg(&input).arg("--output").arg(dir.path().join("o.jsonl")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ctr-score needs --model"), "{}", String::from_utf8_lossy(&out.stderr));
    let missing = weir()
        .args(["run", "ctr-score", "--quiet", "--model", "/nonexistent/model.onnx", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("o.jsonl"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model.onnx"), "{}", String::from_utf8_lossy(&missing.stderr));
}
