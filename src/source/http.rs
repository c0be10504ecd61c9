//! HTTP intake: `POST /v1/complaints` with a JSON Lines body (CONTRACT 7).
//!
//! The body goes to the engine thread as one batch, in arrival order; the
//! answer says what happened to each line of *this* body (`accepted`,
//! `rejected` with per-line reasons, `late_dropped`). Bad lines never fail
//! the request. When the engine's queue is full the answer is `429` with
//! `Retry-After` — records are never dropped silently; while shutting down
//! it is `503`. A body over the size limit is `413`. With a token
//! configured, the request needs `Authorization: Bearer <token>`.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::service::pipeline::{Batch, Command, MAIN};
use crate::service::state::Shared;

/// What the intake handler needs.
#[derive(Clone)]
pub struct Intake {
    pub shared: Arc<Shared>,
    pub tx: SyncSender<Command>,
    pub token: Option<Arc<str>>,
    /// Largest accepted body, bytes (413 beyond).
    pub max_body: usize,
}

/// Checks `Authorization: Bearer <token>` when a token is configured.
pub fn authorized(token: &Option<Arc<str>>, headers: &HeaderMap) -> bool {
    let Some(t) = token else { return true };
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = v.strip_prefix("Bearer ") else {
        return false;
    };
    // Constant-time comparison: do not leak the token's prefix by timing.
    let (a, b) = (given.trim().as_bytes(), t.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_error(code: StatusCode, msg: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": msg }).to_string(),
    )
        .into_response()
}

pub async fn post_complaints(
    State(intake): State<Intake>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let m = &intake.shared.metrics;
    if !authorized(&intake.token, &headers) {
        m.intake_refused.with_label_values(&["401"]).inc();
        return json_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    if intake.shared.shutting_down() || !intake.shared.ready() {
        m.intake_refused.with_label_values(&["503"]).inc();
        let mut r = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not accepting complaints (starting or shutting down)",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    // The limit is checked here rather than by a layer so that a 413 is
    // counted like every other refusal.
    let body: Bytes = match axum::body::to_bytes(body, intake.max_body).await {
        Ok(b) => b,
        Err(_) => {
            m.intake_refused.with_label_values(&["413"]).inc();
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body larger than {} bytes", intake.max_body),
            );
        }
    };
    let (reply, answer) = oneshot::channel();
    let batch = Batch {
        stream: MAIN.into(),
        source: "http".into(),
        position: None,
        data: body,
        received: Instant::now(),
        reply: Some(reply),
    };
    match intake.tx.try_send(Command::Batch(batch)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            m.intake_refused.with_label_values(&["429"]).inc();
            let mut r = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "intake queue is full; retry later",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Err(TrySendError::Disconnected(_)) => {
            m.intake_refused.with_label_values(&["503"]).inc();
            return json_error(StatusCode::SERVICE_UNAVAILABLE, "engine stopped");
        }
    }
    m.intake_queue.inc();
    match tokio::time::timeout(Duration::from_secs(60), answer).await {
        Ok(Ok(report)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&report).unwrap_or_default(),
        )
            .into_response(),
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "the engine did not answer"),
    }
}
