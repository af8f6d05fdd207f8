//! Test doubles of upstream license servers: small axum servers on port 0
//! that record every request they receive and answer as told, so tests
//! can see exactly which bytes and headers multidrm forwarded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

/// How a double answers every request.
#[derive(Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Answer {
    /// 200 with `body` as `application/octet-stream`, at once.
    pub fn bytes(body: &[u8]) -> Self {
        Self {
            status: StatusCode::OK,
            body: body.to_vec(),
            content_type: "application/octet-stream",
            delay: Duration::ZERO,
        }
    }
}

/// One request as the double received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: Vec<u8>,
    pub headers: HeaderMap,
}

#[derive(Clone)]
struct DoubleState {
    answer: Answer,
    received: Arc<Mutex<Vec<Received>>>,
}

/// A running upstream license server double.
pub struct UpstreamDouble {
    /// Where to post license requests.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl UpstreamDouble {
    /// Starts a double that answers every POST with `answer`.
    pub async fn start(answer: Answer) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = DoubleState {
            answer,
            received: received.clone(),
        };
        let router = Router::new()
            .route("/license", post(record_and_answer))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/license", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url,
            received,
            task,
        }
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for UpstreamDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record_and_answer(
    State(state): State<DoubleState>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    state.received.lock().unwrap().push(Received {
        body: body.to_vec(),
        headers,
    });
    tokio::time::sleep(state.answer.delay).await;
    let answer = state.answer;
    (
        answer.status,
        [(header::CONTENT_TYPE, answer.content_type)],
        answer.body,
    )
}
