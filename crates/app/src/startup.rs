//! Start-up: connect and migrate the store, start the market feed, the position monitor and the HTTP
//! listener, and stop them all in order when shutdown is requested.

use crate::feed_health::FeedHealth;
use crate::feed_subscriptions::FeedPairs;
use crate::scanner::{ClosedCandle, ScannerService};
use crate::{config::Config, http, metrics::Metrics, monitor::PositionMonitor};
use anyhow::Context;
use bus::{Bus, Event, InProcessBus};
use domain::{Clock, InstrumentRegistry, Symbol, Timeframe};
use market::{FeedEvent, LoadOptions, ReplayFeed, ReplaySeries, ReplaySpeed, Resampler};
use std::collections::HashMap;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use store::Store;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

/// A running Signalpost: what tests and `main` hold on to.
#[derive(Debug)]
pub struct Application {
    pub address: SocketAddr,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub metrics: Metrics,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

/// Connects to the configured database and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.database_url.expose();
    let store = store::connect(url)
        .await
        .with_context(|| format!("could not connect to the database at {}", store::redact_url(url)))?;
    store.migrate().await.context("could not apply database migrations")?;
    Ok(store)
}

/// Parses `SYMBOL:TIMEFRAME:PATH` and loads the file.
fn load_series(spec: &str) -> anyhow::Result<ReplaySeries> {
    let mut parts = spec.splitn(3, ':');
    let (Some(symbol), Some(timeframe), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("replay series {spec:?} is not SYMBOL:TIMEFRAME:PATH");
    };
    let instrument = InstrumentRegistry::global().get(symbol).with_context(|| format!("replay series {spec:?}"))?;
    let timeframe = Timeframe::parse(timeframe).with_context(|| format!("replay series {spec:?}"))?;
    let candles = market::load_candles(std::path::Path::new(path), &LoadOptions::default())
        .with_context(|| format!("could not load replay series {spec:?}"))?;
    Ok(ReplaySeries::new(instrument.symbol.clone(), timeframe, candles))
}

pub fn replay_feed(config: &Config) -> anyhow::Result<ReplayFeed> {
    let mut series: Vec<ReplaySeries> = if config.replay.series.is_empty() {
        market::bundled_series().context("could not load the bundled market data")?
    } else {
        config.replay.series.iter().map(|s| load_series(s)).collect::<anyhow::Result<_>>()?
    };
    for spec in &config.replay.ticks {
        let (symbol, path) =
            spec.split_once(':').with_context(|| format!("replay ticks {spec:?} is not SYMBOL:PATH"))?;
        let symbol =
            InstrumentRegistry::global().get(symbol).with_context(|| format!("replay ticks {spec:?}"))?.symbol.clone();
        let ticks = market::load_ticks(std::path::Path::new(path), &symbol)
            .with_context(|| format!("could not load replay ticks {spec:?}"))?;
        let Some(target) = series.iter_mut().find(|s| s.symbol == symbol) else {
            anyhow::bail!("replay ticks {spec:?} name {symbol}, which no replay series has");
        };
        target.ticks = Some(ticks);
    }
    let speed = if config.replay.speed == 0.0 {
        ReplaySpeed::Unpaced
    } else {
        ReplaySpeed::CandlesPerSecond(config.replay.speed)
    };
    Ok(ReplayFeed::new(series)
        .with_speed(speed)
        .with_start_at(config.replay.start_at)
        .with_gate(config.replay.gate.clone()))
}

impl Application {
    /// Starts every service; the listener is bound before this returns, so `address` is ready to use.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let bus: Arc<dyn Bus> = match &config.nats_url {
            Some(url) => Arc::new(
                bus::NatsBus::connect(url, &config.bus_prefix)
                    .await
                    .context("could not start the NATS bus (NATS_URL is set)")?,
            ),
            None => Arc::new(InProcessBus::default()),
        };
        Application::build_with_bus(config, clock, bus).await
    }

    /// As `build`, on a bus the caller made, so it can subscribe before anything happens.
    pub async fn build_with_bus(
        config: Config,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn Bus>,
    ) -> anyhow::Result<Application> {
        let store = open_store(&config).await?;
        let metrics = Metrics::new();
        // Live feeds report their connection to it and the pump every candle; `/healthz` and the dashboard read it.
        let feed_health = if config.feed == "replay" {
            FeedHealth::replay(clock.clone(), metrics.clone())
        } else {
            let grace = Duration::from_secs(config.feed_health.down_grace_secs);
            FeedHealth::live(&config.feed, Vec::new(), clock.clone(), grace, metrics.clone())
        };
        let shutdown = CancellationToken::new();
        let feed: Box<dyn market::MarketFeed> = match config.feed.as_str() {
            "binance" => {
                let feed = binance_feed(&config, store.as_ref(), clock.clone(), &feed_health).await?;
                let feed = binance_follow_settings(feed, &config, store.clone(), bus.as_ref(), &feed_health, &shutdown);
                Box::new(feed.await?)
            }
            "oanda" => Box::new(
                oanda_feed(&config, store.clone(), bus.as_ref(), clock.clone(), &feed_health, &shutdown).await?,
            ),
            "twelvedata" => {
                let feed = twelvedata_feed(&config, store.as_ref(), clock.clone(), &feed_health).await?;
                let feed =
                    twelvedata_follow_settings(feed, &config, store.clone(), bus.as_ref(), &feed_health, &shutdown);
                Box::new(feed.await?)
            }
            _ => Box::new(replay_feed(&config)?),
        };
        let replay = config.feed == "replay";
        let mut tasks = JoinSet::new();

        // The monitor loads open trades before the feed starts, so no tick passes a trade it should close.
        let monitor = PositionMonitor::start(
            store.clone(),
            bus.clone(),
            metrics.clone(),
            clock.clone(),
            config.account_currency.clone(),
        )
        .await
        .context("could not start the position monitor")?;
        let (tick_tx, tick_rx) = mpsc::channel(4096);
        let (ticks_done_tx, ticks_done) = oneshot::channel();
        tasks.spawn(monitor.run(
            tick_rx,
            shutdown.clone(),
            Duration::from_millis(config.monitor.sync_interval_ms),
            config.monitor.full_reload_every,
            ticks_done_tx,
        ));

        let model = crate::commands::model::load_model(config.model_path.as_deref())?;
        tracing::info!(model = %model.version, "reversal model loaded");
        let mut scanner = ScannerService::new(store.clone(), bus.clone(), clock.clone(), model);
        scanner.signals_stored = Some(metrics.signals_stored.clone());
        scanner.warm_up_only_stale_candles = config.feed != "replay";
        scanner.subscription_recheck = Duration::from_secs(config.live.subscription_recheck_secs);
        if config.feed != "replay" {
            scanner.warmup_from_store = config.live.scanner_warmup_candles;
        }
        let (candle_tx, candle_rx) = mpsc::channel(1024);
        let (candles_done_tx, candles_done) = oneshot::channel::<()>();
        let scanner_shutdown = shutdown.clone();
        tasks.spawn(async move {
            scanner.run(candle_rx, scanner_shutdown).await;
            let _ = candles_done_tx.send(());
        });

        // Notifications are queued for every subscriber (they are the dashboard's inbox too); they are
        // delivered to Discord only when a bot token is configured.
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        let signals = bus.subscribe().await.context("the router could not subscribe to the bus")?;
        tasks.spawn(crate::router::run(store.clone(), clock.clone(), signals, outbox_wake.clone(), shutdown.clone()));
        // The copier: provider and webhook signals become orders on followers' brokers, and their updates are
        // applied to the copied trades. Subscribed here, before the gateway or the webhook can publish.
        let cipher = key_cipher(&config)?;
        let quotes = Arc::new(broker::InMemoryQuotes::new());
        let copier_events = bus.subscribe().await.context("the copier could not subscribe to the bus")?;
        let brokers = crate::copier::BrokerDirectory::new(
            crate::copier::BrokerUrls {
                alpaca: config.alpaca.base_url.clone(),
                binance: config.binance.base_url.clone(),
            },
            cipher.clone(),
            quotes.clone(),
        );
        let copier = crate::copier::Copier::new(store.clone(), bus.clone(), clock.clone(), quotes.clone(), brokers);
        tasks.spawn(copier.run(copier_events, shutdown.clone()));
        // Deferred interaction answers (Details' chart) are sent as follow-ups, which need the bot's client and
        // the application id.
        let mut follow_ups: Option<Arc<dyn discord::FollowUps>> = None;
        if let Some(token) = &config.discord.token {
            let notifier =
                discord::client::DiscordNotifier::new(token.expose().to_string(), config.discord.api_base.clone())
                    .context("could not set up the Discord client")?;
            let notifier = Arc::new(notifier);
            if config.discord.application_id.is_some() {
                follow_ups = Some(notifier.clone());
            }
            if let Some(application_id) = &config.discord.application_id {
                tasks.spawn(crate::slash::register(notifier.clone(), application_id.clone(), shutdown.clone()));
            }
            // Interactions also arrive over the gateway, into the same handler as the HTTP endpoint's.
            if crate::gateway::is_off(config.discord.gateway_url.as_deref()) {
                tracing::info!("Discord gateway off (DISCORD_GATEWAY_URL); interactions only at the HTTP endpoint");
            } else {
                let gateway = discord::gateway::Gateway::new(discord::gateway::GatewaySettings {
                    token: token.expose().to_string(),
                    url: config.discord.gateway_url.clone(),
                })
                .context("could not set up the Discord gateway")?;
                let handler = Arc::new(
                    crate::interactions::InteractionHandler::new(store.clone(), bus.clone(), clock.clone())
                        .with_follow_ups(follow_ups.clone()),
                );
                let providers = crate::providers::Providers::new(store.clone(), bus.clone(), clock.clone());
                tasks.spawn(crate::gateway::run(
                    gateway,
                    handler,
                    notifier.clone(),
                    metrics.clone(),
                    shutdown.clone(),
                    providers,
                ));
            }
            let notifier: Arc<dyn discord::Notifier> = notifier;
            // Taken before the feed starts: signals stored until now waited while Discord was off, and their
            // notifications may have gone stale.
            let newest = store.recent_signals(1).await.context("could not read the newest signal")?;
            let backlog_until = newest.first().map_or(domain::SignalId(0), |s| s.id);
            let ttl = config.notification_ttl_minutes.map(|m| {
                i64::try_from(m).ok().and_then(chrono::Duration::try_minutes).unwrap_or(chrono::Duration::MAX)
            });
            let outbox = crate::outbox::Outbox::new(store.clone(), notifier.clone(), clock.clone(), outbox_wake)
                .with_expiry(crate::outbox::Expiry { backlog_until, ttl });
            tasks.spawn(outbox.run(shutdown.clone()));
            let closes = bus.subscribe().await.context("trade notices could not subscribe to the bus")?;
            let sender = crate::trade_notices::TradeNotices::new(store.clone(), notifier, clock.clone())
                .with_metrics(metrics.clone());
            let running = crate::trade_notices::RunningUpdates::new(store.clone(), clock.clone())
                .waking(sender.waker())
                .with_metrics(metrics.clone());
            tasks.spawn(sender.run(closes, shutdown.clone()));
            tasks.spawn(running.run(crate::trade_notices::RUNNING_TICK, shutdown.clone()));
            tracing::info!("Discord delivery on");
        }

        // Closed candles are stored (in batches, off the pump's path) for Details and for warm-ups after a restart.
        let candle_writer = crate::candle_store::spawn(store.clone());
        let candles_stored = candle_writer.finished;
        let (feed_tx, feed_rx) = mpsc::channel(4096);
        // Candle closes go on the bus only where other processes can consume them.
        let publish_candles = config.nats_url.is_some();
        tasks.spawn(pump(
            feed_rx,
            quotes,
            tick_tx,
            candle_tx,
            candle_writer.sender,
            bus.clone(),
            metrics.clone(),
            clock.clone(),
            publish_candles,
            feed_health.clone(),
            // A live feed's coarser candles continue the stored ones; a replay's store may hold another run's.
            (config.feed != "replay").then(|| store.clone()),
        ));
        if config.feed != "replay" {
            tasks.spawn(feed_health.clone().run_checks(crate::feed_health::CHECK_INTERVAL, shutdown.clone()));
        }
        let feed_shutdown = shutdown.clone();
        tasks.spawn(async move {
            // When the replay ends its channel closes; the end is announced once the monitor has applied every
            // tick and the scanner has scanned every candle.
            match feed.run(feed_tx, feed_shutdown).await {
                Ok(stats) => {
                    tracing::info!(candles = stats.candles, ticks = stats.ticks, end = ?stats.end, "market feed stopped");
                }
                Err(error) => tracing::error!(%error, "market feed failed"),
            }
        });
        let (end_bus, end_metrics) = (bus.clone(), metrics.clone());
        tasks.spawn(async move {
            // The writer ends once the pump (its only sender) has passed on the last candle and it was stored.
            // A live feed ends only at shutdown, which is no "end of the market data".
            if replay && ticks_done.await.is_ok() && candles_done.await.is_ok() && candles_stored.await.is_ok() {
                end_metrics.replay_finished.set(1);
                if let Err(error) = end_bus.publish(Event::FeedFinished { feed: "replay".into() }).await {
                    tracing::warn!(%error, "could not announce the end of the feed");
                }
            }
        });

        let listener = tokio::net::TcpListener::bind(&config.bind)
            .await
            .with_context(|| format!("could not listen on {}", config.bind))?;
        let address = listener.local_addr().context("listener has no local address")?;
        let interactions = match &config.discord.public_key {
            Some(key) => Some(Arc::new(http::InteractionEndpoint {
                verifier: discord::signature::InteractionVerifier::new(key)
                    .context("DISCORD_PUBLIC_KEY is not a valid Ed25519 public key")?,
                handler: crate::interactions::InteractionHandler::new(store.clone(), bus.clone(), clock.clone())
                    .with_follow_ups(follow_ups.clone()),
            })),
            None => None,
        };
        let dashboard =
            dashboard_state(&config, store.clone(), clock.clone(), address)?.with_bus(bus.clone()).with_cipher(cipher);
        let dashboard = dashboard.with_feed_status(Arc::new(feed_health.clone()));
        if config.web.first_run_admin {
            first_run_admin(store.as_ref(), &dashboard.config.public_url, clock.now()).await?;
        }
        let http_state = http::HttpState {
            store: store.clone(),
            metrics: metrics.clone(),
            interactions,
            clock: clock.clone(),
            feed: Some(feed_health),
        };
        let app = http::router_with_dashboard(http_state, dashboard);
        let http_shutdown = shutdown.clone();
        tasks.spawn(async move {
            // TCP_NODELAY: a server-sent event or a reply written soon after the last one would otherwise wait
            // for the client's delayed ACK (40 ms on Linux).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                let _ = tcp.set_nodelay(true);
            });
            let server = axum::serve(listener, app).with_graceful_shutdown(http_shutdown.cancelled_owned());
            if let Err(error) = server.await {
                tracing::error!(%error, "http server failed");
            }
        });
        tracing::info!(%address, database = store.backend_name(), "signalpost started");
        Ok(Application { address, store, bus, metrics, shutdown, tasks })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// A handle that stops the application when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for shutdown, then for every service to finish (at most 10 s).
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        let drain = async {
            while let Some(result) = self.tasks.join_next().await {
                if let Err(error) = result
                    && error.is_panic()
                {
                    tracing::error!(%error, "a service panicked");
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), drain).await.is_err() {
            tracing::warn!("services did not stop within 10 s; aborting them");
            self.tasks.abort_all();
        }
        tracing::info!("signalpost stopped");
        Ok(())
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.run_until_stopped().await
    }
}

/// Where the server keeps files of its own (the generated secret key): the SQLite database's directory, or
/// the working directory for PostgreSQL.
pub fn data_dir(database_url: &str) -> std::path::PathBuf {
    let path = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"));
    let file = path.map(|p| p.split('?').next().unwrap_or(p)).filter(|p| !p.is_empty() && *p != ":memory:");
    match file.and_then(|f| std::path::Path::new(f).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// The key that seals followers' broker keys: `SIGNALPOST_SECRET_KEY` (base64, 32 bytes), else
/// `signalpost.key` in the data directory, generated on first start.
pub fn key_cipher(config: &Config) -> anyhow::Result<Arc<store::KeyCipher>> {
    let cipher = match &config.secret_key {
        Some(key) => store::KeyCipher::from_base64(key.expose().trim())
            .context("SIGNALPOST_SECRET_KEY is not a base64 key of 32 bytes")?,
        None => {
            let path = data_dir(config.database_url.expose()).join("signalpost.key");
            store::KeyCipher::load_or_create(&path)
                .with_context(|| format!("could not read or create the secret key file {}", path.display()))?
        }
    };
    Ok(Arc::new(cipher))
}

/// The dashboard's state from configuration; the public URL defaults to the listener's own address.
pub fn dashboard_state(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    address: SocketAddr,
) -> anyhow::Result<web::WebState> {
    let public_url = config.web.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
    let mut web_config = web::WebConfig::new(&public_url);
    if let (Some(client_id), Some(secret)) = (&config.web.discord_client_id, &config.web.discord_client_secret) {
        web_config.discord_oauth = Some(web::DiscordOAuthConfig {
            client_id: client_id.clone(),
            client_secret: secret.expose().to_string(),
            base_url: config.web.discord_oauth_base.clone().unwrap_or_else(|| crate::config::DISCORD_OAUTH_BASE.into()),
        });
    }
    web_config.tradingview_secret =
        config.web.tradingview_secret.as_ref().and_then(|s| web::webhooks::WebhookSecret::new(s.expose()));
    web::WebState::new(store, clock, web_config).context("could not set up the dashboard's HTTP client")
}

/// On a first start (no admin yet) creates the `admin` account and prints a one-time sign-in link for it
/// on stderr: stdout's first line is the listening address that scripts read.
pub async fn first_run_admin(
    store: &dyn Store,
    public_url: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    if let Some((link, expires_at)) =
        web::bootstrap::first_run(store, public_url, now).await.context("could not create the first admin account")?
    {
        eprintln!(
            "\nFirst start: created the dashboard account `{}` (admin). Sign in once with this link before {}:\n\n    \
             {link}\n\nThen set a password with `signalpost users set-password {}`, or get a new link with \
             `signalpost users sign-in-link {}`.\n",
            web::bootstrap::FIRST_ADMIN,
            expires_at.format("%Y-%m-%d %H:%M UTC"),
            web::bootstrap::FIRST_ADMIN,
            web::bootstrap::FIRST_ADMIN,
        );
    }
    Ok(())
}

/// Routes feed events: ticks to the position monitor; candle closes, and the coarser candles resampled from
/// them (1h → 4h → 1d and so on up the chain), to the scanner, to the candle store and, when other processes
/// listen, onto the bus.
#[allow(clippy::too_many_arguments)]
async fn pump(
    mut feed: mpsc::Receiver<FeedEvent>,
    quotes: Arc<broker::InMemoryQuotes>,
    ticks: mpsc::Sender<domain::Tick>,
    candles: mpsc::Sender<ClosedCandle>,
    stored: mpsc::Sender<crate::candle_store::StoredCandle>,
    bus: Arc<dyn Bus>,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    publish_candles: bool,
    health: FeedHealth,
    warm_store: Option<Arc<dyn Store>>,
) {
    let mut resamplers: HashMap<(Symbol, Timeframe), Vec<Resampler>> = HashMap::new();
    while let Some(event) = feed.recv().await {
        match event {
            FeedEvent::Tick(tick) => {
                // The copier's paper brokers and market-entry sizing read the latest quote from here.
                quotes.update(&tick);
                if ticks.send(tick).await.is_err() {
                    break;
                }
            }
            FeedEvent::CandleClosed { symbol, timeframe, candle } => {
                let received = std::time::Instant::now();
                health.candle_closed(&symbol, timeframe, candle.close_time(timeframe));
                let chain = match resamplers.entry((symbol.clone(), timeframe)) {
                    std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        let store = warm_store.as_deref();
                        entry.insert(
                            crate::feed_subscriptions::resampler_chain(store, &symbol, timeframe, &candle).await,
                        )
                    }
                };
                let mut closed = vec![(timeframe, candle.clone())];
                for resampler in chain.iter_mut() {
                    let to = resampler.timeframe();
                    closed.extend(resampler.push(&candle).map(|c| (to, c)));
                }
                for (timeframe, candle) in closed {
                    metrics.candles_closed.inc();
                    if publish_candles {
                        let event = Event::CandleClosed {
                            symbol: symbol.clone(),
                            timeframe,
                            candle: candle.clone(),
                            closed_at: clock.now(),
                        };
                        if let Err(error) = bus.publish(event).await {
                            tracing::warn!(%error, "could not publish a candle close");
                        }
                    }
                    let to_store =
                        crate::candle_store::StoredCandle { symbol: symbol.clone(), timeframe, candle: candle.clone() };
                    // Warned about once: after the first failure the channel reports itself closed.
                    if !stored.is_closed() && stored.send(to_store).await.is_err() {
                        tracing::warn!("the candle writer stopped; closed candles are no longer stored");
                    }
                    let time = candle.time;
                    if candles.send(ClosedCandle { symbol: symbol.clone(), timeframe, candle }).await.is_err() {
                        return;
                    }
                    // A wait here is back-pressure from the candle writer or the scanner (issue 7's latency).
                    tracing::debug!(%symbol, %timeframe, %time, queued = ?received.elapsed(), "candle handed on");
                }
            }
        }
    }
}

/// What each live feed serves of users' settings, its configured extra pairs, and its fallback pair.
pub fn feed_pairs(config: &Config, feed: &str) -> FeedPairs {
    use domain::AssetClass;
    let (serves, extra, fallback): (crate::feed_subscriptions::Serves, _, _) = match feed {
        "oanda" => (
            Arc::new(|i| matches!(i.asset_class, AssetClass::Forex | AssetClass::Metal)),
            config.oanda_feed.pairs.clone(),
            "EURUSD",
        ),
        "twelvedata" => (
            Arc::new(|i| matches!(i.asset_class, AssetClass::Forex | AssetClass::Metal | AssetClass::Stock)),
            config.twelvedata_feed.pairs.clone(),
            "EURUSD",
        ),
        _ => (
            Arc::new(|i| i.asset_class == AssetClass::Crypto && i.quote == "USDT"),
            config.binance_feed.pairs.clone(),
            "BTCUSDT",
        ),
    };
    FeedPairs { feed: feed.to_string(), serves, extra, fallback: (Symbol::normalize(fallback), Timeframe::H1) }
}

/// The open time of the last stored candle of each pair: a live feed's backfill starts after it.
async fn stored_resume_points(
    store: &dyn Store,
    pairs: &[(Symbol, Timeframe)],
) -> anyhow::Result<HashMap<(Symbol, Timeframe), chrono::DateTime<chrono::Utc>>> {
    let mut resume = HashMap::new();
    for (symbol, timeframe) in pairs {
        if let Some(last) = store
            .last_candle_time(symbol, *timeframe)
            .await
            .with_context(|| format!("could not read the last stored {symbol} {timeframe} candle"))?
        {
            resume.insert((symbol.clone(), *timeframe), last);
        }
    }
    Ok(resume)
}

/// Makes a live feed follow users' settings: starts the watch that re-derives its pairs when a setting
/// changes (see [`crate::feed_subscriptions`]) and keeps the feed health's list current. Returns what to hand
/// the feed's `with_updates`.
async fn follow_settings(
    pairs: FeedPairs,
    started_with: &[(Symbol, Timeframe)],
    config: &Config,
    store: Arc<dyn Store>,
    bus: &dyn Bus,
    health: &FeedHealth,
    shutdown: &CancellationToken,
) -> anyhow::Result<market::SubscriptionUpdates> {
    let recheck = Duration::from_secs(config.live.subscription_recheck_secs);
    let (now, mut updates) =
        crate::feed_subscriptions::spawn_subscription_watch(store, bus, pairs, recheck, shutdown.clone()).await?;
    // Settings saved between the feed's first read and the watch's: the feed takes the newer set at once.
    if now != started_with {
        updates.mark_changed();
    }
    let mut follow = updates.clone();
    let (health, stop) = (health.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                changed = follow.changed() => match changed {
                    Ok(()) => health.set_subscriptions(follow.borrow_and_update().clone()),
                    Err(_) => return,
                },
            }
        }
    });
    Ok(updates)
}

/// The live Binance feed, resuming each pair after the last candle the store holds.
pub async fn binance_feed(
    config: &Config,
    store: &dyn Store,
    clock: Arc<dyn Clock>,
    health: &FeedHealth,
) -> anyhow::Result<market::BinanceFeed> {
    let market = if config.binance_feed.market == "futures" {
        market::BinanceMarket::UsdFutures
    } else {
        market::BinanceMarket::Spot
    };
    let pairs = feed_pairs(config, "binance").current(store).await?;
    let mut feed_config = market::BinanceFeedConfig::new(market, pairs.clone());
    if let Some(url) = &config.binance.base_url {
        feed_config.rest_url = url.clone();
    }
    if let Some(url) = &config.binance_feed.stream_url {
        feed_config.stream_url = url.clone();
    }
    feed_config.warmup_candles = config.binance_feed.warmup_candles;
    feed_config.connection_lifetime = Duration::from_secs(config.binance_feed.connection_lifetime_secs);
    feed_config.resume_after = stored_resume_points(store, &pairs).await?;
    tracing::info!(pairs = pairs.len(), ?market, "Binance feed configured");
    let feed = market::BinanceFeed::new(feed_config, clock)
        .context("the Binance feed cannot serve the configured pairs")?
        .with_observer(health.observer());
    health.set_subscriptions(pairs);
    // An instrument Binance does not list is an error at start, not a silent empty stream.
    feed.check_instruments().await.context("the Binance feed cannot start")?;
    Ok(feed)
}

/// Makes the Binance feed follow users' settings: pairs gained or lost when a setting changes, without a
/// restart, a gained pair resuming after its last stored candle, and the feed health tracking the current set.
pub async fn binance_follow_settings(
    feed: market::BinanceFeed,
    config: &Config,
    store: Arc<dyn Store>,
    bus: &dyn Bus,
    health: &FeedHealth,
    shutdown: &CancellationToken,
) -> anyhow::Result<market::BinanceFeed> {
    let pairs = feed_pairs(config, "binance");
    let started_with = feed.config().subscriptions.clone();
    let updates = follow_settings(pairs, &started_with, config, store.clone(), bus, health, shutdown).await?;
    Ok(feed.with_updates(updates).with_resume_points(Arc::new(crate::feed_subscriptions::StoredResume(store))))
}

/// The live OANDA feed: forex and metal pairs from users' settings plus `oanda_feed.pairs` (EURUSD 1h when
/// that leaves nothing), each resuming after the last candle the store holds, following settings changes
/// without a restart like Binance's. The account's instruments are checked before the app starts.
pub async fn oanda_feed(
    config: &Config,
    store: Arc<dyn Store>,
    bus: &dyn Bus,
    clock: Arc<dyn Clock>,
    health: &FeedHealth,
    shutdown: &CancellationToken,
) -> anyhow::Result<market::OandaFeed> {
    let settings = &config.oanda_feed;
    let (Some(token), Some(account)) = (&settings.token, &settings.account_id) else {
        anyhow::bail!("SIGNALPOST_FEED=oanda needs OANDA_TOKEN and OANDA_ACCOUNT_ID");
    };
    let pairs = feed_pairs(config, "oanda").current(store.as_ref()).await?;
    let mut feed_config = market::OandaFeedConfig::new(token.expose(), account.clone(), pairs.clone());
    if let Some(url) = &settings.api_url {
        feed_config.rest_url = url.clone();
    }
    if let Some(url) = &settings.stream_url {
        feed_config.stream_url = url.clone();
    }
    feed_config.price = if settings.price == "ba" { market::OandaPrice::BidAsk } else { market::OandaPrice::Mid };
    feed_config.warmup_candles = settings.warmup_candles;
    feed_config.poll_delay = Duration::from_millis(settings.poll_delay_ms);
    feed_config.clock_recheck = Duration::from_millis(settings.recheck_ms);
    feed_config.resume_after = stored_resume_points(store.as_ref(), &pairs).await?;
    tracing::info!(pairs = pairs.len(), rest = %feed_config.rest_url, "OANDA feed configured");
    let feed = market::OandaFeed::new(feed_config, clock)
        .context("the OANDA feed cannot serve the configured pairs")?
        .with_observer(health.observer());
    health.set_subscriptions(pairs.clone());
    // A bad token, or an instrument the account cannot trade, is an error at start rather than an empty feed.
    feed.check_instruments().await.context("the OANDA feed cannot start")?;
    let updates =
        follow_settings(feed_pairs(config, "oanda"), &pairs, config, store.clone(), bus, health, shutdown).await?;
    Ok(feed.with_updates(updates).with_resume_points(Arc::new(crate::feed_subscriptions::StoredResume(store))))
}

/// The live Twelve Data feed, resuming each pair after the last candle the store holds. An instrument it
/// cannot serve (crypto, or one the registry does not know) is an error here; one Twelve Data does not list
/// ends the feed's run with its name at the first poll.
pub async fn twelvedata_feed(
    config: &Config,
    store: &dyn Store,
    clock: Arc<dyn Clock>,
    health: &FeedHealth,
) -> anyhow::Result<market::TwelveDataFeed> {
    let settings = &config.twelvedata_feed;
    let key = settings.api_key.as_ref().context("SIGNALPOST_FEED=twelvedata needs TWELVEDATA_API_KEY")?;
    let pairs = feed_pairs(config, "twelvedata").current(store).await?;
    let mut feed_config = market::TwelveDataFeedConfig::new(market::TwelveDataKey::new(key.expose()), pairs.clone());
    if let Some(url) = &settings.api_url {
        feed_config.rest_url = url.clone();
    }
    feed_config.credits_per_minute = settings.credits_per_minute;
    feed_config.credits_per_day = settings.credits_per_day;
    feed_config.warmup_candles = settings.warmup_candles;
    feed_config.poll_delay = Duration::from_secs(settings.poll_delay_secs);
    feed_config.recheck = Duration::from_millis(settings.recheck_ms);
    feed_config.resume_after = stored_resume_points(store, &pairs).await?;
    tracing::info!(
        pairs = pairs.len(),
        credits_per_minute = settings.credits_per_minute,
        "Twelve Data feed configured"
    );
    let feed = market::TwelveDataFeed::new(feed_config, clock)
        .context("the Twelve Data feed cannot serve the configured pairs")?
        .with_observer(health.observer());
    health.set_subscriptions(pairs);
    Ok(feed)
}

/// Makes the Twelve Data feed follow users' settings, as [`binance_follow_settings`] does for Binance.
pub async fn twelvedata_follow_settings(
    feed: market::TwelveDataFeed,
    config: &Config,
    store: Arc<dyn Store>,
    bus: &dyn Bus,
    health: &FeedHealth,
    shutdown: &CancellationToken,
) -> anyhow::Result<market::TwelveDataFeed> {
    let pairs = feed_pairs(config, "twelvedata");
    let started_with = feed.config().subscriptions.clone();
    let updates = follow_settings(pairs, &started_with, config, store.clone(), bus, health, shutdown).await?;
    Ok(feed.with_updates(updates).with_resume_points(Arc::new(crate::feed_subscriptions::StoredResume(store))))
}
