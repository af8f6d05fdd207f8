//! The console's page frame and its error page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::TimeZone;
use chrono_tz::Tz;
use maud::{html, Markup, DOCTYPE};

use super::session::Console;
use crate::http::ApiError;
use crate::store::StoreError;

/// The pages in the navigation: (path, title).
const PAGES: [(&str, &str); 4] = [
    ("/history", "License history"),
    ("/statistics", "Statistics"),
    ("/sites", "Sites"),
    ("/policies", "Policies"),
];

/// A full page for a signed-in user: navigation, sign-out and `body`.
/// `refresh` reloads the page every that many seconds.
pub fn frame(console: &Console, title: &str, refresh: Option<u32>, body: Markup) -> Html<String> {
    let nav = html! {
        a.skip href="#main" { "Skip to content" }
        header.top {
            span.brand { "multidrm" }
            nav aria-label="Console" {
                ul {
                    @for (path, name) in PAGES {
                        li {
                            @if name == title {
                                a href=(console.link(path)) aria-current="page" { (name) }
                            } @else {
                                a href=(console.link(path)) { (name) }
                            }
                        }
                    }
                }
            }
            form.sign-out method="post" action=(console.link("/sign-out")) {
                (csrf_field(console))
                span.who { (console.caller.access_key) }
                button type="submit" { "Sign out" }
            }
        }
    };
    document(
        &console.prefix,
        title,
        refresh,
        html! { (nav) main #main { h1 { (title) } (body) } },
    )
}

/// A page without navigation, for signing in.
pub fn bare(prefix: &str, title: &str, body: Markup) -> Html<String> {
    document(
        prefix,
        title,
        None,
        html! { main #main.narrow { h1 { "multidrm console" } h2 { (title) } (body) } },
    )
}

fn document(prefix: &str, title: &str, refresh: Option<u32>, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · multidrm" }
                link rel="stylesheet" href=(format!("{prefix}/console/console.css"));
            }
            body { (body) }
        }
    };
    Html(markup.into_string())
}

/// The hidden field that carries the session's CSRF token.
pub fn csrf_field(console: &Console) -> Markup {
    html! { input type="hidden" name="csrf" value=(console.csrf); }
}

/// A table's head row of column titles.
pub fn head(columns: &[&str]) -> Markup {
    html! { thead { tr { @for column in columns { th scope="col" { (column) } } } } }
}

/// A site or policy log: (epoch ms, description) entries, newest first.
pub fn log_table<'a>(id: &str, entries: impl Iterator<Item = (i64, &'a str)>, zone: Tz) -> Markup {
    html! {
        div.table-wrap {
            table id=(id) {
                caption { "Changes, newest first" }
                (head(&["When", "What"]))
                tbody {
                    @for (at, description) in entries {
                        tr { td { (time(at, zone)) } td { (description) } }
                    }
                }
            }
        }
    }
}

/// What the history and statistics pages show an account without sites.
pub fn no_site(console: &Console, title: &str) -> Html<String> {
    let body = html! { p { "No site yet: " a href=(console.link("/sites")) { "create one" } "." } };
    frame(console, title, None, body)
}

/// Filters the API refused, said above the form so that they can be put
/// right; unexpected failures stay error pages.
pub fn refused_filters(
    console: &Console,
    title: &str,
    form: Markup,
    error: ApiError,
) -> Result<Response, PageError> {
    let error = PageError::from(error);
    if error.status.is_server_error() {
        return Err(error);
    }
    let body = html! { p.alert role="alert" { (error.message) } (form) };
    Ok((error.status, frame(console, title, None, body)).into_response())
}

/// `yyyy-MM-dd HH:mm:ss` of `epoch_ms` in `zone`.
pub fn time(epoch_ms: i64, zone: Tz) -> String {
    zone.timestamp_millis_opt(epoch_ms)
        .single()
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A failure shown as a page: the API error's status and message.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    /// An error page with `status` saying `message`.
    pub fn new(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            message: message.to_owned(),
        }
    }

    /// A storage failure, as the API would answer it.
    pub fn from_store(error: StoreError) -> Self {
        ApiError::from(error).into()
    }

    /// An unexpected failure; logged, never shown.
    pub fn internal(cause: anyhow::Error) -> Self {
        ApiError::Internal(cause).into()
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        let message = error.to_string();
        // The API's answer logs unexpected causes and picks the status.
        let status = error.into_response().status();
        Self { status, message }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Error · multidrm" }
                }
                body {
                    main {
                        h1 { "Something went wrong" }
                        p role="alert" { (self.message) }
                        p { "Go back and try again." }
                    }
                }
            }
        };
        (self.status, Html(body.into_string())).into_response()
    }
}
