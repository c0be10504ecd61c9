//! The live service, `hotspot run` (CONTRACT 7): complaints arrive over HTTP,
//! stdin or followed files, the engine thread turns them into alert lines,
//! and one delivery task per sink takes them to the alerts file, the
//! departments' webhooks and Alertmanager.
//!
//! ```text
//!  HTTP ──┐                                  ┌─ file sink
//!  stdin ─┤                                  ├─ webhook sinks (per department)
//!  follow ┼─▶ bounded queue ─▶ engine thread ─▶ outbox ─┼─ Alertmanager (+ re-send while firing)
//!  Fluvio ┘   (429 when full)  (journal, checkpoints)    └─ Fluvio alerts topic
//!  (one stream per partition)   │      └─▶ dead letters (file, Fluvio topic)
//!                               └─▶ snapshot ─▶ /v1/*, status page, /metrics
//! ```
//!
//! The dispatch book (`dispatch`, CONTRACT 9) rides on the engine thread:
//! acks, silences, first deliveries and timer ticks are journaled events
//! like the input, and the reminders and escalations they make are outbox
//! lines that the webhook sinks deliver.
//!
//! Shutdown (SIGTERM or SIGINT): intake stops (new requests get 503), the
//! engine processes what was already queued and writes a final checkpoint,
//! then the sinks get `drain` time to deliver what is pending; the process
//! exits 0 well inside 10 s. SIGHUP reloads the rules.

pub(crate) mod api;
pub(crate) mod config;
pub mod dispatch;
pub(crate) mod idempotency;
pub mod pipeline;
mod server;
pub mod state;
pub mod status_page;

use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{oneshot, watch};

pub use config::Settings;
use pipeline::{Command, Pipeline, PipelineConfig};
use state::Shared;

use crate::engine::EngineConfig;
use crate::matcher::Matcher;
use crate::metrics::{LatencyBook, Metrics};
use crate::rules;
use crate::sink::alertmanager::AlertmanagerTarget;
use crate::sink::deliver::{Runner, Target};
use crate::sink::email::{EmailTarget, email_name};
use crate::sink::file::FileTarget;
use crate::sink::outbox::Outbox;
use crate::sink::webhook::{WebhookTarget, webhook_name};
use crate::source::SourceContext;
use crate::source::follow::{Follow, FollowPos, source_name};
use crate::source::http::{Intake, IntakeGate};

/// Runs the service until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let (rules, rules_text) = rules::load(settings.rules.as_deref())?;
    let rules = Arc::new(rules);
    // Tested templates: a failing example refuses the rules at start too.
    crate::explain::examples::check_rules(&rules)?;
    let metrics = Arc::new(Metrics::new());
    let latency = Arc::new(LatencyBook::new());
    let shared = Arc::new(Shared::new(rules.clone(), metrics.clone(), latency.clone()));

    // Sinks and the outbox.
    let client = reqwest::Client::builder()
        .timeout(settings.retry.timeout)
        .build()
        .context("cannot build the HTTP client")?;
    let mut targets: Vec<Target> = Vec::new();
    let durable = settings.state_dir.is_some();
    let generator_url = format!("http://{}/v1/alerts", settings.listen);
    let mut names = Vec::new();
    if let Some(p) = &settings.alerts {
        names.push(format!("file:{}", p.display()));
    }
    for w in &settings.webhooks {
        names.push(webhook_name(&w.department, w.format, &w.url));
    }
    // Links in notifications: where people reach the status page.
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let smtp = settings.smtp()?;
    let email_routes = settings.email_routes();
    if smtp.is_some() {
        for e in &email_routes {
            names.push(email_name(&e.department));
        }
    }
    if let Some(am) = &settings.alertmanager {
        names.push(format!("alertmanager:{}", am.trim_end_matches('/')));
    }
    settings.fluvio.check()?;
    let fluvio_cluster = settings.fluvio.cluster()?;
    let fluvio_alerts = match (&fluvio_cluster, &settings.fluvio.alerts_topic) {
        (Some(c), Some(t)) => Some((c.clone(), t.clone())),
        _ => None,
    };
    if let Some((_, t)) = &fluvio_alerts {
        names.push(format!("fluvio:{t}"));
    }
    let outbox_dir = settings.state_dir.as_ref().map(|d| d.join("outbox"));
    let outbox =
        Arc::new(Outbox::open(outbox_dir.as_deref(), &names).context("cannot open the outbox")?);
    if let Some(p) = &settings.alerts {
        let idx = 0;
        let mut cursor = outbox.cursor(idx);
        let t = FileTarget::open(p, durable, &mut cursor, outbox.cursor_saved(idx))
            .with_context(|| format!("cannot open alerts file {}", p.display()))?;
        outbox.set_cursor(idx, cursor);
        targets.push(Target::File(t));
    }
    for w in &settings.webhooks {
        let t = WebhookTarget::new(&w.department, &w.url, client.clone())
            .with_format(w.format, w.secret.clone())
            .with_link(Some(&public_url));
        let refusals = metrics.sink_refusals.with_label_values(&[&t.name()]);
        targets.push(Target::Webhook(t.with_refusals(refusals)));
    }
    if let Some(smtp) = &smtp {
        for e in &email_routes {
            targets.push(Target::Email(Box::new(EmailTarget::new(
                &e.department,
                &e.to,
                smtp,
                Some(&public_url),
                settings.retry.timeout,
            )?)));
        }
    }
    if let Some(am) = &settings.alertmanager {
        targets.push(Target::Alertmanager(AlertmanagerTarget::new(
            am,
            client.clone(),
            &generator_url,
        )));
    }
    #[cfg(feature = "fluvio")]
    if let Some((cluster, topic)) = &fluvio_alerts {
        let idx = names.len() - 1;
        let resumed = durable && outbox.cursor_saved(idx);
        targets.push(Target::Fluvio(Box::new(
            crate::sink::fluvio::FluvioTarget::new(cluster, topic, resumed),
        )));
    }
    #[cfg(not(feature = "fluvio"))]
    let _ = fluvio_alerts;
    #[cfg(feature = "fluvio")]
    let dead_letter_queue = match (&fluvio_cluster, &settings.fluvio.dead_letter_topic) {
        (Some(c), Some(t)) => Some(
            crate::sink::fluvio::spawn_dead_letters(c, t, metrics.clone())
                .context("cannot start the dead-letter producer")?,
        ),
        _ => None,
    };
    #[cfg(not(feature = "fluvio"))]
    let dead_letter_queue = None;

    // The engine, recovered.
    let (tx, rx) = sync_channel::<Command>(settings.queue);
    let pcfg = PipelineConfig {
        rules: rules.clone(),
        rules_text,
        engine: EngineConfig {
            max_keys: settings.max_keys,
        },
        state_dir: settings.state_dir.clone(),
        dead_letter: settings.dead_letter.clone(),
        dead_letter_queue,
        idle: settings.idle_timeout,
        checkpoint_every: settings.checkpoint_interval,
        idempotency_horizon: settings.idempotency_horizon,
    };
    let pipeline = {
        let (outbox, shared) = (outbox.clone(), shared.clone());
        tokio::task::spawn_blocking(move || Pipeline::start(pcfg, outbox, shared)).await??
    };
    let positions = pipeline.positions();
    // Alertmanager re-sends what is open; it starts from the recovered state.
    let open_now: Vec<crate::alert::Alert> = shared
        .snapshot()
        .open_alerts
        .iter()
        .map(|a| a.alert.clone())
        .collect();
    for t in &mut targets {
        if let Target::Alertmanager(am) = t {
            am.set_resend(settings.alertmanager_resend, &open_now);
        }
    }
    let engine = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || pipeline.run(rx))?;

    // Dispatch: events to the engine thread, and the timer.
    let dispatch = dispatch::timer::DispatchHandle::new(tx.clone(), dispatch::timer::Clock::new());
    let timer = tokio::spawn(dispatch::timer::run_service(
        dispatch.clone(),
        shared.dispatch_due.subscribe(),
    ));

    // Delivery.
    let (drain_tx, drain_rx) = watch::channel::<Option<Instant>>(None);
    let mut sink_names = Vec::new();
    let mut runners = Vec::new();
    // The departments told by a webhook or e-mail of their own.
    let webhook_departments: Arc<std::collections::BTreeSet<String>> = Arc::new(
        targets
            .iter()
            .filter_map(|t| match t {
                Target::Webhook(w) => Some(w.department().to_owned()),
                Target::Email(e) => Some(e.department().to_owned()),
                _ => None,
            })
            .collect(),
    );
    for (index, target) in targets.into_iter().enumerate() {
        sink_names.push((target.name(), index));
        let on_delivered = delivered_hook(&target, &dispatch, &shared, &webhook_departments);
        let r = Runner {
            index,
            target,
            outbox: outbox.clone(),
            metrics: metrics.clone(),
            latency: latency.clone(),
            policy: settings.retry,
            on_delivered: Some(on_delivered),
        };
        runners.push(tokio::spawn(r.run(drain_rx.clone())));
    }
    // Sources.
    let source_ctx = SourceContext::new(tx.clone(), &shared);
    if settings.stdin {
        let ctx = source_ctx.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || crate::source::stdin::run(std::io::stdin().lock(), ctx))?;
    }
    for path in &settings.follow {
        let start = positions
            .get(&source_name(path))
            .and_then(|v| serde_json::from_value::<FollowPos>(v.clone()).ok());
        let f = Follow {
            path: path.clone(),
            start,
            poll: Duration::from_millis(100),
        };
        let ctx = source_ctx.clone();
        std::thread::Builder::new()
            .name("follow".into())
            .spawn(move || f.run(ctx))?;
    }

    #[cfg(feature = "fluvio")]
    if let (Some(cluster), Some(topic)) = (&fluvio_cluster, &settings.fluvio.topic) {
        let src = crate::source::fluvio::FluvioSource {
            cluster: cluster.clone(),
            topic: topic.clone(),
            partitions: settings.fluvio.partitions.clone(),
            start: settings.fluvio.start,
            max_bytes: settings.fluvio.max_bytes,
            positions: positions.clone(),
        };
        src.spawn(source_ctx.clone(), shared.source_health().clone())?;
    }

    // Reloads.
    let reload: Arc<
        dyn Fn() -> tokio::task::JoinHandle<Result<String, Vec<String>>> + Send + Sync,
    > = {
        let (path, tx, metrics) = (settings.rules.clone(), tx.clone(), metrics.clone());
        Arc::new(move || {
            let (path, tx, metrics) = (path.clone(), tx.clone(), metrics.clone());
            tokio::spawn(async move {
                let loaded = tokio::task::spawn_blocking(move || load_checked(path.as_deref()))
                    .await
                    .map_err(|e| vec![e.to_string()])?;
                let (r, m, text) = match loaded {
                    Ok(x) => x,
                    Err(errors) => {
                        metrics.rules_reloads.with_label_values(&["error"]).inc();
                        tracing::error!(errors = %errors.join("; "), "rules reload failed; keeping the rules in force");
                        return Err(errors);
                    }
                };
                let (reply, answer) = oneshot::channel();
                let cmd = Command::Reload {
                    rules: r,
                    matcher: m,
                    text,
                    reply: Some(reply),
                };
                let sent = tokio::task::spawn_blocking(move || tx.send(cmd).is_ok()).await;
                if !matches!(sent, Ok(true)) {
                    return Err(vec!["engine stopped".into()]);
                }
                let v = answer
                    .await
                    .map_err(|_| vec!["engine stopped".to_string()])?;
                match v {
                    Ok(v) => {
                        metrics.rules_reloads.with_label_values(&["ok"]).inc();
                        Ok(v)
                    }
                    Err(e) => {
                        metrics.rules_reloads.with_label_values(&["error"]).inc();
                        Err(vec![e])
                    }
                }
            })
        })
    };

    // Dry runs: the reload's loading and checks, then the engine thread
    // says what the new rules would do to its keys.
    let dry_run: api::DryRunFn = {
        let (path, tx) = (settings.rules.clone(), tx.clone());
        Arc::new(move || {
            let (path, tx) = (path.clone(), tx.clone());
            tokio::spawn(async move {
                let (r, _, _) = tokio::task::spawn_blocking(move || load_checked(path.as_deref()))
                    .await
                    .map_err(|e| vec![e.to_string()])??;
                let (reply, answer) = oneshot::channel();
                let cmd = Command::DryRun {
                    rules: r.clone(),
                    reply,
                };
                let sent = tokio::task::spawn_blocking(move || tx.send(cmd).is_ok()).await;
                if !matches!(sent, Ok(true)) {
                    return Err(vec!["engine stopped".into()]);
                }
                let plan = answer
                    .await
                    .map_err(|_| vec!["engine stopped".to_string()])?;
                Ok(api::dry_run_json(&plan, &r))
            })
        })
    };

    // HTTP.
    let token: Option<Arc<str>> = settings.token.as_deref().map(Arc::from);
    let dispatch_api = dispatch::http::DispatchApi {
        handle: dispatch.clone(),
        token: token.clone(),
        shared: shared.clone(),
    };
    let api = api::Api {
        shared: shared.clone(),
        intake: Intake {
            submit: source_ctx.submit.clone(),
            metrics: metrics.clone(),
            gate: IntakeGate::new(shared.lifecycle().clone()),
            token,
            max_body: settings.max_body,
            body_timeout: settings.body_timeout,
        },
        body_budget: settings.body_budget,
        reload: reload.clone(),
        dry_run,
        explainer: Default::default(),
        sinks: Arc::new(sink_names),
        outbox: outbox.clone(),
        dispatch: dispatch_api,
        display_offset_min: settings.display_offset_min,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, rules = %rules.version, businesses = rules.businesses.len(), templates = rules.templates.len(), durable, "hotspot is listening");
    shared.metrics.source_up.with_label_values(&["http"]).set(1);
    let (http_stop_tx, http_stop_rx) = watch::channel(false);
    let limits = server::Limits {
        header_timeout: settings.header_timeout,
        max_connections: settings.max_connections,
    };
    let server = tokio::spawn(server::serve(
        listener,
        api::router(api),
        limits,
        http_stop_rx,
    ));

    // Wait for a signal.
    drop(source_ctx);
    wait_for_stop(reload).await;
    let t0 = Instant::now();
    tracing::info!("shutting down: intake stopped, draining");
    shared.begin_shutdown();
    let _ = http_stop_tx.send(true);
    let tx_stop = tx.clone();
    let _ = tokio::task::spawn_blocking(move || tx_stop.send(Command::Shutdown).is_ok()).await;
    drop(tx);
    let _ = tokio::task::spawn_blocking(move || engine.join()).await;
    timer.abort();
    let _ = drain_tx.send(Some(Instant::now() + settings.drain));
    for r in runners {
        let _ = tokio::time::timeout(settings.drain + Duration::from_secs(1), r).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    let (delivery, processing) = latency.report();
    for (sink, p) in &delivery {
        tracing::info!(sink = %sink, count = p.count, p50_us = p.p50, p99_us = p.p99, p999_us = p.p999, max_us = p.max, "delivery latency");
    }
    tracing::info!(
        count = processing.count,
        p50_ns = processing.p50,
        p99_ns = processing.p99,
        p999_ns = processing.p999,
        "per-record processing time"
    );
    let pending: u64 = (0..names.len()).map(|i| outbox.depth(i)).sum();
    if pending > 0 {
        if durable {
            tracing::warn!(
                pending,
                "alert lines not yet delivered stay in the outbox for the next start"
            );
        } else {
            tracing::warn!(
                pending,
                "alert lines not delivered before exit (no --state-dir: they are lost)"
            );
        }
    }
    tracing::info!(elapsed_ms = t0.elapsed().as_millis() as u64, "stopped");
    Ok(())
}

/// What every reload does before the engine sees new rules: load and
/// validate the file, compile its matcher, run its template examples.
fn load_checked(
    path: Option<&std::path::Path>,
) -> Result<(Arc<rules::Rules>, Arc<Matcher>, String), Vec<String>> {
    let (r, text) = rules::load(path).map_err(|e| e.lines())?;
    let r = Arc::new(r);
    let m = Arc::new(Matcher::new(&r).map_err(|e| vec![e.to_string()])?);
    let examples = crate::explain::examples::check(&r, &m);
    if !examples.failures.is_empty() {
        return Err(examples.failures.iter().map(ToString::to_string).collect());
    }
    Ok((r, m, text))
}

/// What a sink tells the dispatch book when it delivers a line: the first
/// delivery of a firing line to a sink that tells its department starts
/// the alert's deadline. Such a sink is a webhook or e-mail of the
/// department (or a `*` one); for a department without either, any sink
/// (the alerts file, Alertmanager). The sink waits until the delivery is journaled
/// (see [`crate::sink::deliver::DeliveredHook`]).
fn delivered_hook(
    target: &Target,
    handle: &dispatch::timer::DispatchHandle,
    shared: &Arc<Shared>,
    webhook_departments: &Arc<std::collections::BTreeSet<String>>,
) -> crate::sink::deliver::DeliveredHook {
    let webhook = match target {
        Target::Webhook(w) => Some(w.department().to_owned()),
        Target::Email(e) => Some(e.department().to_owned()),
        _ => None,
    };
    let (handle, shared, departments) =
        (handle.clone(), shared.clone(), webhook_departments.clone());
    Arc::new(move |item: &crate::sink::outbox::Item| {
        let a = &item.alert;
        if !a.is_firing()
            || item
                .notice
                .as_ref()
                .is_some_and(|n| n.step.is_some() || n.suppressed.is_some())
        {
            return None;
        }
        let tells = match &webhook {
            Some(d) => d == "*" || *d == a.department,
            None => !departments.contains("*") && !departments.contains(&a.department),
        };
        let rules = shared.snapshot().rules.clone();
        let has_deadline = rules
            .department_index(&a.department)
            .is_some_and(|d| rules.departments[d].ack_within_ms.is_some());
        if !tells || !has_deadline {
            return None;
        }
        let event = dispatch::Event::Delivered {
            alert_id: a.alert_id.clone(),
            at: handle.clock.now_ms(),
        };
        let handle = handle.clone();
        Some(Box::pin(async move {
            loop {
                match handle.submit(event.clone()).await {
                    Ok(_) => return true,
                    Err(dispatch::timer::NotApplied::Stopped) => return false,
                    // The state directory cannot be written: intake has
                    // stopped too; try again until it can.
                    Err(dispatch::timer::NotApplied::Refused(_)) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }) as futures_util::future::BoxFuture<'static, bool>)
    })
}

async fn wait_for_stop(
    reload: Arc<dyn Fn() -> tokio::task::JoinHandle<Result<String, Vec<String>>> + Send + Sync>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading rules");
                drop(reload());
            }
        }
    }
}
