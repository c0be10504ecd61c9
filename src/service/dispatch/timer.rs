//! The wall clock of dispatch: [`Clock`] stamps events, [`DispatchHandle`]
//! hands them to the engine thread, and [`run`] is the timer task that
//! wakes when the book's next step falls due (a reminder, an escalation, a
//! silence's end) and sends a tick.
//!
//! Timers are wall-clock timers on tokio's monotonic clock: a deadline is
//! `delivery time + ack_within`, both epoch milliseconds; [`Clock`] reads
//! epoch time as "the wall clock at start + monotonic time since", so a
//! step of the system clock (NTP, a manual change) neither fires every
//! deadline at once nor holds them back, and `tokio::time::pause` drives it
//! in tests. Across a restart the epoch times in the book carry over, so a
//! deadline that passed while the service was down fires at the first
//! tick after the start. A tick is journaled like every other event, so
//! the steps it took are re-taken identically after a crash.

use std::sync::mpsc::SyncSender;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::{Event, Reply};
use crate::service::pipeline::Command;

/// Epoch milliseconds from tokio's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall0: i64,
    mono0: tokio::time::Instant,
}

impl Clock {
    /// A clock reading the system's wall clock now.
    pub fn new() -> Clock {
        Clock::starting_at(crate::time::now_ms())
    }

    /// A clock that reads `wall0` now.
    pub fn starting_at(wall0: i64) -> Clock {
        Clock {
            wall0,
            mono0: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.wall0 + self.mono0.elapsed().as_millis() as i64
    }
}

/// Hands dispatch events to the engine thread (which journals, applies and
/// answers them).
#[derive(Clone)]
pub(crate) struct DispatchHandle {
    tx: SyncSender<Command>,
    pub clock: Clock,
}

impl DispatchHandle {
    pub fn new(tx: SyncSender<Command>, clock: Clock) -> DispatchHandle {
        DispatchHandle { tx, clock }
    }

    /// Sends `event` and waits for the book's answer; `Err` when it was not
    /// applied (the state directory cannot be written, or the engine
    /// stopped).
    pub async fn submit(&self, event: Event) -> Result<Reply, NotApplied> {
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.clone();
        let cmd = Command::Dispatch {
            event,
            reply: Some(reply),
        };
        let sent = tokio::task::spawn_blocking(move || tx.send(cmd).is_ok()).await;
        if !matches!(sent, Ok(true)) {
            return Err(NotApplied::Stopped);
        }
        match answer.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(cause)) => Err(NotApplied::Refused(cause)),
            Err(_) => Err(NotApplied::Stopped),
        }
    }
}

/// The timer task: sleeps until `due` (the book's next step, epoch ms)
/// and then calls `tick` with the time; returns when `due`'s sender is
/// gone or `tick` says the engine has stopped. `tick` is expected to have
/// the book apply the tick (and so move `due` on) before it returns; if
/// it fails, the next try is a second later.
pub(crate) async fn run<F, Fut>(clock: Clock, mut due: watch::Receiver<Option<i64>>, mut tick: F)
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<(), NotApplied>>,
{
    loop {
        let next = *due.borrow_and_update();
        let Some(at) = next else {
            if due.changed().await.is_err() {
                return;
            }
            continue;
        };
        let now = clock.now_ms();
        if at > now {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis((at - now) as u64)) => {}
                changed = due.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        match tick(clock.now_ms()).await {
            Ok(()) => {
                // The book moved `due` past this tick; a book that did not
                // (it cannot, but a loop must not spin) is asked again
                // only after a moment.
                if due.borrow().is_some_and(|d| d <= clock.now_ms()) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Err(NotApplied::Stopped) => return,
            Err(NotApplied::Refused(why)) => {
                tracing::warn!(reason = %why, "dispatch tick not applied; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotApplied {
    /// The engine has stopped (the service is shutting down).
    Stopped,
    /// Not journaled: the state directory cannot be written.
    Refused(String),
}

/// The production timer: ticks through the engine thread.
pub(crate) async fn run_service(handle: DispatchHandle, due: watch::Receiver<Option<i64>>) {
    let clock = handle.clock;
    run(clock, due, move |at| {
        let handle = handle.clone();
        async move { handle.submit(Event::Tick { at }).await.map(|_| ()) }
    })
    .await
}
