//! The remote client commands of the `multidrm` binary against a live
//! `multidrm serve` on port 0: every command, credentials from a profile
//! or the environment, and the error paths people meet first.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::serve::{serve, Server};

mod support {
    pub mod serve;
}

/// A live server, a key made by `keys create`, and a private credentials
/// file whose default profile points at the server.
struct Remote {
    _server: Server,
    endpoint: String,
    key: Value,
    config_home: tempfile::TempDir,
    _data_dir: tempfile::TempDir,
}

impl Remote {
    fn start() -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let data = data_dir.path().to_str().unwrap().to_owned();
        let created = Command::new(env!("CARGO_BIN_EXE_multidrm"))
            .args(["--data-dir", &data, "keys", "create", "--json"])
            .env_remove("MULTIDRM_MASTER_KEY")
            .output()
            .unwrap();
        let key: Value = serde_json::from_slice(&created.stdout).unwrap();
        let (server, address, _, _) = serve(&["--data-dir", &data], &[]);
        let remote = Self {
            _server: server,
            endpoint: format!("http://{address}"),
            key,
            config_home: tempfile::tempdir().unwrap(),
            _data_dir: data_dir,
        };
        remote.write_credentials(0o600, &remote.secret());
        remote
    }

    fn access_key(&self) -> String {
        self.key["accessKey"].as_str().unwrap().to_owned()
    }

    fn secret(&self) -> String {
        self.key["secretKey"].as_str().unwrap().to_owned()
    }

    fn credentials_path(&self) -> PathBuf {
        self.config_home.path().join("multidrm/credentials")
    }

    fn write_credentials(&self, mode: u32, secret: &str) {
        let path = self.credentials_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = format!(
            "[default]\naccess_key_id = \"{}\"\nsecret_key = \"{secret}\"\nendpoint = \"{}\"\n\n[other]\naccess_key_id = \"NOSUCHKEY\"\nsecret_key = \"wrong\"\nendpoint = \"{}\"\n",
            self.access_key(),
            self.endpoint,
            self.endpoint
        );
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The binary with only this test's configuration in its environment.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_multidrm"));
        command
            .env("XDG_CONFIG_HOME", self.config_home.path())
            .env_remove("NCLOUD_ACCESS_KEY_ID")
            .env_remove("NCLOUD_SECRET_KEY")
            .env_remove("MULTIDRM_ACCESS_KEY")
            .env_remove("MULTIDRM_SECRET_KEY")
            .env_remove("MULTIDRM_ENDPOINT")
            .env_remove("MULTIDRM_PROFILE");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs a command that must succeed and answers its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// A running site with one given content key.
    fn running_site(&self, name: &str) -> String {
        let site = self.json(&["sites", "create", "--name", name])["siteId"]
            .as_str()
            .unwrap()
            .to_owned();
        self.ok(&["sites", "on", &site]);
        self.ok(&[
            "content-keys",
            "add",
            "--site",
            &site,
            "--content",
            "movie-1",
            "--kid",
            KID,
            "--key",
            KEY,
        ]);
        site
    }
}

const KID: &str = "00112233445566778899aabbccddeeff";
const KEY: &str = "0f0e0d0c0b0a09080706050403020100";

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn sites_go_through_their_whole_life_from_the_command_line() {
    let remote = Remote::start();

    let created = remote.json(&["sites", "create", "--name", "cli_site"]);
    let site = created["siteId"].as_str().unwrap().to_owned();
    let shown = remote.json(&["sites", "show", &site]);
    let on = remote.json(&["sites", "on", &site]);
    let off = remote.json(&["sites", "off", &site]);
    let updated = remote.json(&["sites", "update", &site, "--name", "renamed_site"]);
    let listed = remote.json(&["sites", "list"]);
    let csv = remote.ok(&["sites", "list", "--csv"]);
    let deleted = remote.json(&["sites", "delete", &site]);

    assert_eq!(
        (created["siteName"].as_str(), created["siteStatus"].as_str()),
        (Some("cli_site"), Some("READY"))
    );
    assert!(shown["kmsToken"].as_str().is_some(), "{shown}");
    assert_eq!(on["siteStatus"], "RUNNING");
    assert_eq!(off["siteStatus"], "READY");
    assert_eq!(updated["siteName"], "renamed_site");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["siteId"], site.as_str());
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("siteId,siteName,siteStatus,siteEnabledYn,policyId,policyName,siteCreatedTime")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(&format!("{site},renamed_site,READY,false,0,Basic,")),
        "{csv}"
    );
    assert_eq!(deleted["siteStatus"], "DELETED");
}

#[test]
fn policies_are_created_from_a_file_updated_copied_and_deleted() {
    let remote = Remote::start();
    let file = remote.config_home.path().join("policy.json");
    std::fs::write(
        &file,
        r#"{"persistent": true, "rentalDuration": 3600, "drmPolicyConfig": {"widevine": {"securityLevel": 3}}}"#,
    )
    .unwrap();

    let created = remote.json(&[
        "policies",
        "create",
        "--name",
        "from_file",
        "--file",
        file.to_str().unwrap(),
    ]);
    let id = created["policyId"].to_string();
    let updated = remote.json(&["policies", "update", &id, "--name", "plain_again"]);
    let copied = remote.json(&["policies", "copy", &id]);
    let shown = remote.json(&["policies", "show", &copied["policyId"].to_string()]);
    let listed = remote.json(&["policies", "list"]);
    let deleted = remote.json(&["policies", "delete", &id]);

    assert_eq!(created["policyName"], "from_file");
    assert_eq!(created["rentalDuration"], 3600);
    assert_eq!(created["drmPolicyConfig"]["widevine"]["securityLevel"], 3);
    assert_eq!(updated["persistent"], false);
    assert_eq!(shown["policyName"], "Copy_plain_again");
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|policy| policy["policyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Basic", "Copy_plain_again", "plain_again"]);
    assert_eq!(deleted["policyStatus"], "DELETED");
}

#[test]
fn a_content_key_added_from_the_command_line_comes_back_in_a_clearkey_license() {
    let remote = Remote::start();
    let site = remote.running_site("keys_site");

    let generated = remote.json(&[
        "content-keys",
        "add",
        "--site",
        &site,
        "--content",
        "movie-2",
    ]);
    let listed = remote.json(&[
        "content-keys",
        "list",
        "--site",
        &site,
        "--content",
        "movie-1",
    ]);
    let license = remote.json(&[
        "license",
        "clearkey",
        "--site",
        &site,
        "--content",
        "movie-1",
        "--user",
        "alice",
    ]);

    assert_eq!(generated["key"].as_str().unwrap().len(), 32);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["kid"], KID);
    assert!(listed[0].get("key").is_none(), "{listed}");
    assert_eq!(license, serde_json::json!([{ "kid": KID, "key": KEY }]));
}

#[test]
fn history_is_filtered_printed_as_csv_followed_and_exported() {
    let remote = Remote::start();
    let site = remote.running_site("history_site");
    let clearkey = [
        "license",
        "clearkey",
        "--site",
        &site,
        "--content",
        "movie-1",
    ];
    remote.ok(&[&clearkey[..], &["--user", "alice"]].concat());
    remote.ok(&[&clearkey[..], &["--user", "bob"]].concat());

    let all = remote.json(&["history", "list", "--site", &site]);
    let bob = remote.json(&[
        "history",
        "list",
        "--site",
        &site,
        "--search-condition",
        "userId",
        "--search-keyword",
        "bob",
        "--status",
        "success",
    ]);
    let csv = remote.ok(&["history", "list", "--site", &site, "--csv"]);
    let mut follow = remote
        .command()
        .args([
            "history",
            "list",
            "--site",
            &site,
            "--follow",
            "--interval",
            "1",
            "--json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut followed = BufReader::new(follow.stdout.take().unwrap()).lines();
    let before: Vec<String> = (0..2).map(|_| followed.next().unwrap().unwrap()).collect();
    remote.ok(&[&clearkey[..], &["--user", "carol"]].concat());
    let arrived: Value = serde_json::from_str(&followed.next().unwrap().unwrap()).unwrap();
    follow.kill().unwrap();
    follow.wait().unwrap();
    let export = remote.config_home.path().join("history.csv");
    let exported = remote.run(&[
        "history",
        "export",
        "--remote",
        "--site",
        &site,
        "--output",
        export.to_str().unwrap(),
    ]);

    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(bob.as_array().unwrap().len(), 1);
    assert_eq!(bob[0]["userId"], md5_hex("bob"));
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("licenseCreatedTime,licenseStatus,contentId,drmType,userId,"));
    assert!(before
        .iter()
        .all(|line| line.contains("\"licenseStatus\":\"success\"")));
    assert_eq!(arrived["userId"], md5_hex("carol"));
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert_eq!(stderr(&exported).trim(), "exported 3 records");
    assert_eq!(std::fs::read_to_string(&export).unwrap().lines().count(), 4);
}

fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(text))
}

#[test]
fn server_refusals_are_one_line_with_code_and_name_and_a_failing_status() {
    let remote = Remote::start();

    let unknown = remote.run(&["sites", "show", "drm-20260101000000-NOPE1"]);
    let forged = remote.run(&["--profile", "other", "sites", "list"]);
    let with_env = remote
        .command()
        .args(["--endpoint", &remote.endpoint, "sites", "list", "--json"])
        .env("NCLOUD_ACCESS_KEY_ID", remote.access_key())
        .env("NCLOUD_SECRET_KEY", "not-the-secret")
        .output()
        .unwrap();

    assert!(!unknown.status.success());
    assert_eq!(
        stderr(&unknown).trim(),
        "Error: 281003 SITE_NOT_FOUND: site drm-20260101000000-NOPE1 not found (HTTP 404)"
    );
    assert!(!forged.status.success());
    let forged = stderr(&forged);
    assert_eq!(forged.lines().count(), 1, "{forged}");
    assert!(
        forged.starts_with("Error: 200 Authentication Failed: "),
        "{forged}"
    );
    assert!(!with_env.status.success());
    assert!(stderr(&with_env).starts_with("Error: 200 Authentication Failed: "));
    assert!(!stderr(&with_env).contains("not-the-secret"));
}

#[tokio::test]
async fn environment_keys_sign_requests_and_sign_prints_headers_curl_can_use() {
    let remote = Remote::start();
    std::fs::remove_file(remote.credentials_path()).unwrap();

    let listed = remote
        .command()
        .args(["--endpoint", &remote.endpoint, "sites", "list", "--json"])
        .env("NCLOUD_ACCESS_KEY_ID", remote.access_key())
        .env("NCLOUD_SECRET_KEY", remote.secret())
        .output()
        .unwrap();
    let signed = remote
        .command()
        .args(["sign", "GET", "/api/v1/policy?pageNo=1"])
        .env("NCLOUD_ACCESS_KEY_ID", remote.access_key())
        .env("NCLOUD_SECRET_KEY", remote.secret())
        .output()
        .unwrap();
    let missing = remote.run(&["sites", "list"]);

    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
    let headers = String::from_utf8(signed.stdout).unwrap();
    assert!(!headers.contains(&remote.secret()));
    let mut request =
        reqwest::Client::new().get(format!("{}/api/v1/policy?pageNo=1", remote.endpoint));
    for line in headers.lines() {
        let (name, value) = line.split_once(": ").unwrap();
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("NCLOUD_ACCESS_KEY_ID"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_credentials_file_others_can_read_is_refused_without_showing_the_secret() {
    let remote = Remote::start();
    remote.write_credentials(0o644, &remote.secret());

    let refused = remote.run(&["sites", "list"]);

    let message = stderr(&refused);
    assert!(!refused.status.success());
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("is readable by group or others (mode 0644); run chmod 600"),
        "{message}"
    );
    assert!(!message.contains(&remote.secret()));
}

#[test]
fn a_broken_credentials_file_names_the_line_but_not_the_secret() {
    let remote = Remote::start();
    let path = remote.credentials_path();
    std::fs::write(&path, "[default]\nsecret_key = \"TOPSECRET\nendpoint = 1\n").unwrap();

    let refused = remote.run(&["sites", "list"]);

    let message = stderr(&refused);
    assert!(!refused.status.success());
    assert!(message.contains("is not valid at line"), "{message}");
    assert!(!message.contains("TOPSECRET"), "{message}");
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(env!("CARGO_BIN_EXE_multidrm"))
            .args(["completions", shell])
            .output()
            .unwrap();

        let script = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success());
        assert!(script.contains("content-keys"), "{shell}: {script}");
        assert!(script.contains("multidrm"), "{shell}");
    }
}

#[test]
fn history_export_reads_the_local_database_when_no_server_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();

    let created = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(["--data-dir", data, "keys", "create", "--json"])
        .env_remove("MULTIDRM_MASTER_KEY")
        .output()
        .unwrap();
    let exported = Command::new(env!("CARGO_BIN_EXE_multidrm"))
        .args(["--data-dir", data, "history", "export", "--site", "drm-x"])
        .env_remove("MULTIDRM_MASTER_KEY")
        .env_remove("MULTIDRM_ENDPOINT")
        .env_remove("MULTIDRM_PROFILE")
        .output()
        .unwrap();

    assert!(created.status.success());
    assert!(!exported.status.success());
    assert_eq!(stderr(&exported).trim(), "Error: no site drm-x");
    assert!(Path::new(data).join("multidrm.db").exists());
}

#[test]
fn a_site_update_without_a_name_keeps_the_name_and_changes_the_policy() {
    let remote = Remote::start();
    let site = remote.json(&["sites", "create", "--name", "keep_me"])["siteId"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = remote.json(&["policies", "copy", "0"])["policyId"].clone();

    let updated = remote.json(&["sites", "update", &site, "--policy", &policy.to_string()]);

    assert_eq!(updated["siteName"], "keep_me");
    assert_eq!(updated["policyId"], policy);
}

#[test]
fn history_summary_and_the_drm_type_and_platform_filters_reach_the_server() {
    let remote = Remote::start();
    let site = remote.running_site("summary_site");
    for user in ["alice", "bob", "carol"] {
        remote.ok(&[
            "license",
            "clearkey",
            "--site",
            &site,
            "--content",
            "movie-1",
            "--user",
            user,
        ]);
    }

    let summary = remote.json(&["history", "summary", "--site", &site]);
    let clearkey = remote.json(&["history", "list", "--site", &site, "--drm-type", "clearkey"]);
    let widevine = remote.json(&["history", "list", "--site", &site, "--drm-type", "widevine"]);
    let bad_platform = remote.run(&["history", "list", "--site", &site, "--platform", "linux"]);

    assert_eq!(summary["total"], 3);
    assert_eq!(summary["byDrmType"][0]["count"], 3);
    assert_eq!(clearkey.as_array().unwrap().len(), 3);
    assert_eq!(widevine.as_array().unwrap().len(), 0);
    assert!(!bad_platform.status.success());
    assert!(
        stderr(&bad_platform).contains("platform"),
        "{}",
        stderr(&bad_platform)
    );
}

#[test]
fn client_variables_do_not_stop_the_local_commands() {
    let remote = Remote::start();
    let dir = tempfile::tempdir().unwrap();

    let listed = remote
        .command()
        .args(["--data-dir", dir.path().to_str().unwrap(), "keys", "list"])
        .env("MULTIDRM_ENDPOINT", &remote.endpoint)
        .env("MULTIDRM_PROFILE", "default")
        .env_remove("MULTIDRM_MASTER_KEY")
        .output()
        .unwrap();

    assert!(listed.status.success(), "{}", stderr(&listed));
}

#[test]
fn a_key_pair_from_the_environment_takes_the_default_profile_endpoint() {
    let remote = Remote::start();

    let listed = remote
        .command()
        .args(["sites", "list", "--json"])
        .env("NCLOUD_ACCESS_KEY_ID", remote.access_key())
        .env("NCLOUD_SECRET_KEY", remote.secret())
        .output()
        .unwrap();

    assert!(listed.status.success(), "{}", stderr(&listed));
}

#[test]
fn output_cut_short_by_a_closed_pipe_ends_quietly() {
    let remote = Remote::start();
    remote.json(&["sites", "create", "--name", "piped_site"]);

    for format in ["--json", "--csv"] {
        let mut child = remote
            .command()
            .args(["sites", "list", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes before the answer arrives from the server.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();

        assert!(output.status.success(), "{format}: {}", stderr(&output));
        assert_eq!(stderr(&output), "", "{format}");
    }
}
