//! Runs the real `multidrm serve` binary as a child process on port 0.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A `multidrm serve` child that is killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `multidrm <args> serve` on port 0 with `env` set, and reads the
/// bound address from its log. Answers the server, its address, the log
/// lines so far and a receiver for the rest.
pub fn serve(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Server, String, Vec<String>, Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_multidrm"));
    command
        .args(args)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .env_remove("MULTIDRM_MASTER_KEY")
        .envs(env.iter().copied())
        .stderr(Stdio::piped());
    let mut server = Server(command.spawn().expect("the binary starts"));
    let stderr = server.0.stderr.take().expect("stderr is piped");
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = log.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let address = line
            .split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next());
        if let Some(address) = address.map(str::to_owned) {
            seen.push(line);
            return (server, address, seen, log);
        }
        seen.push(line);
    }
    panic!("serve did not start: {seen:?}");
}
