//! Tokenization and the MiniLM sentence encoder against the Python reference (committed
//! fixtures), and the embedding table maintained as a collection.
//!
//! Needs `scripts/setup/onnxruntime.sh` and `scripts/setup/models.sh` (scripts/test.sh runs both).

use serde::Deserialize;
use weir::operators::embedding_table::{EmbeddingTableExt, TableStats};
use weir::operators::encoder::{EncodeExt, Embedding, EncoderModel, MINILM_DIM};
use weir::operators::runtime::SessionOptions;
use weir::operators::tokenize::{TextTokenizer, TokenizeExt};
use weir::prelude::*;
use weir_engine::timely::dataflow::operators::capture::Extract;
use weir_engine::timely::dataflow::operators::{Capture, Input, Probe};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn minilm_dir() -> String {
    let dir = format!("{ROOT}/models/minilm");
    assert!(std::path::Path::new(&dir).join("model.onnx").exists(), "models/minilm/model.onnx is missing: run scripts/setup/models.sh");
    dir
}

#[derive(Deserialize)]
struct TokenFixture {
    titles: Vec<String>,
    batches: Vec<TokenCase>,
}

#[derive(Deserialize)]
struct TokenCase {
    max_length: usize,
    input_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    token_type_ids: Vec<Vec<i64>>,
}

#[derive(Deserialize)]
struct EmbeddingFixture {
    titles: Vec<String>,
    max_length: usize,
    embeddings: Vec<Vec<f32>>,
}

fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/models/fixtures/{name}")).unwrap()).unwrap()
}

fn rows(flat: &[i64], seq_len: usize) -> Vec<Vec<i64>> {
    flat.chunks(seq_len).map(<[i64]>::to_vec).collect()
}

#[test]
fn token_ids_equal_python_tokenizers() {
    let fixture: TokenFixture = read("tokenizer.json");
    let titles: Vec<&str> = fixture.titles.iter().map(String::as_str).collect();
    for case in &fixture.batches {
        let tokenizer = TextTokenizer::from_file(format!("{}/tokenizer.json", minilm_dir()), case.max_length).unwrap();
        let batch = tokenizer.encode_batch(&titles).unwrap();
        assert_eq!(batch.rows, titles.len());
        assert_eq!(rows(&batch.input_ids, batch.seq_len), case.input_ids, "max_length {}", case.max_length);
        assert_eq!(rows(&batch.attention_mask, batch.seq_len), case.attention_mask);
        assert_eq!(rows(&batch.token_type_ids, batch.seq_len), case.token_type_ids);
    }
    assert!(TextTokenizer::from_file(format!("{ROOT}/models/fixtures/missing.json"), 16).is_err());
}

#[test]
fn the_tokenize_operator_pads_per_batch() {
    use weir_engine::timely::dataflow::operators::ToStream;
    let fixture: TokenFixture = read("tokenizer.json");
    let tokenizer = TextTokenizer::from_file(format!("{}/tokenizer.json", minilm_dir()), 256).unwrap();
    let records: Vec<Timed<String>> = fixture.titles.iter().map(|t| Timed::new(1, t.clone())).collect();
    let captured = weir_engine::timely::example(move |scope| records.to_stream(scope).tokenize(&tokenizer, |t: &String| t.as_str(), 3).capture());
    let batches: Vec<_> = captured
        .try_iter()
        .flat_map(|event| match event {
            weir_engine::timely::dataflow::operators::capture::Event::Messages(_, data) => data,
            _ => Vec::new(),
        })
        .collect();
    let expected = &fixture.batches[0];
    let index_of = |text: &str| fixture.titles.iter().position(|t| t == text).unwrap();
    let mut seen = 0;
    for batch in &batches {
        assert!(batch.records.len() <= 3);
        // Padded to the longest text of this batch, not of all texts.
        let longest = batch.records.iter().map(|r| expected.attention_mask[index_of(&r.data)].iter().sum::<i64>()).max().unwrap();
        assert_eq!(batch.tokens.seq_len as i64, longest);
        for (row, record) in batch.records.iter().enumerate() {
            let ids = batch.tokens.row(&batch.tokens.input_ids, row);
            assert_eq!(ids, &expected.input_ids[index_of(&record.data)][..batch.tokens.seq_len]);
            seen += 1;
        }
    }
    assert_eq!(seen, fixture.titles.len());
    assert_eq!(batches.len(), 3, "8 titles in batches of at most 3");
}

#[test]
fn embeddings_match_the_python_reference() {
    let fixture: EmbeddingFixture = read("minilm_embeddings.json");
    let model = EncoderModel::minilm(minilm_dir(), fixture.max_length, SessionOptions::default()).unwrap();
    let mut encoder = model.encoder().unwrap();
    let titles: Vec<&str> = fixture.titles.iter().map(String::as_str).collect();
    // As one padded batch, and one title at a time: both must match.
    let batched = encoder.encode(&titles).unwrap();
    for (i, title) in titles.iter().enumerate() {
        let alone = encoder.encode(&[title]).unwrap().remove(0);
        let reference = Embedding(fixture.embeddings[i].clone());
        assert_eq!(batched[i].0.len(), MINILM_DIM);
        let norm: f64 = batched[i].0.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length: {norm}");
        let cosine = batched[i].cosine(&reference);
        assert!(cosine >= 0.9999, "title {title:?}: cosine {cosine} with the Python reference (batched)");
        let cosine = alone.cosine(&reference);
        assert!(cosine >= 0.9999, "title {title:?}: cosine {cosine} with the Python reference (alone)");
    }
    // Different titles are not all the same vector.
    assert!(batched[0].cosine(&batched[2]) < 0.9);
}

#[test]
fn a_model_without_the_encoder_signature_is_rejected() {
    let error = EncoderModel::load(format!("{ROOT}/models/ctr/ctr_mlp.onnx"), format!("{}/tokenizer.json", minilm_dir()), 128, SessionOptions::default()).err().unwrap();
    assert!(error.to_string().contains("input_ids"), "{error}");
    let error = EncoderModel::load(format!("{ROOT}/models/minilm/absent.onnx"), format!("{}/tokenizer.json", minilm_dir()), 128, SessionOptions::default()).err().unwrap();
    assert!(error.to_string().contains("scripts/setup/models.sh"), "{error}");
}

#[test]
fn the_encode_operator_embeds_every_record() {
    let fixture: EmbeddingFixture = read("minilm_embeddings.json");
    let model = EncoderModel::minilm(minilm_dir(), fixture.max_length, SessionOptions::default()).unwrap();
    let records: Vec<Timed<String>> = fixture.titles.iter().enumerate().map(|(i, t)| Timed::new(1 + i as i64 * 400, t.clone())).collect();
    let captured = MemorySink::new();
    Pipeline::new(Execution::Threads(2))
        .run(Source::Memory(MemorySource::new(records)), Sink::Memory(captured.clone()), move |events, _| {
            use weir_engine::timely::dataflow::operators::vec::Map;
            events.encode_text(&model, |t: &String| t.as_str(), 3).unwrap().map(|r| r.unwrap())
        })
        .unwrap();
    let out = captured.records();
    assert_eq!(out.len(), fixture.titles.len());
    for embedded in out {
        let i = fixture.titles.iter().position(|t| *t == embedded.record.data).unwrap();
        assert!(embedded.embedding.cosine(&Embedding(fixture.embeddings[i].clone())) >= 0.9999);
    }
}

#[test]
fn the_embedding_table_encodes_only_new_or_changed_titles_and_joins_see_updates() {
    let model = EncoderModel::minilm(minilm_dir(), 128, SessionOptions::default()).unwrap();
    let mut reference = model.encoder().unwrap();
    let stats = TableStats::default();
    let worker_stats = stats.clone();
    let captured = weir_engine::timely::execute_directly(move |worker| {
        let (mut titles, mut events, probe, captured) = worker.dataflow::<Tick, _, _>(|scope| {
            let (titles_in, titles) = scope.new_input::<Vec<Timed<(String, String)>>>();
            let (events_in, events) = scope.new_input::<Vec<Timed<String>>>();
            let table = titles.embedding_table(&model, 16, &worker_stats).unwrap();
            let joined = events.join_table(table, |item: &String| item.clone()).changes();
            let (probe, joined) = joined.probe();
            (titles_in, events_in, probe, joined.capture())
        });
        let title = |t: i64, item: &str, text: &str| Timed::new(t, (item.to_string(), text.to_string()));
        titles.advance_to(1);
        events.advance_to(1);
        titles.send(title(1, "i1", "Trail Running Shoe"));
        titles.send(title(1, "i2", "Espresso Machine"));
        events.send(Timed::new(1, "i1".to_string()));
        events.send(Timed::new(1, "i2".to_string()));
        titles.advance_to(2);
        events.advance_to(2);
        // Same title for i1 (no work), a new title for i2, a new item i3.
        titles.send(title(2, "i1", "Trail Running Shoe"));
        titles.send(title(2, "i2", "Cast Iron Skillet"));
        titles.send(title(2, "i3", "Wool Socks"));
        titles.advance_to(3);
        events.advance_to(3);
        while probe.less_than(&3) {
            worker.step();
        }
        titles.close();
        events.close();
        while worker.step() {}
        captured
    });
    assert_eq!(stats.encoded(), 4, "i1 and i2 at tick 1, then only the changed i2 and the new i3");
    assert_eq!(stats.failed(), 0);
    let changes: Vec<Change<(Timed<String>, Embedding)>> = captured.extract().into_iter().flat_map(|(_, data)| data).collect();
    let mut expect = |text: &str| reference.encode(&[text]).unwrap().remove(0);
    let mut summary: Vec<(u64, isize, String, bool)> = Vec::new();
    for change in &changes {
        let (event, embedding) = &change.data;
        let text = match (event.data.as_str(), change.time) {
            ("i1", _) => "Trail Running Shoe",
            ("i2", 1) => "Espresso Machine",
            ("i2", _) if change.diff < 0 => "Espresso Machine",
            ("i2", _) => "Cast Iron Skillet",
            other => panic!("unexpected join row {other:?}"),
        };
        summary.push((change.time, change.diff, event.data.clone(), embedding.cosine(&expect(text)) > 0.9999));
    }
    summary.sort();
    assert_eq!(
        summary,
        vec![
            (1, 1, "i1".into(), true),
            (1, 1, "i2".into(), true),
            (2, -1, "i2".into(), true), // the old title's embedding is retracted from the join...
            (2, 1, "i2".into(), true),  // ...and the new one joined, for the event seen at tick 1
        ]
    );
}
