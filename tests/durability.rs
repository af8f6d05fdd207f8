//! A license the client saw acknowledged is in the history exactly once,
//! whatever happens to the service or its database:
//! - crash: a real `serve` under concurrent issuance is killed with
//!   SIGKILL at random moments and restarted, on SQLite and (when
//!   `TEST_POSTGRES_URL` is set) PostgreSQL;
//! - shutdown: SIGTERM under load lets requests in flight finish and
//!   commits their records before the process exits;
//! - outage: a throwaway PostgreSQL cluster is stopped under load and
//!   started again; every request is answered meanwhile (records go to the
//!   spool) and the spool is replayed. Runs when `TEST_PG_BIN` names the
//!   PostgreSQL binaries (initdb, pg_ctl) and `runuser` can run them as
//!   the `postgres` user (as root does in `.ci/run`).
//!
//! Sizes: `CRASH_KILLS` (default 20), `CRASH_WORKERS` (8), `CRASH_MAX_MS`
//! (longest run before a kill, 600), `OUTAGE_SECONDS` (5; the issue's full
//! size is 30) and `OUTAGE_WORKERS` (8).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use support::client::{create_key, fresh_postgres_database, Signer};
use support::licensing::{assert_exactly_once, stored_records};
use support::serve::serve;

mod support {
    pub mod client;
    pub mod licensing;
    pub mod serve;
}

const MASTER_KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Answers to license requests, by user id.
#[derive(Default)]
struct Answers {
    /// Users whose license came back 200.
    acknowledged: Vec<String>,
    /// Users whose request got another status, with it.
    refused: Vec<(String, u16)>,
    /// Users whose request got no answer, with the error.
    unanswered: Vec<(String, String)>,
    /// When each acknowledgement arrived.
    acknowledged_at: Vec<Instant>,
}

/// Workers that each ask for licenses one after the other, under user ids
/// `<label>-<worker>-<n>`.
struct Load {
    answers: Arc<Mutex<Answers>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `workers` workers against `node`; when `until_gone`, each
    /// ends at its first request that gets no answer (the server is gone).
    fn start(
        signer: &Signer,
        node: &str,
        site_id: &str,
        label: &str,
        workers: u64,
        until_gone: bool,
    ) -> Self {
        let answers = Arc::new(Mutex::new(Answers::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|worker| {
                let (signer, node, site_id) = (signer.clone(), node.to_owned(), site_id.to_owned());
                let (answers, stop, label) = (answers.clone(), stop.clone(), label.to_owned());
                tokio::spawn(async move {
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let user = format!("{label}-{worker}-{n}");
                        let answer = signer.issue(&node, &site_id, &user).await;
                        let mut answers = answers.lock().unwrap();
                        match answer {
                            Ok(200) => {
                                answers.acknowledged.push(user);
                                answers.acknowledged_at.push(Instant::now());
                            }
                            Ok(status) => answers.refused.push((user, status)),
                            Err(_) if until_gone => return,
                            Err(error) => answers.unanswered.push((user, error)),
                        }
                    }
                })
            })
            .collect();
        Self {
            answers,
            stop,
            tasks,
        }
    }

    /// Stops the workers, waits for them and answers what they got.
    async fn finish(self) -> Answers {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}

/// Kills `serve` at random moments under load `kills` times, then checks
/// the history of the database at `database_url`.
async fn survive_kills(common: &[&str], database_url: &str) {
    let env = [("MULTIDRM_MASTER_KEY", MASTER_KEY), ("RUST_LOG", "info")];
    let (kills, workers, max_ms) = (
        env_number("CRASH_KILLS", 20),
        env_number("CRASH_WORKERS", 8),
        env_number("CRASH_MAX_MS", 600),
    );
    let signer = Signer::new(create_key(common, &env));
    let site_id = {
        let (_server, node, _, _) = serve(common, &env);
        signer.clearkey_site(&node).await
    };

    let mut acknowledged = Vec::new();
    for round in 0..kills {
        let (mut server, node, _, _) = serve(common, &env);
        let label = format!("round{round}");
        let load = Load::start(&signer, &node, &site_id, &label, workers, true);
        let run_ms = rand::thread_rng().gen_range(50..=max_ms.max(50));
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        server.0.kill().expect("SIGKILL reaches the server");
        server.0.wait().unwrap();
        let mut answers = load.finish().await;

        assert_eq!(answers.refused, Vec::new(), "round {round}");
        acknowledged.append(&mut answers.acknowledged);
    }

    let (_server, node, _, _) = serve(common, &env);
    let total = signer.history_total(&node, &site_id).await;
    let stored = stored_records(database_url).await;
    eprintln!(
        "{kills} kills: {} licenses acknowledged, {total} records stored",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() as u64 >= kills,
        "too little load to test anything: {} licenses",
        acknowledged.len()
    );
    assert_exactly_once(&acknowledged, &stored, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licenses_acknowledged_before_a_kill_are_stored_exactly_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let common = ["--data-dir", data_dir];

    survive_kills(&common, &format!("sqlite://{data_dir}/multidrm.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licenses_acknowledged_before_a_kill_are_stored_exactly_once_on_postgres() {
    let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("skipped: TEST_POSTGRES_URL names no PostgreSQL server");
        return;
    };
    let url = fresh_postgres_database(&server, "multidrm_crash").await;
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--database-url",
        url.as_str(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];

    survive_kills(&common, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_licenses_in_flight_and_commits_their_records_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let common = ["--data-dir", data_dir];
    let env = [("MULTIDRM_MASTER_KEY", MASTER_KEY), ("RUST_LOG", "info")];
    let signer = Signer::new(create_key(&common, &env));
    let (mut server, node, _, _) = serve(&common, &env);
    let site_id = signer.clearkey_site(&node).await;

    let load = Load::start(&signer, &node, &site_id, "term", 8, true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    run(Command::new("kill").args(["-TERM", &server.0.id().to_string()]));
    let exit = server.0.wait().unwrap();
    let answers = load.finish().await;

    assert!(exit.success(), "serve exited with {exit}");
    assert_eq!(answers.refused, Vec::new());
    assert!(!answers.acknowledged.is_empty());
    let (_server, node, _, _) = serve(&common, &env);
    let total = signer.history_total(&node, &site_id).await;
    let stored = stored_records(&format!("sqlite://{data_dir}/multidrm.db")).await;
    assert_exactly_once(&answers.acknowledged, &stored, total);
}

/// A PostgreSQL cluster of its own, in a temporary folder, run as the
/// `postgres` user, that a test may stop without disturbing other tests.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn create(bin: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("chown").arg("postgres:").arg(dir.path()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            dir,
            bin: bin.to_owned(),
            port,
        };
        let data = cluster.data();
        run(cluster
            .as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        command
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_postgres("pg_ctl")
            .args(["start", "-w", "-o", &options, "-l"])
            .arg(self.dir.path().join("server.log"))
            .arg("-D")
            .arg(self.data()));
    }

    fn stop(&self, mode: &str) {
        run(self
            .as_postgres("pg_ctl")
            .args(["stop", "-w", "-m", mode, "-D"])
            .arg(self.data()));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .output();
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_goes_on_through_a_database_outage_and_loses_no_record() {
    let Some(rig) = OutageRig::create().await else {
        return;
    };
    let (outage, workers) = (
        Duration::from_secs(env_number("OUTAGE_SECONDS", 5)),
        env_number("OUTAGE_WORKERS", 8),
    );
    let (_server, node, _, _) = serve(&rig.common(), &RIG_ENV);

    let load = Load::start(&rig.signer, &node, &rig.site_id, "outage", workers, false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.cluster.stop("fast");
    let down_at = Instant::now();
    tokio::time::sleep(outage).await;
    let spooled = rig.spool_bytes();
    let up_at = Instant::now();
    rig.cluster.start();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answers = load.finish().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while rig.spool_bytes() > 0 {
        assert!(Instant::now() < deadline, "the spool was not replayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    eprintln!(
        "{}s outage: {} licenses acknowledged, {spooled} spool bytes at its end",
        outage.as_secs(),
        answers.acknowledged.len()
    );
    assert_eq!(answers.refused, Vec::new());
    assert_eq!(answers.unanswered, Vec::new());
    let during = answers
        .acknowledged_at
        .iter()
        .filter(|at| **at > down_at + Duration::from_secs(1) && **at < up_at)
        .count();
    assert!(
        during > 0,
        "no license was issued while the database was down"
    );
    assert!(spooled > 0, "nothing was spooled during the outage");
    let total = rig.signer.history_total(&node, &rig.site_id).await;
    assert_exactly_once(
        &answers.acknowledged,
        &stored_records(&rig.url).await,
        total,
    );
}

/// A server on its own throwaway cluster, with one ClearKey site.
struct OutageRig {
    cluster: Cluster,
    dir: tempfile::TempDir,
    url: String,
    signer: Signer,
    site_id: String,
}

const RIG_ENV: [(&str, &str); 2] = [("MULTIDRM_MASTER_KEY", MASTER_KEY), ("RUST_LOG", "info")];

impl OutageRig {
    /// Answers None when `TEST_PG_BIN` is not set.
    async fn create() -> Option<Self> {
        let Ok(bin) = std::env::var("TEST_PG_BIN") else {
            eprintln!("skipped: TEST_PG_BIN names no PostgreSQL binaries folder");
            return None;
        };
        let cluster = Cluster::create(Path::new(&bin));
        cluster.start();
        let (url, dir) = (cluster.url(), tempfile::tempdir().unwrap());
        let dir_text = dir.path().to_str().unwrap().to_owned();
        let common = ["--database-url", &url, "--data-dir", &dir_text];
        let signer = Signer::new(create_key(&common, &RIG_ENV));
        let (server, node, _, _) = serve(&common, &RIG_ENV);
        let site_id = signer.clearkey_site(&node).await;
        drop(server);
        Some(Self {
            cluster,
            dir,
            url,
            signer,
            site_id,
        })
    }

    fn common(&self) -> Vec<&str> {
        vec![
            "--database-url",
            self.url.as_str(),
            "--data-dir",
            self.dir.path().to_str().unwrap(),
        ]
    }

    fn spool_bytes(&self) -> u64 {
        let spool = self.dir.path().join(multidrm::store::SPOOL_FILE);
        std::fs::metadata(spool).map_or(0, |meta| meta.len())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_a_crash_during_an_outage_is_replayed_at_startup() {
    let Some(rig) = OutageRig::create().await else {
        return;
    };
    let (mut server, node, _, _) = serve(&rig.common(), &RIG_ENV);
    assert_eq!(
        rig.signer.issue(&node, &rig.site_id, "before").await,
        Ok(200)
    );

    rig.cluster.stop("fast");
    let mut acknowledged = vec!["before".to_owned()];
    for n in 0..20 {
        let user = format!("down-{n}");
        assert_eq!(rig.signer.issue(&node, &rig.site_id, &user).await, Ok(200));
        acknowledged.push(user);
    }
    assert!(rig.spool_bytes() > 0, "nothing was spooled");
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    rig.cluster.start();
    let (_server, node, _, _) = serve(&rig.common(), &RIG_ENV);
    let deadline = Instant::now() + Duration::from_secs(30);
    while rig.spool_bytes() > 0 {
        assert!(Instant::now() < deadline, "the spool was not replayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let total = rig.signer.history_total(&node, &rig.site_id).await;
    assert_exactly_once(&acknowledged, &stored_records(&rig.url).await, total);
    assert_eq!(total, 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_history_on_outage_refuse_a_license_request_gets_a_503_while_the_database_is_down() {
    let Some(rig) = OutageRig::create().await else {
        return;
    };
    let env = [
        RIG_ENV[0],
        RIG_ENV[1],
        ("MULTIDRM_HISTORY_ON_OUTAGE", "refuse"),
    ];
    let (_server, node, _, _) = serve(&rig.common(), &env);
    assert_eq!(
        rig.signer.issue(&node, &rig.site_id, "before").await,
        Ok(200)
    );

    rig.cluster.stop("fast");
    let response = rig.signer.issue_response(&node, &rig.site_id, "down").await;

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "280020");
    assert_eq!(body["error"]["name"], "DATABASE_UNAVAILABLE");
    assert_eq!(rig.spool_bytes(), 0);
    let sites = rig
        .signer
        .request(reqwest::Method::GET, &node, "/api/v1/sites")
        .send()
        .await
        .unwrap();
    assert_eq!(sites.status(), 503, "any request needing the database");
    rig.cluster.start();
    assert_eq!(
        rig.signer.issue(&node, &rig.site_id, "after").await,
        Ok(200)
    );
    let stored = stored_records(&rig.url).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
}
