//! The console over plain HTTP: sign-in failures, the session cookie's
//! attributes, and changes refused without the session's CSRF token or
//! from another origin. The browser story is in `tests/console.rs`.

use multidrm::domain::site::SiteStatus;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, Method, StatusCode};

use crate::helpers::*;

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(app: &TestApp, key: &str, secret: &str) -> reqwest::Response {
    client()
        .post(app.url("/console/sign-in"))
        .form(&[("accessKey", key), ("secretKey", secret)])
        .send()
        .await
        .unwrap()
}

/// The session cookie as a `Cookie` header value, and the CSRF token of
/// the sites page.
async fn signed_in(app: &TestApp) -> (String, String) {
    let response = sign_in(app, KEY1, SECRET1).await;
    let cookie = session_cookie(response.headers()).expect("a session cookie");
    let page = client()
        .get(app.url("/console/sites"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (cookie, csrf_token(&page))
}

/// The CSRF token the forms of `page` carry.
fn csrf_token(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned()
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    let set = headers.get(SET_COOKIE)?.to_str().ok()?;
    set.split(';').next().map(str::to_owned)
}

/// Console page `path`, fetched with the session `cookie`.
async fn open(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    client()
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

async fn site_enabled(app: &TestApp) -> bool {
    let (_, body) = app.get_json(&format!("/api/v1/sites/{SITE1}")).await;
    body["content"]["siteEnabledYn"].as_bool().unwrap()
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_cookie_and_pages_need_it() {
    let app = TestApp::spawn().await;

    let anonymous = client()
        .get(app.url("/console/history"))
        .send()
        .await
        .unwrap();
    let signed = sign_in(&app, KEY1, SECRET1).await;

    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()[LOCATION], "/console/sign-in");
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed.headers()[LOCATION], "/console/history");
    let set = signed.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("multidrm_console="), "{set}");
    for attribute in [
        "Path=/console",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attribute), "{attribute} missing from {set}");
    }
    assert!(!set.contains(SECRET1));
    let cookie = session_cookie(signed.headers()).unwrap();
    let page = client()
        .get(app.url("/console/history"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(!page.text().await.unwrap().contains(SECRET1));
}

#[tokio::test]
async fn a_wrong_secret_an_unknown_key_or_a_disabled_key_cannot_sign_in() {
    let app = TestApp::spawn().await;
    app.state.store.disable_access_key(KEY2).await.unwrap();

    let attempts = [
        (KEY1, SECRET2),
        (KEY1, ""),
        ("NOSUCHACCESSKEY00000", SECRET1),
        (KEY2, SECRET2),
    ];

    for (key, secret) in attempts {
        let response = sign_in(&app, key, secret).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{key}");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{key}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("Unknown or disabled access key, or wrong secret key."),
            "{page}"
        );
    }
}

#[tokio::test]
async fn a_sign_in_posted_from_another_origin_is_refused() {
    let app = TestApp::spawn().await;

    let response = client()
        .post(app.url("/console/sign-in"))
        .header("origin", "https://attacker.example")
        .form(&[("accessKey", KEY1), ("secretKey", SECRET1)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn a_change_without_the_csrf_token_or_from_another_origin_leaves_the_site_as_it_was() {
    let app = TestApp::spawn().await;
    let (cookie, token) = signed_in(&app).await;
    let toggle = app.url(&format!("/console/sites/{SITE1}/toggle"));
    let post = |form: Vec<(&'static str, String)>, origin: Option<String>| {
        let mut request = client().post(&toggle).header(COOKIE, &cookie).form(&form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };

    let without_token = post(vec![], None).await.unwrap();
    let wrong_token = post(vec![("csrf", "x".repeat(43))], None).await.unwrap();
    let foreign = post(
        vec![("csrf", token.clone())],
        Some("https://attacker.example".to_owned()),
    )
    .await
    .unwrap();

    for response in [without_token, wrong_token, foreign] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert!(site_enabled(&app).await);

    let own = post(
        vec![("csrf", token)],
        Some(format!("http://{}", app.address)),
    )
    .await
    .unwrap();
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    assert!(!site_enabled(&app).await);
}

#[tokio::test]
async fn a_change_whose_origin_has_the_other_scheme_leaves_the_site_as_it_was() {
    let app = TestApp::spawn().await;
    let (cookie, token) = signed_in(&app).await;

    let toggle = client()
        .post(app.url(&format!("/console/sites/{SITE1}/toggle")))
        .header(COOKIE, &cookie)
        .header("origin", format!("https://{}", app.address))
        .form(&[("csrf", token)])
        .send()
        .await
        .unwrap();
    let sign_in = client()
        .post(app.url("/console/sign-in"))
        .header("origin", format!("https://{}", app.address))
        .form(&[("accessKey", KEY1), ("secretKey", SECRET1)])
        .send()
        .await
        .unwrap();

    assert_eq!(toggle.status(), StatusCode::FORBIDDEN);
    assert!(site_enabled(&app).await);
    assert_eq!(sign_in.status(), StatusCode::FORBIDDEN);
    assert!(sign_in.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn over_https_only_an_https_origin_may_change_anything() {
    let (app, client) = TestApp::spawn_over_tls().await;
    let client = client.redirect(redirect::Policy::none()).build().unwrap();
    let port = app.address.port();
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let own = format!("https://localhost:{port}");
    let status = || async {
        let store = &*app.state.store;
        let account_id = store.ensure_account("account-1", T0).await.unwrap();
        let site = store.find_site(account_id, SITE1).await.unwrap().unwrap();
        site.status
    };

    let signed = client
        .post(url("/console/sign-in"))
        .header("origin", &own)
        .form(&[("accessKey", KEY1), ("secretKey", SECRET1)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert!(signed.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .ends_with("; Secure"));
    let cookie = session_cookie(signed.headers()).unwrap();
    let page = client
        .get(url("/console/sites"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_token(&page);
    let toggle = |origin: String| {
        client
            .post(url(&format!("/console/sites/{SITE1}/toggle")))
            .header(COOKIE, &cookie)
            .header("origin", origin)
            .form(&[("csrf", token.clone())])
            .send()
    };

    let in_clear = toggle(format!("http://localhost:{port}")).await.unwrap();
    assert_eq!(in_clear.status(), StatusCode::FORBIDDEN);
    assert_eq!(status().await, SiteStatus::Running);
    let secure = toggle(own.clone()).await.unwrap();
    assert_eq!(secure.status(), StatusCode::SEE_OTHER);
    assert_eq!(status().await, SiteStatus::Ready);
}

#[tokio::test]
async fn another_account_s_site_is_not_found_in_the_console() {
    let app = TestApp::spawn().await;
    let (cookie, token) = signed_in(&app).await;

    let page = open(&app, &cookie, &format!("/console/sites/{SITE2}")).await;
    let toggle = client()
        .post(app.url(&format!("/console/sites/{SITE2}/toggle")))
        .header(COOKIE, &cookie)
        .form(&[("csrf", token)])
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert_eq!(toggle.status(), StatusCode::NOT_FOUND);
    let (_, body) = app
        .call_as(
            KEY2,
            SECRET2,
            Method::GET,
            &format!("/api/v1/sites/{SITE2}"),
            None,
        )
        .await;
    assert_eq!(body["content"]["siteEnabledYn"], true);
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let (cookie, token) = signed_in(&app).await;

    let out = client()
        .post(app.url("/console/sign-out"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", token)])
        .send()
        .await
        .unwrap();
    let after = client()
        .get(app.url("/console/history"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()[LOCATION], "/console/sign-in");
}

#[tokio::test]
async fn under_a_public_prefix_links_redirects_and_the_cookie_carry_it() {
    let app = TestApp::spawn_with(|settings| settings.public_base_path = "/drm".to_owned()).await;

    let anonymous = client()
        .get(app.url("/drm/console/history"))
        .send()
        .await
        .unwrap();
    let signed = client()
        .post(app.url("/drm/console/sign-in"))
        .form(&[("accessKey", KEY1), ("secretKey", SECRET1)])
        .send()
        .await
        .unwrap();

    assert_eq!(anonymous.headers()[LOCATION], "/drm/console/sign-in");
    assert_eq!(signed.headers()[LOCATION], "/drm/console/history");
    let set = signed.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set.contains("Path=/drm/console;"), "{set}");
    let page = client()
        .get(app.url("/drm/console/sites"))
        .header(COOKIE, session_cookie(signed.headers()).unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"href="/drm/console/console.css""#),
        "{page}"
    );
    assert!(page.contains(r#"action="/drm/console/sign-out""#), "{page}");
}

/// Asserts a 400 page whose alert starts with `message`, above the
/// filter form; `case` names the request in failures.
async fn assert_refused_above_the_form(response: reqwest::Response, message: &str, case: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
    let html = response.text().await.unwrap();
    let alert = html
        .find(&format!(r#"role="alert">{message}"#))
        .unwrap_or_else(|| panic!("{case}: {html}"));
    let form = html.find(r#"<form class="filters""#).unwrap();
    assert!(alert < form, "{case}: the alert is below the form");
}

#[tokio::test]
async fn filters_the_api_refuses_are_said_above_the_form() {
    let app = TestApp::spawn().await;
    let (cookie, _) = signed_in(&app).await;

    for page in ["history", "statistics"] {
        let response = open(
            &app,
            &cookie,
            &format!(
                "/console/{page}?siteId={SITE1}&searchCondition=drmType&searchKeyword=Primetime"
            ),
        )
        .await;

        assert_refused_above_the_form(response, "searchKeyword is not a DRM type", page).await;
    }
}

#[tokio::test]
async fn filters_the_console_cannot_use_are_refused_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let (cookie, _) = signed_in(&app).await;
    let refusals = [
        (
            "period=custom&from=garbage&to=x",
            "from must be a date from 1970-01-02 to 9999-12-30 (yyyy-mm-dd)",
        ),
        (
            "period=custom&from=2026-12-01&to=x",
            "to must be a date from 1970-01-02 to 9999-12-30 (yyyy-mm-dd)",
        ),
        (
            "period=custom&from=1969-12-31",
            "from must be a date from 1970-01-02 to 9999-12-30 (yyyy-mm-dd)",
        ),
        (
            "period=custom&from=2026-12-02&to=2026-12-01",
            "to is before from",
        ),
        ("period=forever", "period must be today, 7d, 30d or custom"),
        (
            "pageNo=99999999999",
            "pageNo must be an integer from 1 to 100000000",
        ),
        ("pageNo=0", "pageNo must be an integer from 1 to 100000000"),
        (
            "status=fail&status=success",
            "status is given more than once",
        ),
    ];

    for page in ["history", "statistics"] {
        for (query, message) in refusals {
            let response = open(
                &app,
                &cookie,
                &format!("/console/{page}?siteId={SITE1}&{query}"),
            )
            .await;

            let case = format!("{page}?{query}");
            assert_refused_above_the_form(response, &format!("{message}</p>"), &case).await;
        }
    }
}

#[tokio::test]
async fn the_largest_page_the_api_accepts_is_shown_empty() {
    let app = TestApp::spawn().await;
    let (cookie, _) = signed_in(&app).await;

    let response = open(
        &app,
        &cookie,
        &format!("/console/history?siteId={SITE1}&pageNo=100000000"),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<span id="page">Page 100000000 of 1</span>"#),
        "{html}"
    );
}

#[tokio::test]
async fn an_unknown_or_another_account_s_site_is_not_found_on_the_history_and_statistics_pages() {
    let app = TestApp::spawn().await;
    let (cookie, _) = signed_in(&app).await;

    for page in ["history", "statistics"] {
        for site in ["nosuch", SITE2] {
            let response = open(
                &app,
                &cookie,
                &format!("/console/{page}?siteId={site}&period=7d"),
            )
            .await;

            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{page} {site}");
            let html = response.text().await.unwrap();
            assert!(
                html.contains(&format!(r#"role="alert">site {site} not found</p>"#)),
                "{page} {site}: {html}"
            );
            assert!(!html.contains(r#"id="total""#), "{page} {site}: {html}");
        }
    }
}
