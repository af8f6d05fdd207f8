//! The `multidrm` binary itself: key administration on a local database,
//! settings, the first `serve` on an empty database, and the client helpers
//! (`sign`, `token`) used against that live server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use support::serve::serve;

mod support {
    pub mod serve;
}

fn multidrm(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("MULTIDRM_MASTER_KEY")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn keys_are_created_listed_and_disabled_without_showing_secrets_again() {
    let dir = tempfile::tempdir().unwrap();

    let created: Value = serde_json::from_str(&stdout(&multidrm(
        dir.path(),
        &["keys", "create", "--account", "acme", "--json"],
    )))
    .unwrap();
    let key = created["accessKey"].as_str().unwrap().to_owned();
    let secret = created["secretKey"].as_str().unwrap().to_owned();
    let listed = stdout(&multidrm(dir.path(), &["keys", "list"]));
    stdout(&multidrm(dir.path(), &["keys", "disable", &key]));
    let after = stdout(&multidrm(dir.path(), &["keys", "list"]));
    let unknown = multidrm(dir.path(), &["keys", "disable", "NOSUCHKEY"]);

    assert_eq!(created["account"], "acme");
    assert_eq!((key.len(), secret.len()), (20, 40));
    assert_eq!(listed.trim(), format!("{key}\tacme\tenabled"));
    assert!(!listed.contains(&secret));
    assert_eq!(after.trim(), format!("{key}\tacme\tdisabled"));
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no access key NOSUCHKEY"));
}

#[test]
fn config_masks_secrets_and_names_the_variable_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let master = "ab".repeat(32);

    let shown = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "config"])
        .env("MULTIDRM_MASTER_KEY", &master)
        .env(
            "MULTIDRM_DATABASE_URL",
            "postgres://drm:hunter2@db/multidrm",
        )
        .output()
        .unwrap();
    let broken = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .arg("config")
        .env("MULTIDRM_HISTORY_TIME_ZONE", "Mars/Base")
        .output()
        .unwrap();

    let text = stdout(&shown);
    assert!(text.contains("master_key = \"********\""), "{text}");
    assert!(
        text.contains("postgres://drm:********@db/multidrm"),
        "{text}"
    );
    assert!(!text.contains(&master) && !text.contains("hunter2"));
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("MULTIDRM_HISTORY_TIME_ZONE"));
}

#[tokio::test]
async fn first_serve_writes_private_initial_credentials_that_sign_real_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (server, address, mut logged, log) =
        serve(&["--data-dir", dir.path().to_str().unwrap()], &[]);

    let path = dir.path().join("initial-credentials");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    let credentials = std::fs::read_to_string(&path).unwrap();
    let value = |name: &str| {
        credentials
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let (key, secret) = (value("MULTIDRM_ACCESS_KEY="), value("MULTIDRM_SECRET_KEY="));
    let signed = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(["sign", "get", "/api/v1/sites?pageNo=1"])
        .env("MULTIDRM_ACCESS_KEY", &key)
        .env("MULTIDRM_SECRET_KEY", &secret)
        .output()
        .unwrap();
    let mut request = reqwest::Client::new().get(format!("http://{address}/api/v1/sites?pageNo=1"));
    for line in stdout(&signed).lines() {
        let (name, value) = line.split_once(": ").unwrap();
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    drop(server);
    logged.extend(log.try_iter());

    assert_eq!(mode, 0o600);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 0);
    let logged = logged.join("\n");
    assert!(
        logged.contains("initial-credentials"),
        "the log should name the file"
    );
    assert!(!logged.contains(&secret), "the log reveals the secret");
}

#[test]
fn token_prints_base64_of_the_documented_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args([
            "token",
            "--site",
            "drm-20261203000000-TEST1",
            "--content",
            "movie-1",
            "--user",
            "alice",
            "--drm-type",
            "CLEARKEY",
        ])
        .output()
        .unwrap();

    let decoded: Value =
        serde_json::from_slice(&STANDARD.decode(stdout(&output).trim()).unwrap()).unwrap();
    assert_eq!(decoded["siteId"], "drm-20261203000000-TEST1");
    assert_eq!(decoded["contentId"], "movie-1");
    assert_eq!(decoded["drmType"], "ClearKey");
    assert_eq!(decoded["responseFormat"], "ORIGINAL");
    assert_eq!(decoded["userId"], "alice");
}

#[test]
fn a_database_refuses_a_master_key_it_was_not_sealed_with() {
    let dir = tempfile::tempdir().unwrap();
    stdout(&multidrm(dir.path(), &["keys", "create"]));

    let wrong = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "keys", "list"])
        .env("MULTIDRM_MASTER_KEY", "cd".repeat(32))
        .output()
        .unwrap();
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    let missing = multidrm(dir.path(), &["keys", "list"]);

    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr)
        .contains("is not the one this database was sealed with"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("master key that is missing"));
    assert!(
        !dir.path().join("master.key").exists(),
        "a new master key replaced the lost one"
    );
}

#[test]
fn token_refuses_what_the_service_would_refuse() {
    let base = [
        "token",
        "--site",
        "drm-20261203000000-TEST1",
        "--content",
        "movie-1",
    ];
    for extra in [
        vec!["--user", ""],
        vec!["--user", "alice", "--response-format", "xml"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_multidrm"))
            .args(base)
            .args(&extra)
            .output()
            .unwrap();

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?} was accepted");
        assert!(stderr.contains("the token would be refused"), "{stderr}");
    }
}

#[test]
fn unknown_settings_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:9\"\n").unwrap();

    let from_file = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(["--config", file.to_str().unwrap(), "config"])
        .output()
        .unwrap();
    let from_env = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .arg("config")
        .env("MULTIDRM_LISEN", "x")
        .output()
        .unwrap();
    let client_vars = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .arg("config")
        .env("MULTIDRM_ACCESS_KEY", "K")
        .env("MULTIDRM_SECRET_KEY", "S")
        .output()
        .unwrap();

    assert!(!from_file.status.success());
    assert!(String::from_utf8_lossy(&from_file.stderr).contains("lisen"));
    assert!(!from_env.status.success());
    assert!(
        String::from_utf8_lossy(&from_env.stderr).contains("MULTIDRM_"),
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );
    assert!(
        client_vars.status.success(),
        "{}",
        String::from_utf8_lossy(&client_vars.stderr)
    );
}

#[test]
fn settings_layer_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("multidrm.toml");
    std::fs::write(&file, "history_time_zone = \"Asia/Seoul\"\nlisten = \"127.0.0.1:7000\"\ndata_dir = \"from-file\"\n").unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            "from-flag",
            "config",
        ])
        .env("MULTIDRM_LISTEN", "127.0.0.1:7001")
        .env("MULTIDRM_DATA_DIR", "from-env")
        .output()
        .unwrap();

    let text = stdout(&output);
    assert!(
        text.contains("history_time_zone = \"Asia/Seoul\""),
        "{text}"
    );
    assert!(text.contains("listen = \"127.0.0.1:7001\""), "{text}");
    assert!(text.contains("data_dir = \"from-flag\""), "{text}");
    assert!(
        text.contains("database_url = \"sqlite://from-flag/multidrm.db\""),
        "{text}"
    );
}

/// A database in `dir` holding `count` records of one site, several per
/// millisecond, fail records among them.
async fn seed_history(dir: &Path, site_id: &str, count: i64) {
    use multidrm::domain::device::Platform;
    use multidrm::domain::drm::DrmType;
    use multidrm::domain::history::{FailReason, NewLicenseRecord, RecordKey};

    let settings = multidrm::config::Settings {
        data_dir: dir.to_owned(),
        ..Default::default()
    };
    let (store, master_key) = multidrm::startup::open_storage(&settings).await.unwrap();
    let account = store.ensure_account("default", 1).await.unwrap();
    let site = multidrm::store::NewSite {
        site_id: site_id.to_owned(),
        account_id: account,
        name: "source".to_owned(),
        policy_id: 0,
        kms_token_sealed: master_key.seal(b"token"),
        fairplay_sealed: None,
        created_at: 1,
    };
    let site = store.insert_site(&site, "seeded").await.unwrap();
    let records: Vec<NewLicenseRecord> = (0..count)
        .map(|i| NewLicenseRecord {
            key: RecordKey::generate(),
            site_pk: site.pk,
            content_id: format!("content-{}", i % 7),
            drm_type: if i % 5 == 0 {
                None
            } else {
                Some(DrmType::ClearKey)
            },
            user_id: format!("{i:032x}"),
            device_id: format!("device, \"{i}\""),
            device_model: "Chrome-Linux-x86_64-156".to_owned(),
            platform: Platform::Linux,
            created_at: 1_796_266_800_000 + i / 4,
            failure: (i % 3 == 0).then(|| FailReason {
                code: "2810012".to_owned(),
                name: "LICENSE_DRM_INFO_NOT_FOUND".to_owned(),
            }),
        })
        .collect();
    store.insert_license_records(&records).await.unwrap();
}

#[tokio::test]
async fn history_import_then_export_round_trips_byte_for_byte() {
    let site = "drm-20261203000000-ROUND";
    let (source, target, from_csv) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    seed_history(source.path(), site, 2345).await;
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str| files.path().join(name).to_str().unwrap().to_owned();

    stdout(&multidrm(
        source.path(),
        &[
            "history",
            "export",
            "--site",
            site,
            "--output",
            &file("a.ndjson"),
        ],
    ));
    stdout(&multidrm(
        source.path(),
        &[
            "history",
            "export",
            "--site",
            site,
            "--output",
            &file("a.csv"),
        ],
    ));
    let imported = multidrm(target.path(), &["history", "import", &file("a.ndjson")]);
    stdout(&multidrm(
        from_csv.path(),
        &["history", "import", &file("a.csv")],
    ));
    stdout(&multidrm(
        target.path(),
        &[
            "history",
            "export",
            "--site",
            site,
            "--output",
            &file("b.ndjson"),
        ],
    ));
    stdout(&multidrm(
        from_csv.path(),
        &[
            "history",
            "export",
            "--site",
            site,
            "--output",
            &file("c.ndjson"),
        ],
    ));
    let filtered = stdout(&multidrm(
        target.path(),
        &[
            "history", "export", "--site", site, "--status", "fail", "--format", "ndjson",
        ],
    ));

    stdout(&multidrm(
        source.path(),
        &[
            "history",
            "export",
            "--site",
            site,
            "--output",
            &file("a.xlsx"),
        ],
    ));
    let original = std::fs::read(file("a.ndjson")).unwrap();
    assert_eq!(original.iter().filter(|byte| **byte == b'\n').count(), 2345);
    assert!(String::from_utf8_lossy(&imported.stderr).contains("imported 2345 records"));
    assert!(
        std::fs::read(file("b.ndjson")).unwrap() == original,
        "NDJSON import and export changed the records"
    );
    assert!(
        std::fs::read(file("c.ndjson")).unwrap() == original,
        "CSV import and export changed the records"
    );
    assert_eq!(filtered.lines().count(), 782);
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(file("a.xlsx")).unwrap();
    let sheet = calamine::Reader::worksheet_range_at(&mut workbook, 0)
        .unwrap()
        .unwrap();
    assert_eq!(
        sheet.rows().count(),
        2346,
        "header and every record in the workbook"
    );
    assert!(filtered
        .lines()
        .all(|line| line.contains(r#""licenseStatus":"fail""#)));
}

#[test]
fn a_faulty_history_import_names_the_record_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.ndjson");
    let good = r#"{"siteId":"drm-20261203000000-ROUND","contentId":"c-1","licenseStatus":"success","drmType":"ClearKey","userId":"u","deviceId":"d","deviceModel":"m","platformName":"PLATFORM_LINUX","licenseCreatedAt":1}"#;
    std::fs::write(
        &file,
        format!(
            "{good}\n{}\n",
            good.replace("PLATFORM_LINUX", "PLATFORM_AMIGA")
        ),
    )
    .unwrap();

    let output = multidrm(dir.path(), &["history", "import", file.to_str().unwrap()]);
    let after = multidrm(
        dir.path(),
        &["history", "export", "--site", "drm-20261203000000-ROUND"],
    );

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("record 2 of") && stderr.contains("PLATFORM_AMIGA"),
        "{stderr}"
    );
    // One transaction: neither the good first record nor its new site stayed.
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("no site drm-20261203000000-ROUND"));
}
