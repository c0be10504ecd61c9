//! HTTP intake: `POST /v1/complaints` with a JSON Lines body (CONTRACT 7).
//!
//! The body goes to the engine thread as one batch, in arrival order; the
//! answer says what happened to each line of *this* body (`accepted`,
//! `rejected` with per-line reasons, `late_dropped`). Bad lines never fail
//! the request. When the engine's queue is full the answer is `429` with
//! `Retry-After` — records are never dropped silently; while shutting down
//! it is `503`. With a token configured, the request needs
//! `Authorization: Bearer <token>` (the scheme in any case, RFC 9110).
//!
//! What one request may cost is bounded before its body is read:
//!
//! * a declared `Content-Length` over the size limit (`--max-body`) is
//!   answered `413` at once, without reading the body; a body without a
//!   declared length is cut off with `413` when it passes the limit;
//! * the bodies being read, queued or processed share a budget of bytes
//!   ([`BodyBudget`], the larger of `--body-budget`, default 64 MiB, and
//!   `--max-body`). A request reserves its declared length (the size limit
//!   when it declares none) before reading; when the budget has no room for
//!   it within [`BUDGET_WAIT`], the answer is `429` with `Retry-After` and
//!   the body is never read. A client that sends `Expect: 100-continue`
//!   learns this before it sends the body;
//! * the whole body must arrive within `--body-timeout` (default 30 s),
//!   else `408`.
//!
//! Every refusal is counted in `hotspot_intake_refused_total{code}`. The
//! body is read into one buffer of its declared size (a body that arrives
//! in one piece is not copied at all) and handed to the engine as it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::{NotTaken, Submit};
use crate::metrics::Metrics;
use crate::service::idempotency::valid_key;
use crate::service::pipeline::{Answer, Batch, MAIN};
use crate::service::state::Lifecycle;

/// How long a request waits for room in the [`BodyBudget`] before it is
/// answered `429`.
pub(crate) const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// What the intake handler needs.
#[derive(Clone)]
pub struct Intake {
    /// Hands a body to the engine thread.
    pub submit: Submit,
    pub metrics: Arc<Metrics>,
    /// Whether intake is open.
    pub gate: IntakeGate,
    pub token: Option<Arc<str>>,
    /// Largest accepted body, bytes (413 beyond).
    pub max_body: usize,
    /// The longest a request body may take to arrive, from the end of its
    /// headers to its last byte (`408` beyond). 16 MiB in the default 30 s
    /// is 4.5 Mbit/s.
    pub body_timeout: Duration,
}

/// A read-only view of the service's lifecycle: whether it takes
/// complaints now (ready, not shutting down, the state directory writable).
#[derive(Clone)]
pub struct IntakeGate(Arc<Lifecycle>);

impl IntakeGate {
    pub fn new(lifecycle: Arc<Lifecycle>) -> IntakeGate {
        IntakeGate(lifecycle)
    }

    /// Starting (still recovering) or shutting down.
    fn closed(&self) -> bool {
        self.0.shutting_down() || !self.0.ready()
    }

    /// Why the state directory cannot be written, while it cannot.
    fn storage_fault(&self) -> Option<String> {
        self.0.storage_fault()
    }
}

/// The bytes of request bodies in flight (being read, queued for the
/// engine or being processed), counted in KiB permits of a semaphore. A
/// request holds its share until its answer is ready. The router adds it
/// as an [`Extension`]; a router without one (an embedding test) reads
/// bodies without this bound.
#[derive(Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total_kib: u32,
}

impl BodyBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: usize) -> BodyBudget {
        let total_kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize) as u32);
        BodyBudget {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// The service's budget: `budget` bytes, but at least `max_body`, so
    /// that one body of the largest size always fits.
    pub(crate) fn for_limits(budget: usize, max_body: usize) -> BodyBudget {
        BodyBudget::new(budget.max(max_body))
    }

    fn kib(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib)
    }

    /// Room for `bytes`, waiting at most `wait`.
    async fn reserve(&self, bytes: usize, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let n = self.kib(bytes);
        tokio::time::timeout(wait, self.permits.clone().acquire_many_owned(n))
            .await
            .ok()?
            .ok()
    }

    /// Gives back what `permit` holds beyond `bytes`.
    fn shrink(&self, permit: &mut OwnedSemaphorePermit, bytes: usize) {
        let keep = self.kib(bytes) as usize;
        if permit.num_permits() > keep {
            drop(permit.split(permit.num_permits() - keep));
        }
    }
}

/// The credentials of an `Authorization: Bearer <token>` value. The scheme
/// is case-insensitive (RFC 9110, 11.1); one or more spaces follow it.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_matches(' '))
}

/// Checks `Authorization: Bearer <token>` when a token is configured.
pub(crate) fn authorized(token: &Option<Arc<str>>, headers: &HeaderMap) -> bool {
    let Some(t) = token else { return true };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    else {
        return false;
    };
    // Constant-time comparison: do not leak the token's prefix by timing.
    let (a, b) = (given.as_bytes(), t.as_bytes());
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

/// A refusal, counted; `retry` adds `Retry-After: 1`, `close` asks the
/// client to close the connection (its body was not read, or not all of
/// it).
fn refuse(metrics: &Metrics, code: StatusCode, msg: &str, retry: bool, close: bool) -> Response {
    metrics
        .intake_refused
        .with_label_values(&[code.as_str()])
        .inc();
    let mut r = json_error(code, msg);
    if retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if close {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// The declared `Content-Length`, if any. (hyper has already refused a
/// request whose value is not a number.)
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// The whole body, at most `max` bytes. A body in one piece is returned as
/// it came; otherwise the pieces are copied once into a buffer of the
/// declared size.
async fn read_body(
    body: axum::body::Body,
    max: usize,
    declared: Option<u64>,
) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut len = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if chunk.is_empty() {
            continue;
        }
        len += chunk.len();
        if len > max {
            return Err(BodyError::TooLarge);
        }
        if let Some(f) = first.take() {
            let want = declared.map_or(len, |d| (d as usize).clamp(len, max));
            buf.reserve(want.saturating_sub(buf.len()));
            buf.extend_from_slice(&f);
        }
        if buf.is_empty() {
            first = Some(chunk);
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

pub async fn post_complaints(
    State(intake): State<Intake>,
    budget: Option<Extension<BodyBudget>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let metrics = &*intake.metrics;
    if !authorized(&intake.token, &headers) {
        return refuse(
            metrics,
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
            false,
            false,
        );
    }
    if intake.gate.closed() {
        return refuse(
            metrics,
            StatusCode::SERVICE_UNAVAILABLE,
            "not accepting complaints (starting or shutting down)",
            true,
            false,
        );
    }
    if let Some(why) = intake.gate.storage_fault() {
        return refuse(
            metrics,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not accepting complaints: {why}"),
            true,
            true,
        );
    }
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if valid_key(k) => Some(k.to_owned()),
        Some(_) => {
            return refuse(
                metrics,
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
                false,
                true,
            );
        }
    };
    let too_large = format!("body larger than {} bytes", intake.max_body);
    let declared = content_length(&headers);
    if declared.is_some_and(|n| n > intake.max_body as u64) {
        return refuse(
            metrics,
            StatusCode::PAYLOAD_TOO_LARGE,
            &too_large,
            false,
            true,
        );
    }
    // Room in the budget for the declared size (the limit when unknown).
    let want = declared.map_or(intake.max_body, |n| n as usize);
    let mut permit = match &budget {
        Some(Extension(b)) => match b.reserve(want, BUDGET_WAIT).await {
            Some(p) => Some(p),
            None => {
                return refuse(
                    metrics,
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many request bodies in flight; retry later",
                    true,
                    true,
                );
            }
        },
        None => None,
    };
    let body = match tokio::time::timeout(
        intake.body_timeout,
        read_body(body, intake.max_body, declared),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => {
            return refuse(
                metrics,
                StatusCode::PAYLOAD_TOO_LARGE,
                &too_large,
                false,
                true,
            );
        }
        Ok(Err(BodyError::Read(e))) => {
            return refuse(
                metrics,
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {e}"),
                false,
                true,
            );
        }
        Err(_) => {
            return refuse(
                metrics,
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {}",
                    crate::time::format_duration(intake.body_timeout.as_millis() as i64)
                ),
                false,
                true,
            );
        }
    };
    if let (Some(Extension(b)), Some(p)) = (&budget, permit.as_mut()) {
        b.shrink(p, body.len());
    }
    let (reply, answer) = oneshot::channel();
    let batch = Batch {
        stream: MAIN.into(),
        source: "http".into(),
        position: None,
        data: body,
        received: Instant::now(),
        key,
        reply: Some(reply),
    };
    match intake.submit.try_send(batch) {
        Ok(()) => {}
        Err(NotTaken::Full) => {
            return refuse(
                metrics,
                StatusCode::TOO_MANY_REQUESTS,
                "intake queue is full; retry later",
                true,
                false,
            );
        }
        Err(NotTaken::Stopped) => {
            return refuse(
                metrics,
                StatusCode::SERVICE_UNAVAILABLE,
                "engine stopped",
                false,
                false,
            );
        }
    }
    metrics.intake_queue.inc();
    let answered = tokio::time::timeout(Duration::from_secs(60), answer).await;
    // The batch has been processed (or given up on): its bytes are free.
    drop(permit);
    let ok = |report| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&report).unwrap_or_default(),
        )
            .into_response()
    };
    match answered {
        Ok(Ok(Answer::Done(report))) => ok(report),
        Ok(Ok(Answer::Replayed(report))) => {
            let mut r = ok(report);
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
        Ok(Ok(Answer::KeyConflict)) => refuse(
            metrics,
            StatusCode::UNPROCESSABLE_ENTITY,
            "this Idempotency-Key was used with another body",
            false,
            false,
        ),
        Ok(Ok(Answer::Refused(why))) => refuse(
            metrics,
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("not journaled, not processed: {why}"),
            true,
            false,
        ),
        _ => json_error(StatusCode::SERVICE_UNAVAILABLE, "the engine did not answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "bEaReR   s3cret",
        ] {
            assert_eq!(bearer_token(v), Some("s3cret"), "{v}");
        }
        for v in ["Basic s3cret", "Bearers3cret", "Bearer", "Token s3cret"] {
            assert_eq!(bearer_token(v), None, "{v}");
        }
        let token = Some(Arc::from("s3cret"));
        for (v, ok) in [
            ("bearer s3cret", true),
            ("BEARER s3cret", true),
            ("Bearer s3cret", true),
            ("bearer wrong", false),
            ("basic s3cret", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            assert_eq!(authorized(&token, &h), ok, "{v}");
        }
        assert!(!authorized(&token, &HeaderMap::new()));
        assert!(authorized(&None, &HeaderMap::new()));
    }

    #[tokio::test]
    async fn the_budget_holds_bytes_until_given_back() {
        let b = BodyBudget::new(4 << 10);
        let mut p = b.reserve(3 << 10, Duration::ZERO).await.unwrap();
        assert!(b.reserve(2 << 10, Duration::ZERO).await.is_none());
        b.shrink(&mut p, 100);
        let q = b.reserve(2 << 10, Duration::ZERO).await.unwrap();
        assert!(b.reserve(2 << 10, Duration::ZERO).await.is_none());
        drop((p, q));
        // More than the whole budget is capped at the whole budget.
        assert!(b.reserve(1 << 30, Duration::ZERO).await.is_some());
    }

    #[tokio::test]
    async fn a_body_in_pieces_is_joined_and_a_long_one_refused() {
        let pieces: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"ab")),
            Ok(Bytes::from_static(b"")),
            Ok(Bytes::from_static(b"cd\n")),
        ];
        let body = axum::body::Body::from_stream(futures_util::stream::iter(pieces));
        let got = read_body(body, 5, Some(5)).await.ok().unwrap();
        assert_eq!(&got[..], b"abcd\n");
        let one = axum::body::Body::from(Bytes::from_static(b"x\n"));
        assert_eq!(&read_body(one, 5, None).await.ok().unwrap()[..], b"x\n");
        let long = axum::body::Body::from(Bytes::from_static(b"123456"));
        assert!(matches!(
            read_body(long, 5, None).await,
            Err(BodyError::TooLarge)
        ));
    }
}
