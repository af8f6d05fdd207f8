//! The console story in Debian's headless Chromium, one browser session:
//! sign in, filter and page the history, export it and compare the file
//! with the API's, see a chart change after new licenses, toggle a site,
//! fail to toggle it from a forged page on another origin, manage
//! policies, sign out. Each page leaves screenshots at 1280 and 390 px in
//! `target/console-screenshots/`.

#[path = "support/browser.rs"]
mod chrome;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use chrome::ChromeDriver;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use helpers::{token, TestApp, KEY1, SECRET1, SITE1, T0};
use reqwest::header::COOKIE;
use reqwest::Method;

const KNOWN_KID: &str = "ESIzRFVmd4iZAKq7zN3u_w";
const UNKNOWN_KID: &str = "EHfv7MCyTQKs4zweUuL7Sw";
const LICENSES: i64 = 25;

/// Issues a license at `at`; every fourth one asks for an unknown key and fails.
async fn issue(app: &TestApp, number: i64, at: i64) {
    app.set_time(at);
    let kid = if number % 4 == 0 {
        UNKNOWN_KID
    } else {
        KNOWN_KID
    };
    app.issue_license(
        &token(SITE1, "content-0001", "ClearKey", &format!("user-{number}")),
        format!(r#"{{"kids":["{kid}"],"type":"temporary"}}"#),
    )
    .await;
    app.set_time(T0);
}

fn screenshot_folder() -> PathBuf {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder holds tmp/")
        .join("console-screenshots");
    std::fs::create_dir_all(&target).expect("the screenshot folder is made");
    target
}

/// Screenshots of the current page at both widths, then back to 1280,
/// after checking that the page fits each width.
async fn shoot(browser: &Client, page: &str) {
    for width in [390, 1280] {
        browser.set_window_size(width, 1000).await.unwrap();
        // Wide tables scroll inside their frame; the page never scrolls sideways.
        let widths = browser
            .execute(
                "const root = document.documentElement; return [root.scrollWidth, root.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            widths[0].as_i64() <= widths[1].as_i64(),
            "{page} at {width} px is wider than the window: {widths}"
        );
        let png = browser.screenshot().await.expect("a screenshot");
        std::fs::write(screenshot_folder().join(format!("{page}-{width}.png")), png)
            .expect("the screenshot is saved");
    }
}

/// How long a page may take to show what a check waits for.
const PATIENCE: Duration = Duration::from_secs(10);

/// The text of `css` once `ready` accepts it; pages load after a click
/// without telling WebDriver, so checks poll until they hold.
async fn text_when(browser: &Client, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ready(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{css} still reads {text:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn expect_text(browser: &Client, css: &str, expected: &str) {
    text_when(browser, css, |text| text == expected).await;
}

async fn expect_containing(browser: &Client, css: &str, needle: &str) -> String {
    text_when(browser, css, |text| text.contains(needle)).await
}

async fn click(browser: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let clicked = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.click().await.is_ok(),
            Err(_) => false,
        };
        if clicked {
            return;
        }
        assert!(Instant::now() < deadline, "{css} cannot be clicked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn expect_rows(browser: &Client, css: &str, expected: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = browser
            .find_all(Locator::Css(css))
            .await
            .map(|rows| rows.len());
        if rows.as_ref().ok() == Some(&expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css}: {rows:?} rows, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn expect_path(browser: &Client, expected: &str) {
    let deadline = Instant::now() + PATIENCE;
    while path(browser).await != expected {
        assert!(
            Instant::now() < deadline,
            "still at {}",
            path(browser).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn path(browser: &Client) -> String {
    browser.current_url().await.unwrap().path().to_owned()
}

async fn site_enabled(app: &TestApp) -> bool {
    let (_, body) = app.get_json(&format!("/api/v1/sites/{SITE1}")).await;
    body["content"]["siteEnabledYn"].as_bool().unwrap()
}

/// A console link's file, fetched with the browser's session cookie.
async fn download(app: &TestApp, browser: &Client, href: &str) -> Vec<u8> {
    let session = browser
        .get_named_cookie("multidrm_console")
        .await
        .expect("the session cookie");
    let response = reqwest::Client::new()
        .get(app.url(href))
        .header(COOKIE, format!("multidrm_console={}", session.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{href}");
    response.bytes().await.unwrap().to_vec()
}

/// The API's export for the same query as a console export link.
async fn api_export(app: &TestApp, href: &str) -> Vec<u8> {
    let query = href.split_once('?').unwrap().1;
    let response = app
        .signed(
            Method::GET,
            &format!("/api/v1/license/statistics/export?{query}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// A page on another origin that POSTs to the console's toggle as soon as
/// it loads, as a forged request would.
async fn serve_forged_page(target: String) -> (String, tokio::task::JoinHandle<()>) {
    let page = format!(
        r#"<!doctype html><html><body>
<form id="forged" method="post" action="{target}"><input type="hidden" name="csrf" value="guess"></form>
<script>document.getElementById('forged').submit();</script>
</body></html>"#
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Router::new().route("/", get(move || async move { Html(page) }));
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the page server serves");
    });
    (format!("http://127.0.0.1:{port}/"), server)
}

#[tokio::test]
async fn the_console_story_runs_in_chromium() {
    let app = TestApp::spawn().await;
    for number in 0..LICENSES {
        issue(&app, number, T0 - (LICENSES - number) * 60_000).await;
    }
    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.open_browser(profile.path()).await;
    browser.set_window_size(1280, 1000).await.unwrap();

    sign_in(&app, &browser).await;
    history(&app, &browser).await;
    statistics(&app, &browser).await;
    sites(&app, &browser).await;
    policies(&browser).await;
    sign_out(&app, &browser).await;

    browser.close().await.unwrap();
}

async fn sign_in(app: &TestApp, browser: &Client) {
    browser.goto(&app.url("/console")).await.unwrap();
    expect_path(browser, "/console/sign-in").await;
    shoot(browser, "sign-in").await;

    let key = browser.find(Locator::Css("#access-key")).await.unwrap();
    key.send_keys(KEY1).await.unwrap();
    let secret = browser.find(Locator::Css("#secret-key")).await.unwrap();
    // Enter in the last field submits, as a keyboard user would.
    let enter = char::from(Key::Enter);
    secret
        .send_keys(&format!("{SECRET1}{enter}"))
        .await
        .unwrap();

    expect_path(browser, "/console/history").await;
    let stored = browser.get_all_cookies().await.unwrap();
    assert!(stored
        .iter()
        .all(|cookie| !cookie.value().contains(SECRET1)));
}

async fn history(app: &TestApp, browser: &Client) {
    expect_text(browser, "#total", "25 records").await;
    expect_rows(browser, "#history tbody tr", 20).await;
    shoot(browser, "history").await;

    click(browser, "#f-status option[value=fail]").await;
    click(browser, "form.filters button[type=submit]").await;
    let (_, api) = app
        .history(&format!("siteId={SITE1}&status=fail&pageSize=100"))
        .await;
    assert_eq!(api["total"], 7);
    expect_text(browser, "#total", "7 records").await;
    expect_rows(browser, "#history tbody tr", 7).await;

    let csv_link = browser
        .find(Locator::Css("#export-csv"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("an export link");
    assert!(csv_link.contains("status=fail"), "{csv_link}");
    let csv = download(app, browser, &csv_link).await;
    assert_eq!(csv, api_export(app, &csv_link).await);
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + 7, "{csv}");
    for record in api["content"].as_array().unwrap() {
        let device = record["deviceId"].as_str().unwrap();
        let user = record["userId"].as_str().unwrap();
        assert!(
            csv.lines()
                .any(|line| line.contains(device) && line.contains(user)),
            "{record} is not in {csv}"
        );
    }
    let xlsx_link = csv_link.replace("format=csv", "format=xlsx");
    let xlsx = download(app, browser, &xlsx_link).await;
    let workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    let mut workbook = workbook;
    let sheet = calamine::Reader::worksheet_range_at(&mut workbook, 0)
        .unwrap()
        .unwrap();
    assert_eq!(sheet.rows().count(), 1 + 7);

    click(browser, "#f-status option[value='']").await;
    click(browser, "form.filters button[type=submit]").await;
    click(browser, "#next").await;
    expect_rows(browser, "#history tbody tr", 5).await;
    expect_text(browser, "#page", "Page 2 of 2").await;
    click(browser, "#refresh").await;
    expect_text(browser, "#refresh", "Auto-refresh: on").await;
    let refresh = browser
        .find(Locator::Css("meta[http-equiv=refresh]"))
        .await
        .unwrap();
    assert_eq!(
        refresh.attr("content").await.unwrap().as_deref(),
        Some("10")
    );
}

async fn statistics(app: &TestApp, browser: &Client) {
    click(browser, "nav a[href='/console/statistics']").await;
    expect_path(browser, "/console/statistics").await;
    expect_text(browser, "#total", "25 records").await;
    let before = browser
        .find(Locator::Css("#chart-over-time svg"))
        .await
        .unwrap()
        .html(false)
        .await
        .unwrap();
    shoot(browser, "statistics").await;

    for number in LICENSES..LICENSES + 3 {
        issue(app, number, T0 - 30_000).await;
    }
    browser.refresh().await.unwrap();

    expect_text(browser, "#total", "28 records").await;
    let after = browser
        .find(Locator::Css("#chart-over-time svg"))
        .await
        .unwrap()
        .html(false)
        .await
        .unwrap();
    assert_ne!(before, after);
    expect_text(
        browser,
        "#chart-drm-types table",
        "By DRM type\nClearKey 28",
    )
    .await;
}

async fn sites(app: &TestApp, browser: &Client) {
    click(browser, "nav a[href='/console/sites']").await;
    expect_path(browser, "/console/sites").await;
    shoot(browser, "sites").await;
    let toggle = format!("tr[data-site='{SITE1}'] button.toggle");

    expect_text(browser, &toggle, "ON").await;
    click(browser, &toggle).await;
    expect_text(browser, &toggle, "OFF").await;
    assert!(!site_enabled(app).await);
    click(browser, &toggle).await;
    expect_text(browser, &toggle, "ON").await;
    assert!(site_enabled(app).await);

    let target = app.url(&format!("/console/sites/{SITE1}/toggle"));
    let (forged, server) = serve_forged_page(target).await;
    browser.goto(&forged).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path(browser).await.starts_with("/console") {
        assert!(
            Instant::now() < deadline,
            "the forged form was not submitted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.abort();
    expect_containing(
        browser,
        "main",
        "a request from another site cannot change anything here",
    )
    .await;
    assert!(site_enabled(app).await, "a forged request changed the site");

    browser
        .goto(&app.url(&format!("/console/sites/{SITE1}")))
        .await
        .unwrap();
    let log = expect_containing(browser, "#site-log", "site turned off").await;
    assert!(log.contains("site turned on"), "{log}");
    shoot(browser, "site").await;
}

async fn policies(browser: &Client) {
    click(browser, "nav a[href='/console/policies']").await;
    expect_path(browser, "/console/policies").await;
    let name = browser.find(Locator::Css("#policy-name")).await.unwrap();
    name.send_keys("console_policy").await.unwrap();
    click(browser, "form.stack button[type=submit]").await;
    expect_containing(browser, "#policies", "console_policy").await;

    click(browser, "button[aria-label='Copy console_policy']").await;
    expect_containing(browser, "#policies", "Copy_console_policy").await;
    click(browser, "button[aria-label='Delete Copy_console_policy']").await;
    let copy_row = expect_containing(browser, "#policies tbody tr:nth-child(2)", "DELETED").await;
    assert!(copy_row.contains("Copy_console_policy"), "{copy_row}");
    shoot(browser, "policies").await;

    click(browser, "#policies a[href$='/policies/1']").await;
    expect_path(browser, "/console/policies/1").await;
    expect_containing(browser, "#policy-log", "policy created").await;
    shoot(browser, "policy").await;
}

async fn sign_out(app: &TestApp, browser: &Client) {
    click(browser, ".sign-out button").await;
    expect_path(browser, "/console/sign-in").await;

    browser.goto(&app.url("/console/history")).await.unwrap();
    expect_path(browser, "/console/sign-in").await;
}
