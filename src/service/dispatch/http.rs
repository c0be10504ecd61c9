//! The dispatch routes of the HTTP API (CONTRACT 9), each POST and DELETE
//! behind the bearer token when one is set:
//!
//! | route | body | what |
//! |---|---|---|
//! | `POST /v1/alerts/{id}/ack` | `{"by", "note"}` | acknowledge (the first ack stays) |
//! | `POST /v1/alerts/{id}/assign` | `{"by", "to", "note"}` | assign to a person or team (the latest stays) |
//! | `POST /v1/alerts/{id}/close` | `{"by", "note"}` | close: handled, though the engine may still see it firing |
//! | `POST /v1/silences` | `{"matchers": {...}, "until", "by", "why"}` | silence notifications until `until` (RFC 3339) |
//! | `GET /v1/silences` | | active silences, then the last expired ones |
//! | `DELETE /v1/silences/{id}` | optional `{"by"}` | expire a silence now |
//!
//! Answers are JSON: 200 with the alert's lifecycle keys or the silence;
//! 400 for a body that is not what the table says (unknown keys too), 401
//! without the token, 404 for an unknown alert or silence, 503 while the
//! state directory cannot be written. An action answers once it is
//! journaled and applied: `GET /v1/alerts` and the status page show it
//! from then on. Names and notes are masked like every other text hotspot
//! writes, and cut to a bounded length.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::silence::Matchers;
use super::timer::{DispatchHandle, NotApplied};
use super::{Event, Reply};
use crate::mask::mask;
use crate::service::state::Shared;
use crate::source::http::authorized;

/// Largest body of a dispatch request.
const MAX_BODY: usize = 16 << 10;
/// Characters kept of `by` and `to`, and of `note` and `why`.
const MAX_NAME_CHARS: usize = 64;
const MAX_NOTE_CHARS: usize = 1000;

/// What the dispatch handlers share.
#[derive(Clone)]
pub(crate) struct DispatchApi {
    pub handle: DispatchHandle,
    pub token: Option<Arc<str>>,
    pub shared: Arc<Shared>,
}

pub(crate) fn router(api: DispatchApi) -> Router {
    Router::new()
        .route("/v1/alerts/{id}/ack", post(ack))
        .route("/v1/alerts/{id}/assign", post(assign))
        .route("/v1/alerts/{id}/close", post(close))
        .route("/v1/silences", get(silences).post(silence))
        .route("/v1/silences/{id}", delete(expire))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

fn answer(code: StatusCode, v: serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A request refused: its status and why, answered as `{"error": ...}`.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        answer(self.0, json!({"error": self.1}))
    }
}

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, msg.into())
}

/// A name or note as kept: masked, trimmed, cut.
fn clean(s: &str, max: usize) -> String {
    mask(s.trim()).chars().take(max).collect()
}

/// Parses a JSON body into `T`.
fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| bad(format!("body: {}", mask(&e.to_string()))))
}

/// `by`, required.
fn who(by: &str) -> Result<String, Refusal> {
    let by = clean(by, MAX_NAME_CHARS);
    if by.is_empty() {
        return Err(bad("by is empty: say who does it"));
    }
    Ok(by)
}

async fn run(api: &DispatchApi, event: Event) -> Result<Response, Refusal> {
    match api.handle.submit(event).await {
        Ok(Reply::Ok(v)) => Ok(answer(StatusCode::OK, v)),
        Ok(Reply::NotFound(m)) => Err(Refusal(StatusCode::NOT_FOUND, mask(&m).into_owned())),
        Ok(Reply::Invalid(m)) => Err(bad(m)),
        Err(NotApplied::Refused(cause)) => Err(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not recorded: {cause}"),
        )),
        Err(NotApplied::Stopped) => Err(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down".into(),
        )),
    }
}

fn check_token(api: &DispatchApi, headers: &HeaderMap) -> Result<(), Refusal> {
    if authorized(&api.token, headers) {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    by: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    by: String,
    to: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    matchers: Matchers,
    until: String,
    by: String,
    #[serde(default)]
    why: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExpireBody {
    #[serde(default)]
    by: String,
}

async fn ack(
    State(api): State<DispatchApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    action(&api, id, &headers, &body, |alert_id, by, note, at| {
        Event::Ack {
            alert_id,
            by,
            note,
            at,
        }
    })
    .await
}

async fn close(
    State(api): State<DispatchApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    action(&api, id, &headers, &body, |alert_id, by, note, at| {
        Event::Close {
            alert_id,
            by,
            note,
            at,
        }
    })
    .await
}

/// An acknowledgement or a closing: `{"by", "note"}` for alert `id`, as
/// the event `make` builds from (alert id, by, note, now).
async fn action(
    api: &DispatchApi,
    id: String,
    headers: &HeaderMap,
    body: &Bytes,
    make: impl FnOnce(String, String, String, i64) -> Event,
) -> Result<Response, Refusal> {
    check_token(api, headers)?;
    let b: ActionBody = parse(body)?;
    let event = make(
        id,
        who(&b.by)?,
        clean(&b.note, MAX_NOTE_CHARS),
        api.handle.clock.now_ms(),
    );
    run(api, event).await
}

async fn assign(
    State(api): State<DispatchApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    check_token(&api, &headers)?;
    let b: AssignBody = parse(&body)?;
    let by = who(&b.by)?;
    let to = clean(&b.to, MAX_NAME_CHARS);
    if to.is_empty() {
        return Err(bad("to is empty: say whom to assign to"));
    }
    let event = Event::Assign {
        alert_id: id,
        by,
        to,
        note: clean(&b.note, MAX_NOTE_CHARS),
        at: api.handle.clock.now_ms(),
    };
    run(&api, event).await
}

async fn silence(
    State(api): State<DispatchApi>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    check_token(&api, &headers)?;
    let b: SilenceBody = parse(&body)?;
    let by = who(&b.by)?;
    b.matchers.check().map_err(bad)?;
    let until = crate::time::parse_rfc3339(b.until.trim()).ok_or_else(|| {
        bad(format!(
            "until {:?} is not an RFC 3339 time with an offset",
            clean(&b.until, MAX_NAME_CHARS)
        ))
    })?;
    let event = Event::Silence {
        matchers: b.matchers,
        until,
        by,
        why: clean(&b.why, MAX_NOTE_CHARS),
        at: api.handle.clock.now_ms(),
    };
    run(&api, event).await
}

async fn expire(
    State(api): State<DispatchApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    check_token(&api, &headers)?;
    let b: ExpireBody = if body.iter().all(u8::is_ascii_whitespace) {
        ExpireBody::default()
    } else {
        parse(&body)?
    };
    let event = Event::Expire {
        id: clean(&id, MAX_NAME_CHARS),
        by: clean(&b.by, MAX_NAME_CHARS),
        at: api.handle.clock.now_ms(),
    };
    run(&api, event).await
}

async fn silences(State(api): State<DispatchApi>) -> Response {
    let snap = api.shared.snapshot();
    let list: Vec<serde_json::Value> = snap
        .dispatch
        .silences
        .iter()
        .map(super::silence::Silence::view)
        .collect();
    answer(StatusCode::OK, list.into())
}
