//! Two processes × two workers on localhost give the same output as one process.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::*;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn two_processes_of_two_workers_match_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clicks.jsonl");
    write_jsonl(&input, &generated(30_000, 17));
    let single = dir.path().join("single.jsonl");
    let status = weir()
        .args(["run", "window-stats", "--quiet", "--input", input.to_str().unwrap(), "--output", single.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());

    let hostfile = dir.path().join("hosts.txt");
    std::fs::write(&hostfile, format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port())).unwrap();
    let clustered = dir.path().join("cluster.jsonl");
    let spawn = |process: usize| {
        weir()
            .args(["run", "window-stats", "--quiet", "--workers", "2", "--processes", "2", "--process", &process.to_string()])
            .args(["--hostfile", hostfile.to_str().unwrap(), "--input", input.to_str().unwrap(), "--output", clustered.to_str().unwrap()])
            .spawn()
            .unwrap()
    };
    let mut second = spawn(1);
    let mut first = spawn(0);
    assert!(wait(&mut first, Duration::from_secs(120)).success());
    assert!(wait(&mut second, Duration::from_secs(120)).success());
    let expected = std::fs::read(&single).unwrap();
    assert!(!expected.is_empty());
    assert_eq!(std::fs::read(&clustered).unwrap(), expected);
}
