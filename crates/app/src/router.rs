//! The router: for each stored signal, picks the users whose settings want it, applies their daily caps
//! and per-pair cooldowns, and queues one notification per recipient.
//!
//! Routing 10,000 users in a few milliseconds rules out reading every user and writing every notification
//! while the decision is made, so (issue 4):
//! - one router routes at a time: the holder of the router lease ([`Store::acquire_router_lease`]). Every
//!   routing write checks the lease's epoch in its own transaction, so a router that lost the lease (paused,
//!   partitioned, or simply slower than a takeover) writes nothing, and the new holder starts from what the
//!   database holds after its takeover;
//! - the holder caches the users with their settings and reloads them only when the database's users
//!   version moves (triggers bump it on any user or settings change), and keeps every user's recent
//!   notifications in memory for the cap and cooldown checks, seeded from the database when it takes the
//!   lease and kept current with the log of changes it did not make (notifications given up on, or written
//!   by something other than the router);
//! - the decision becomes durable as one row, the signal's audience, in one short transaction; the per-user
//!   notification rows are written from it afterwards in batches by [`materialise_pending`]. UNIQUE (signal,
//!   user) stays the final guard, the outbox and inbox read only those rows, and a crash at any point leaves
//!   either no audience (the signal is routed again) or an audience whose remaining rows the next
//!   materialiser writes.
//!
//! Time for caps and cooldowns is the signal's own (its candle's close), not the wall clock, so a replay at
//! any speed sees the limits a live market would have; the lease runs on the injected clock.

use bus::{BusError, Event, Subscription};
use chrono::{DateTime, TimeDelta, Utc};
use domain::{Clock, Signal, SignalId, Symbol, UserId, UserSettings};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use store::{
    AudienceOutcome, CountedNotification, LimitChange, NewAudience, NotificationLimits, RouterLease, Store, StoreError,
    User,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a lease lasts without a routing write or a renewal. A crashed router's successor waits this
/// long; a live router renews every third of it.
pub const LEASE_TTL: TimeDelta = TimeDelta::seconds(10);

/// Notification rows written per materialising transaction: big enough to be cheap per row, small enough
/// that SQLite's single writer is not held for long (interactions write too).
pub const MATERIALISE_BATCH: u32 = 1000;

/// Signals a router that is not the leader remembers, to route them if it takes over from a leader that
/// died before routing them.
const BUFFERED_WHILE_FOLLOWING: usize = 256;

/// How a routing pass went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routed {
    /// Recipients recorded in the signal's audience.
    pub queued: usize,
    /// Users already notified about the signal, or, when the signal had been routed before, the size of
    /// that earlier audience (nothing was written).
    pub already: usize,
    pub declined: usize,
    pub capped: usize,
    pub cooling_down: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another router holds the lease and is routing; this one wrote nothing.
    #[error("another router holds the routing lease")]
    NotLeader,
    /// The lease was taken over since this router last routed; it wrote nothing.
    #[error("the routing lease was taken over by another router")]
    LeaseLost,
}

fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    domain::Timeframe::D1.bucket_start(t)
}

/// As the store keeps timestamps, so the in-memory comparisons match the database's.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    chrono::DurationRound::duration_trunc(t, TimeDelta::microseconds(1)).unwrap_or(t)
}

/// The routing decision's first half, in memory: which users want `signal`, each with the limits their
/// settings set, and how many declined it.
pub fn candidates(users: &[(User, UserSettings)], signal: &Signal) -> (Vec<(UserId, NotificationLimits)>, usize) {
    let now = signal.created_at;
    let window_start = day_start(now);
    let mut declined = 0;
    let wanted = users
        .iter()
        .filter(|(_, settings)| {
            let declines = settings.declines(signal).is_some();
            declined += usize::from(declines);
            !declines
        })
        .map(|(user, settings)| {
            let limits = NotificationLimits {
                window_start,
                max_in_window: settings.max_notifications_per_day,
                cooldown_start: (settings.notification_cooldown_minutes > 0)
                    .then(|| now - chrono::Duration::minutes(i64::from(settings.notification_cooldown_minutes))),
            };
            (user.id, limits)
        })
        .collect();
    (wanted, declined)
}

#[derive(Debug, Clone)]
struct Counted {
    signal: SignalId,
    symbol: Symbol,
    at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Send,
    Already,
    Capped,
    CoolingDown,
}

/// Every user's notifications that count toward the cap and the cooldown (not given up), created at or
/// after `horizon`: the same rows the store's per-user check counts, held in memory by the lease holder.
#[derive(Debug, Default)]
struct Limits {
    horizon: DateTime<Utc>,
    by_user: HashMap<UserId, Vec<Counted>>,
}

impl Limits {
    fn seeded(horizon: DateTime<Utc>, rows: Vec<CountedNotification>) -> Limits {
        let mut limits = Limits { horizon, by_user: HashMap::with_capacity(rows.len().min(1 << 16)) };
        for row in rows {
            limits.add(row.user_id, Counted { signal: row.signal_id, symbol: row.symbol, at: row.created_at });
        }
        limits
    }

    /// Idempotent, so a change already reflected in the seed applies harmlessly.
    fn add(&mut self, user: UserId, counted: Counted) {
        let list = self.by_user.entry(user).or_default();
        if !list.iter().any(|c| c.signal == counted.signal) {
            list.push(counted);
        }
    }

    fn apply(&mut self, changes: Vec<LimitChange>) {
        for LimitChange { notification: n, counts } in changes {
            if counts {
                self.add(n.user_id, Counted { signal: n.signal_id, symbol: n.symbol, at: n.created_at });
            } else if let Some(list) = self.by_user.get_mut(&n.user_id) {
                list.retain(|c| c.signal != n.signal_id);
            }
        }
    }

    /// The per-user store method's rules, in its order: already notified, daily cap, then cooldown.
    fn verdict(&self, user: UserId, signal: SignalId, symbol: &Symbol, limits: &NotificationLimits) -> Verdict {
        let Some(list) = self.by_user.get(&user) else {
            return if limits.max_in_window == 0 { Verdict::Capped } else { Verdict::Send };
        };
        if list.iter().any(|c| c.signal == signal) {
            return Verdict::Already;
        }
        let in_window = list.iter().filter(|c| c.at >= limits.window_start).count();
        if in_window >= limits.max_in_window as usize {
            return Verdict::Capped;
        }
        if let Some(start) = limits.cooldown_start
            && list.iter().any(|c| c.at >= start && c.symbol == *symbol)
        {
            return Verdict::CoolingDown;
        }
        Verdict::Send
    }

    fn prune(&mut self, horizon: DateTime<Utc>) {
        self.by_user.retain(|_, list| {
            list.retain(|c| c.at >= horizon);
            !list.is_empty()
        });
        self.horizon = horizon;
    }
}

#[derive(Debug)]
struct UsersCache {
    version: i64,
    users: Vec<(User, UserSettings)>,
    /// The longest cooldown anyone has: how far back the limits must reach.
    max_cooldown: TimeDelta,
}

/// The lease holder's routing state. One per process; see the module docs.
pub struct Router {
    clock: Arc<dyn Clock>,
    holder: String,
    lease: Option<RouterLease>,
    users: Option<UsersCache>,
    limits: Option<Limits>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("holder", &self.holder)
            .field("lease", &self.lease)
            .field("users", &self.users.as_ref().map(|u| (u.version, u.users.len())))
            .field("limits", &self.limits.as_ref().map(|l| (l.horizon, l.by_user.len())))
            .finish()
    }
}

impl Router {
    /// A router that takes the lease when it first routes. `holder` names it in the lease row; it must be
    /// unique among the routers sharing a database ([`Router::unique_holder`]). The store is passed to each
    /// call rather than kept, so a one-off router can borrow one.
    pub fn new(clock: Arc<dyn Clock>, holder: impl Into<String>) -> Router {
        Router { clock, holder: holder.into(), lease: None, users: None, limits: None }
    }

    /// A holder name no other router shares: host, process, start time and a counter.
    pub fn unique_holder() -> String {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        format!("{host}/{}/{nanos:x}/{n}", std::process::id())
    }

    pub fn lease(&self) -> Option<&RouterLease> {
        self.lease.as_ref()
    }

    /// Takes the lease if this router does not hold it, or renews it. `Ok(true)` when the lease was newly
    /// taken (everything cached before is dropped), `Err(NotLeader)` while another router holds it.
    pub async fn keep_lease(&mut self, store: &dyn Store) -> Result<bool, RouteError> {
        let now = self.clock.now();
        if let Some(lease) = &self.lease {
            if let Some(renewed) = store.renew_router_lease(lease, now, LEASE_TTL).await? {
                self.lease = Some(renewed);
                return Ok(false);
            }
            self.lost();
        }
        match store.acquire_router_lease(&self.holder, now, LEASE_TTL).await? {
            Some(lease) => {
                tracing::info!(holder = %self.holder, epoch = lease.epoch, "this process routes signals now");
                self.lease = Some(lease);
                self.limits = None;
                Ok(true)
            }
            None => Err(RouteError::NotLeader),
        }
    }

    /// Lets another router take over at once (at shutdown).
    pub async fn release(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        if let Some(lease) = self.lease.take() {
            store.release_router_lease(&lease).await?;
        }
        self.limits = None;
        Ok(())
    }

    fn lost(&mut self) {
        if self.lease.take().is_some() {
            tracing::warn!(holder = %self.holder, "another router took the routing lease over");
        }
        self.limits = None;
    }

    /// Decides `signal`'s recipients and records them durably as its audience. When this returns `Ok`, a
    /// crash loses nothing: the notifications are written from the audience by [`materialise_pending`]
    /// (here or in whichever process routes next). Routing a signal again changes nothing.
    pub async fn route(
        &mut self,
        store: &dyn Store,
        signal_id: SignalId,
        signal: &Signal,
    ) -> Result<Routed, RouteError> {
        if self.lease.is_none() {
            self.keep_lease(store).await?;
        }
        let Some(lease) = self.lease.clone() else { return Err(RouteError::NotLeader) };
        let Some(changes) = store.take_routing_changes(&lease).await? else {
            self.lost();
            return Err(RouteError::LeaseLost);
        };
        if self.users.as_ref().is_none_or(|u| u.version != changes.users_version) {
            self.reload_users(store, changes.users_version).await?;
        }
        let max_cooldown = self.users.as_ref().map_or(TimeDelta::zero(), |u| u.max_cooldown);
        let at = micros(signal.created_at);
        let needed = day_start(at).min(at - max_cooldown);
        match &mut self.limits {
            Some(limits) if limits.horizon <= needed => {
                limits.apply(changes.limit_changes);
                // Entries older than any check can reach are dropped now and then, not on every signal.
                if needed - limits.horizon > TimeDelta::days(2) {
                    limits.prune(needed);
                }
            }
            _ => self.seed(store, needed).await?,
        }

        let (users, limits) = match (&self.users, &self.limits) {
            (Some(users), Some(limits)) => (users, limits),
            _ => return Err(RouteError::LeaseLost),
        };
        let (wanted, declined) = candidates(&users.users, signal);
        let mut routed = Routed { declined, ..Routed::default() };
        let mut recipients = Vec::with_capacity(wanted.len());
        for (user, user_limits) in &wanted {
            match limits.verdict(*user, signal_id, &signal.symbol, user_limits) {
                Verdict::Send => recipients.push(*user),
                Verdict::Already => routed.already += 1,
                Verdict::Capped => routed.capped += 1,
                Verdict::CoolingDown => routed.cooling_down += 1,
            }
        }
        let audience = NewAudience { signal_id, symbol: signal.symbol.clone(), created_at: at, recipients };
        let outcome = store.record_audience(&lease, &audience, self.clock.now(), LEASE_TTL).await;
        match outcome {
            Ok(AudienceOutcome::Recorded) => {
                let limits = self.limits.get_or_insert_with(Limits::default);
                for user in &audience.recipients {
                    limits.add(*user, Counted { signal: signal_id, symbol: signal.symbol.clone(), at });
                }
                routed.queued = audience.recipients.len();
                if let Some(lease) = &mut self.lease {
                    lease.expires_at = self.clock.now() + LEASE_TTL;
                }
                Ok(routed)
            }
            Ok(AudienceOutcome::AlreadyRouted { recipients }) => Ok(Routed {
                declined: routed.declined,
                already: usize::try_from(recipients).unwrap_or(usize::MAX),
                ..Routed::default()
            }),
            Ok(AudienceOutcome::LeaseLost) => {
                self.lost();
                Err(RouteError::LeaseLost)
            }
            Err(error) => {
                // The commit may or may not have happened: start again from the database next time.
                self.limits = None;
                Err(error.into())
            }
        }
    }

    async fn reload_users(&mut self, store: &dyn Store, version: i64) -> Result<(), StoreError> {
        // Read after the version, so a change that lands in between only causes one more reload.
        let users = store.users_with_settings().await?;
        let max_cooldown = users
            .iter()
            .map(|(_, s)| TimeDelta::minutes(i64::from(s.notification_cooldown_minutes)))
            .max()
            .unwrap_or_else(TimeDelta::zero);
        self.users = Some(UsersCache { version, users, max_cooldown });
        Ok(())
    }

    /// Rebuilds the limits from the database: every audience's notifications are written first, so the
    /// notifications table is the whole truth (only the lease holder records audiences, and this one is
    /// not routing meanwhile). Changes logged from now on are applied on top.
    async fn seed(&mut self, store: &dyn Store, horizon: DateTime<Utc>) -> Result<(), StoreError> {
        self.limits = None;
        materialise_pending(store, MATERIALISE_BATCH, |_| {}).await?;
        let rows = store.counted_notifications_since(horizon).await?;
        tracing::debug!(rows = rows.len(), %horizon, "router limits seeded");
        self.limits = Some(Limits::seeded(horizon, rows));
        Ok(())
    }
}

/// Writes the notifications of every pending audience, `batch` rows per transaction, calling `written`
/// after each transaction with the rows it created; returns how many it created in all. Safe to run in
/// several places at once.
pub async fn materialise_pending(
    store: &dyn Store,
    batch: u32,
    mut written: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let pending = store.pending_audiences(16).await?;
        if pending.is_empty() {
            return Ok(total);
        }
        for audience in pending {
            loop {
                let progress = store.materialise_audience(audience.signal_id, batch).await?;
                total += progress.created;
                written(progress.created);
                if progress.remaining == 0 {
                    break;
                }
            }
        }
    }
}

/// Routes one signal and writes its notifications at once, as a one-off router (the benches, tools):
/// takes the lease, routes, materialises, releases. Fails with [`RouteError::NotLeader`] while a running
/// router holds the lease.
pub async fn route(store: &dyn Store, signal_id: SignalId, signal: &Signal) -> Result<Routed, RouteError> {
    let mut router = Router::new(Arc::new(domain::SystemClock), Router::unique_holder());
    let result = router.route(store, signal_id, signal).await;
    let written = materialise_pending(store, MATERIALISE_BATCH, |_| {}).await;
    router.release(store).await?;
    let routed = result?;
    written?;
    Ok(routed)
}

/// Writes pending notifications whenever woken (and at start, for what a crashed process left), and wakes
/// the outbox after every batch.
async fn materialiser(store: Arc<dyn Store>, wake: Arc<Notify>, outbox: Arc<Notify>, shutdown: CancellationToken) {
    let mut retry = tokio::time::interval(std::time::Duration::from_secs(5));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match materialise_pending(store.as_ref(), MATERIALISE_BATCH, |created| {
            if created > 0 {
                outbox.notify_one();
            }
        })
        .await
        {
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "could not write the notifications of a routed signal"),
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = retry.tick() => {}
        }
    }
}

/// Routes every signal announced on `events` until shutdown, while this process holds the router lease;
/// otherwise remembers the latest signals and routes them if it takes over. The caller subscribes before
/// any signal can be published, so none is missed at start-up.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut events: Box<dyn Subscription>,
    outbox: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut router = Router::new(clock, Router::unique_holder());
    let wake = Arc::new(Notify::new());
    let materialising = tokio::spawn(materialiser(store.clone(), wake.clone(), outbox, shutdown.clone()));
    let mut heartbeat = tokio::time::interval((LEASE_TTL / 3).to_std().unwrap_or(std::time::Duration::from_secs(3)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut waiting: VecDeque<(SignalId, Signal)> = VecDeque::new();

    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = heartbeat.tick() => None,
            event = events.next() => Some(event),
        };
        let heartbeat_tick = event.is_none();
        match event {
            None => {}
            Some(Ok(Event::SignalCreated { signal_id, signal })) => {
                waiting.push_back((signal_id, signal));
                if waiting.len() > BUFFERED_WHILE_FOLLOWING {
                    waiting.pop_front();
                }
            }
            Some(Ok(_)) => continue,
            Some(Err(BusError::Lagged(missed))) => {
                // Routing is idempotent, so catching up means routing the recent signals again.
                tracing::warn!(missed, "router fell behind; routing recent signals again");
                match store.recent_signals(missed.min(1000) as u32 + 100).await {
                    Ok(signals) => waiting.extend(signals.into_iter().rev().map(|s| (s.id, s.signal))),
                    Err(error) => tracing::error!(%error, "could not read recent signals to catch up"),
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "router's bus subscription ended");
                break;
            }
        }
        if heartbeat_tick || router.lease().is_none() {
            // Routing renews the lease as it writes; the heartbeat renews it between signals, and a follower
            // tries to take it over whenever something happens.
            match router.keep_lease(store.as_ref()).await {
                Ok(_) => {}
                Err(RouteError::NotLeader) => continue,
                Err(error) => {
                    tracing::error!(%error, "could not take or renew the routing lease");
                    continue;
                }
            }
        }
        let mut routed_any = false;
        while let Some((signal_id, signal)) = waiting.pop_front() {
            match router.route(store.as_ref(), signal_id, &signal).await {
                Ok(routed) => {
                    tracing::debug!(signal = %signal_id, ?routed, "signal routed");
                    routed_any |= routed.queued > 0;
                }
                Err(RouteError::NotLeader | RouteError::LeaseLost) => {
                    waiting.push_front((signal_id, signal));
                    break;
                }
                Err(error) => tracing::error!(%error, signal = %signal_id, "could not route a signal"),
            }
        }
        if routed_any {
            wake.notify_one();
        }
    }
    if let Err(error) = router.release(store.as_ref()).await {
        tracing::warn!(%error, "could not release the routing lease");
    }
    let _ = materialising.await;
}
