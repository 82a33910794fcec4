//! Start-up: connect and migrate the store, start the market feed, the position monitor and the HTTP
//! listener, and stop them all in order when shutdown is requested.

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
    Ok(ReplayFeed::new(series).with_speed(speed).with_start_at(config.replay.start_at))
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
        let feed = replay_feed(&config)?;
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
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
        tasks.spawn(crate::router::run(store.clone(), signals, outbox_wake.clone(), shutdown.clone()));
        if let Some(token) = &config.discord.token {
            let notifier =
                discord::client::DiscordNotifier::new(token.expose().to_string(), config.discord.api_base.clone())
                    .context("could not set up the Discord client")?;
            let notifier = Arc::new(notifier);
            if let Some(application_id) = &config.discord.application_id {
                tasks.spawn(crate::slash::register(notifier.clone(), application_id.clone(), shutdown.clone()));
            }
            let notifier: Arc<dyn discord::Notifier> = notifier;
            let outbox = crate::outbox::Outbox::new(store.clone(), notifier.clone(), clock.clone(), outbox_wake);
            tasks.spawn(outbox.run(shutdown.clone()));
            let closes = bus.subscribe().await.context("trade notices could not subscribe to the bus")?;
            tasks.spawn(crate::trade_notices::run(store.clone(), notifier, closes, shutdown.clone()));
            tracing::info!("Discord delivery on");
        }

        let (feed_tx, feed_rx) = mpsc::channel(4096);
        // Candle closes go on the bus only where other processes can consume them.
        let publish_candles = config.nats_url.is_some();
        tasks.spawn(pump(feed_rx, tick_tx, candle_tx, bus.clone(), metrics.clone(), clock.clone(), publish_candles));
        let feed_shutdown = shutdown.clone();
        tasks.spawn(async move {
            // When the replay ends its channel closes; the end is announced once the monitor has applied every
            // tick and the scanner has scanned every candle.
            match feed.run(feed_tx, feed_shutdown).await {
                Ok(stats) => {
                    tracing::info!(candles = stats.candles, ticks = stats.ticks, end = ?stats.end, "replay feed stopped");
                }
                Err(error) => tracing::error!(%error, "replay feed failed"),
            }
        });
        let (end_bus, end_metrics) = (bus.clone(), metrics.clone());
        tasks.spawn(async move {
            if ticks_done.await.is_ok() && candles_done.await.is_ok() {
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
                handler: crate::interactions::InteractionHandler::new(store.clone(), bus.clone(), clock.clone()),
            })),
            None => None,
        };
        let app = http::router(http::HttpState {
            store: store.clone(),
            metrics: metrics.clone(),
            interactions,
            clock: clock.clone(),
        });
        let http_shutdown = shutdown.clone();
        tasks.spawn(async move {
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

/// Routes feed events: ticks to the position monitor; candle closes, and the coarser candles resampled from
/// them (1h → 4h → 1d and so on up the chain), to the scanner and, when other processes listen, onto the bus.
async fn pump(
    mut feed: mpsc::Receiver<FeedEvent>,
    ticks: mpsc::Sender<domain::Tick>,
    candles: mpsc::Sender<ClosedCandle>,
    bus: Arc<dyn Bus>,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    publish_candles: bool,
) {
    let mut resamplers: HashMap<(Symbol, Timeframe), Vec<Resampler>> = HashMap::new();
    while let Some(event) = feed.recv().await {
        match event {
            FeedEvent::Tick(tick) => {
                if ticks.send(tick).await.is_err() {
                    break;
                }
            }
            FeedEvent::CandleClosed { symbol, timeframe, candle } => {
                let chain = resamplers.entry((symbol.clone(), timeframe)).or_insert_with(|| {
                    let mut chain = Vec::new();
                    let mut tf = timeframe;
                    while let Some(next) = tf.coarser() {
                        chain.push(Resampler::with_source(timeframe, next));
                        tf = next;
                    }
                    chain
                });
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
                    if candles.send(ClosedCandle { symbol: symbol.clone(), timeframe, candle }).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
