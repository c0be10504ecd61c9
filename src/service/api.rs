//! The HTTP API of `hotspot run` (CONTRACT 7 and beyond):
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/complaints` | JSON Lines intake (see `source::http`; its limits: size, time, bytes in flight) |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 once recovered and accepting; 503 starting, stopping, the state directory not writable, or a connected source (Fluvio) down |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /v1/alerts` | open alerts: firing objects plus `max_count`, `hot_window_end` |
//! | `GET /v1/hotspots?limit=N` | the hottest keys now: distinct callers, threshold, ratio, trend |
//! | `GET /v1/rules` | the rules in force (with section 8 keys: `regions`, `provinces`, `discovery`, and per business `region_thresholds`, `province_threshold`, `surge`) |
//! | `GET /v1/stats` | counts, watermark, latency percentiles, sink backlogs |
//! | `GET /v1/explain?text=` | why a text matches what it matches (the `hotspot explain --json` object, numbers masked) |
//! | `POST /-/reload` | reload the rules file (also on SIGHUP); `?dry_run=true`: what a reload would change, changing nothing |
//! | `POST /v1/alerts/{id}/ack`, `/assign`, `/close`; `GET`, `POST /v1/silences`; `DELETE /v1/silences/{id}` | dispatch (CONTRACT 9, see `dispatch::http`) |
//! | `GET /` | the status page |

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::json;

use super::pipeline::DryRun;
use super::state::Shared;
use crate::explain::Explainer;
use crate::matcher::Matcher;
use crate::source::http::{BodyBudget, Intake, authorized, post_complaints};
use crate::time::format_duration;

/// Starts a dry-run reload: the answer's JSON, or why the rules file
/// would be refused.
pub type DryRunFn =
    Arc<dyn Fn() -> tokio::task::JoinHandle<Result<serde_json::Value, Vec<String>>> + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    pub shared: Arc<Shared>,
    pub intake: Intake,
    pub reload: Arc<dyn Fn() -> tokio::task::JoinHandle<Result<String, Vec<String>>> + Send + Sync>,
    pub dry_run: DryRunFn,
    /// The explainer of the rules in force, built on the first
    /// `/v1/explain` after each reload.
    pub explainer: Arc<std::sync::Mutex<Option<Arc<Explainer>>>>,
    pub sinks: Arc<Vec<(String, usize)>>,
    pub outbox: Arc<crate::sink::outbox::Outbox>,
    /// Bytes of request bodies in flight at once (at least `max_body`).
    pub body_budget: usize,
    /// The dispatch routes' state (CONTRACT 9).
    pub dispatch: super::dispatch::http::DispatchApi,
    /// The status page's time zone, minutes east of UTC.
    pub display_offset_min: i32,
}

pub fn router(api: Api) -> Router {
    let intake = Router::new()
        .route("/v1/complaints", post(post_complaints))
        .with_state(api.intake.clone())
        .layer(Extension(BodyBudget::for_limits(
            api.body_budget,
            api.intake.max_body,
        )))
        .layer(DefaultBodyLimit::disable());
    let dispatch = super::dispatch::http::router(api.dispatch.clone());
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/alerts", get(alerts))
        .route("/v1/hotspots", get(hotspots))
        .route("/v1/rules", get(rules))
        .route("/v1/stats", get(stats))
        .route("/v1/explain", get(explain))
        .route("/-/reload", post(reload))
        .with_state(api)
        .merge(intake)
        .merge(dispatch)
}

fn json_response(code: StatusCode, v: serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn readyz(State(api): State<Api>) -> Response {
    let s = &api.shared;
    let down = s.sources_down();
    let fault = s.storage_fault();
    if s.ready() && !s.shutting_down() && down.is_empty() && fault.is_none() {
        json_response(StatusCode::OK, json!({"ready": true}))
    } else {
        let why = if s.shutting_down() {
            "shutting down".to_owned()
        } else if !s.ready() {
            "starting (recovering state)".to_owned()
        } else if let Some(f) = fault {
            format!("intake stopped: {f}")
        } else {
            down.iter()
                .map(|(n, r)| format!("source {n} is down: {r}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reason": why}),
        )
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    for (name, idx) in api.sinks.iter() {
        api.shared
            .metrics
            .sink_queue
            .with_label_values(&[name])
            .set(api.outbox.depth(*idx) as i64);
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.shared.metrics.render(),
    )
        .into_response()
}

async fn alerts(State(api): State<Api>) -> Response {
    let snap = api.shared.snapshot();
    json_response(
        StatusCode::OK,
        serde_json::to_value(&snap.open_alerts).unwrap_or_default(),
    )
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn hotspots(State(api): State<Api>, Query(q): Query<Limit>) -> Response {
    let snap = api.shared.snapshot();
    let n = q.limit.unwrap_or(50).min(snap.hotspots.len());
    json_response(
        StatusCode::OK,
        serde_json::to_value(&snap.hotspots[..n]).unwrap_or_default(),
    )
}

async fn rules(State(api): State<Api>) -> Response {
    let r = api.shared.snapshot().rules.clone();
    let businesses: Vec<_> = r
        .businesses
        .iter()
        .map(|b| {
            let mut v = json!({
                "id": b.id, "name": b.name, "department": r.departments[b.department].id, "threshold": b.threshold,
                "templates": r.templates[b.templates.clone()].iter().map(|t| json!({
                    "id": t.id, "phenomenon": t.phenomenon, "all_of": t.all_of, "none_of": t.none_of,
                })).collect::<Vec<_>>(),
            });
            if r.extended {
                // Section 8: null / empty where the business does not use a key.
                let overrides: serde_json::Map<String, serde_json::Value> = b
                    .region_thresholds
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| **t > 0)
                    .map(|(i, t)| (r.regions[i].id.clone(), json!(t)))
                    .collect();
                v["region_thresholds"] = overrides.into();
                v["province_threshold"] = json!(b.province_threshold);
                v["surge"] = match &b.surge {
                    Some(s) => {
                        let mut v = json!({"ratio": s.ratio, "min": s.min, "p_value": s.p_value});
                        if let Some(k) = s.place {
                            v["place"] = json!(k);
                        }
                        v
                    }
                    None => serde_json::Value::Null,
                };
            }
            v
        })
        .collect();
    let mut body = json!({
            "version": r.version,
            "source": r.source,
            "window": {
                "size": format_duration(r.window.size_ms),
                "slide": format_duration(r.window.slide_ms),
                "allowed_lateness": format_duration(r.window.allowed_lateness_ms),
            },
            "departments": r.departments.iter().map(|d| {
                let mut v = json!({"id": d.id, "name": d.name});
                // Section 9 keys, only where set.
                if let Some(ms) = d.ack_within_ms {
                    v["ack_within"] = format_duration(ms).into();
                }
                if let Some(t) = d.escalate_to {
                    v["escalate_to"] = r.departments[t].id.clone().into();
                }
                v
            }).collect::<Vec<_>>(),
            "businesses": businesses,
            "keywords": r.keyword_count(),
    });
    if r.extended {
        // Section 8: the region table, the provinces with their regions, and
        // `[discovery]` (new-topic detection).
        body["regions"] = r
            .regions
            .iter()
            .map(|g| {
                json!({
                    "id": g.id,
                    "province": r.provinces[g.province].name,
                    "subscribers": g.subscribers,
                })
            })
            .collect::<Vec<_>>()
            .into();
        body["provinces"] = r
            .provinces
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "regions": p.regions.iter().map(|&i| &r.regions[i].id).collect::<Vec<_>>(),
                })
            })
            .collect::<Vec<_>>()
            .into();
        body["discovery"] = match &r.discovery {
            Some(d) => json!({
                "department": r.departments[d.department].id,
                "min_callers": d.min_callers,
                "implemented": true,
            }),
            None => serde_json::Value::Null,
        };
    }
    json_response(StatusCode::OK, body)
}

async fn stats(State(api): State<Api>) -> Response {
    let snap = api.shared.snapshot();
    let (delivery, processing) = api.shared.latency.report();
    let backlog: serde_json::Map<String, serde_json::Value> = api
        .sinks
        .iter()
        .map(|(n, i)| (n.clone(), json!(api.outbox.depth(*i))))
        .collect();
    let uptime = api
        .shared
        .started
        .elapsed()
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut counts = serde_json::to_value(&snap.stats).unwrap_or_default();
    counts["rejected"] = crate::record::Reject::ALL
        .iter()
        .map(|r| (r.name().to_owned(), json!(snap.stats.rejected[r.index()])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    json_response(
        StatusCode::OK,
        json!({
            "stats": counts,
            "watermark": snap.watermark.map(crate::time::format_cst),
            "watermarks": snap.watermarks.iter().map(|(k, v)| (k.clone(), json!(crate::time::format_cst(*v)))).collect::<serde_json::Map<_, _>>(),
            "keys": snap.keys,
            "open_alerts": snap.open_alerts.len(),
            "rules_version": snap.rules.version,
            "uptime_s": uptime,
            "latency": {"delivery": delivery, "processing_per_record": processing},
            "sink_backlog": backlog,
            "sources": api.shared.sources(),
        }),
    )
}

#[derive(Deserialize)]
struct ReloadQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn reload(
    State(api): State<Api>,
    headers: HeaderMap,
    query: Result<Query<ReloadQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !authorized(&api.intake.token, &headers) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong bearer token"}),
        );
    }
    let Ok(Query(q)) = query else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"reloaded": false, "errors": ["dry_run must be true or false"]}),
        );
    };
    if q.dry_run {
        return match (api.dry_run)().await {
            Ok(Ok(v)) => json_response(StatusCode::OK, v),
            Ok(Err(errors)) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"dry_run": true, "reloaded": false, "would_reload": false, "errors": errors}),
            ),
            Err(e) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"dry_run": true, "reloaded": false, "errors": [e.to_string()]}),
            ),
        };
    }
    match (api.reload)().await {
        Ok(Ok(version)) => json_response(
            StatusCode::OK,
            json!({"reloaded": true, "version": version}),
        ),
        Ok(Err(errors)) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"reloaded": false, "errors": errors}),
        ),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"reloaded": false, "errors": [e.to_string()]}),
        ),
    }
}

/// Keys listed one by one in a dry run's `keys.dropped_keys` (the counts
/// are always complete).
const DRY_RUN_KEY_LIST: usize = 1000;

/// The answer of `POST /-/reload?dry_run=true`: the rules diff of
/// `check-rules --diff --json` (old = the rules in force), plus what
/// happens to the live keys and open alerts.
pub(crate) fn dry_run_json(plan: &DryRun, new: &crate::rules::Rules) -> serde_json::Value {
    let diff = crate::rules::diff::diff(&plan.current, new);
    let mut v = serde_json::to_value(&diff).unwrap_or_default();
    let (mut kept, mut dropped) = (0usize, 0usize);
    let mut by_business: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let (mut dropped_keys, mut stay_open, mut resolve) = (Vec::new(), Vec::new(), Vec::new());
    for (stream, keys) in &plan.keys {
        for k in keys {
            let counts = by_business.entry(k.business.as_str()).or_default();
            let key = json!({
                "stream": stream, "business": k.business, "region": k.region, "scope": k.scope,
            });
            if k.kept {
                kept += 1;
                counts.0 += 1;
            } else {
                dropped += 1;
                counts.1 += 1;
                if dropped_keys.len() < DRY_RUN_KEY_LIST {
                    dropped_keys.push(key.clone());
                }
            }
            if let Some(id) = &k.alert_id {
                let mut a = key;
                a["alert_id"] = json!(id);
                if k.kept {
                    stay_open.push(a);
                } else {
                    resolve.push(a);
                }
            }
        }
    }
    v["dry_run"] = json!(true);
    v["reloaded"] = json!(false);
    v["would_reload"] = json!(true);
    v["keys"] = json!({
        "kept": kept,
        "dropped": dropped,
        "by_business": by_business.iter().map(|(b, (k, d))| (b.to_string(), json!({"kept": k, "dropped": d}))).collect::<serde_json::Map<_, _>>(),
        "dropped_keys": dropped_keys,
        "dropped_keys_truncated": dropped > DRY_RUN_KEY_LIST,
    });
    v["open_alerts"] = json!({"stay_open": stay_open, "resolve": resolve});
    v
}

#[derive(Deserialize)]
struct ExplainQuery {
    text: Option<String>,
}

/// The longest text `/v1/explain` takes (bytes): a record's text may be
/// 1 MB (CONTRACT 5.10).
const EXPLAIN_MAX_TEXT: usize = 1 << 20;

async fn explain(
    State(api): State<Api>,
    query: Result<Query<ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let text = match query {
        Ok(Query(ExplainQuery { text: Some(t) })) => t,
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "give the text to explain as ?text= (URL-encoded UTF-8)"}),
            );
        }
    };
    if text.len() > EXPLAIN_MAX_TEXT {
        return json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("text longer than {EXPLAIN_MAX_TEXT} bytes")}),
        );
    }
    let rules = api.shared.snapshot().rules.clone();
    let cached = {
        let c = api.explainer.lock().unwrap_or_else(|e| e.into_inner());
        c.as_ref()
            .filter(|e| Arc::ptr_eq(e.rules(), &rules))
            .cloned()
    };
    let explainer = match cached {
        Some(e) => e,
        None => {
            let r = rules.clone();
            let built = tokio::task::spawn_blocking(move || {
                Matcher::new(&r).map(|m| Arc::new(Explainer::new(r, Arc::new(m))))
            })
            .await;
            match built {
                Ok(Ok(e)) => {
                    *api.explainer.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
                    e
                }
                Ok(Err(e)) => {
                    return json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"error": e.to_string()}),
                    );
                }
                Err(e) => {
                    return json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"error": e.to_string()}),
                    );
                }
            }
        }
    };
    let v = explainer.explain(&text).to_json(&rules);
    json_response(StatusCode::OK, v)
}

async fn status_page(State(api): State<Api>) -> Html<String> {
    let sinks: Vec<super::status_page::SinkHealth> = api
        .sinks
        .iter()
        .map(|(name, i)| super::status_page::SinkHealth {
            name: name.clone(),
            backlog: api.outbox.depth(*i),
            up: api.shared.metrics.sink_up.with_label_values(&[name]).get() == 1,
        })
        .collect();
    let page = super::status_page::Page {
        offset_min: api.display_offset_min,
        sinks: &sinks,
        now_ms: api.dispatch.handle.clock.now_ms(),
    };
    Html(super::status_page::render(&api.shared.snapshot(), &page))
}
