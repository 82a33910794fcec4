//! The command line: `serve`, `migrate`, `trades` for opening and inspecting paper trades by hand, and
//! `users` for listing accounts and making `/link` codes, against the same database a running `serve` uses.

use crate::{config::Config, startup};
use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use domain::{
    CloseReason, Closing, InstrumentRegistry, Lots, NewTrade, Price, RateBook, Side, Trade, TradeId, TradeStatus,
    UserId, pnl,
};
use std::sync::Arc;
use store::{NewUser, Role, Store, TradeFilter};

#[derive(Debug, Parser)]
#[command(name = "signalpost", version, about = "Self-hosted trading signals for Discord")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole system (the default when no command is given).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// The signals the engine would have sent on a candle file, one per line.
    Scan(crate::commands::scan::ScanArgs),
    /// Train the two-stage reversal model and print its out-of-sample report.
    Train(crate::commands::train::TrainArgs),
    /// Run a strategy over a candle file and report its trades' metrics.
    Backtest(crate::commands::backtest::BacktestArgs),
    /// Parse provider messages (stdin, or every {"text": …} line of --jsonl FILE) into JSON objects.
    Parse(crate::commands::parse::ParseArgs),
    /// Open, list, show and close paper trades by hand.
    #[command(subcommand)]
    Trades(TradesCommand),
    /// List users and make one-time codes that link a Discord account (`/link`).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Register and list provider channels: Discord channels whose messages are parsed into signals.
    #[command(subcommand)]
    Providers(ProvidersCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Register a Discord channel as a signal provider.
    Add {
        /// The Discord channel id.
        #[arg(long)]
        channel: String,
        /// A name to show for it.
        #[arg(long)]
        name: String,
    },
    /// List the registered provider channels, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List every user, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make a one-time code for `/link` in Discord (single use, valid 15 minutes; replaces older codes).
    LinkCode {
        /// The account to link; defaults to the local account, created on first use.
        #[arg(long)]
        user: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time dashboard sign-in link for a user (valid 24 hours; replaces older links).
    SignInLink {
        /// User id, sign-in username or display name.
        user: String,
    },
    /// Set a user's dashboard password, read from the first line of stdin; ends their open sessions.
    SetPassword {
        /// User id, sign-in username or display name.
        user: String,
        /// The username to sign in with, when the user has none yet (default: their display name).
        #[arg(long)]
        username: Option<String>,
    },
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Services to run in this process, comma-separated. This version runs all of them together
    /// (feed, monitor, http); splitting them across processes comes with the NATS bus.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TradesCommand {
    /// Open a paper trade. Without --entry it opens at the latest price the running server saw.
    Open(OpenArgs),
    /// List trades, newest first.
    List(ListArgs),
    /// Show one trade and its history.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Close an open trade by hand, at --price or at the latest price the running server saw.
    Close {
        id: i64,
        #[arg(long)]
        price: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Instrument, e.g. EURUSD, XAUUSD, BTCUSDT.
    pub symbol: String,
    /// long/buy or short/sell.
    pub side: String,
    #[arg(long, default_value = "0.01")]
    pub lots: String,
    #[arg(long)]
    pub entry: Option<String>,
    #[arg(long = "sl")]
    pub stop_loss: Option<String>,
    #[arg(long = "tp")]
    pub take_profit: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    /// The account to open it for; defaults to the local account, created on first use.
    #[arg(long)]
    pub user: Option<i64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// open, closed or cancelled.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub user: Option<i64>,
    #[arg(long)]
    pub symbol: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

/// The account trades opened from the command line belong to when no --user is given.
const LOCAL_USER: &str = "local";

async fn local_user(store: &Arc<dyn Store>) -> anyhow::Result<UserId> {
    let users = store.list_users().await.context("could not list users")?;
    if let Some(user) = users.iter().find(|u| u.display_name == LOCAL_USER && u.discord_user_id.is_none()) {
        return Ok(user.id);
    }
    let user = store
        .create_user(&NewUser { discord_user_id: None, display_name: LOCAL_USER.into(), role: Role::Admin })
        .await
        .context("could not create the local user")?;
    Ok(user.id)
}

fn print_trade(trade: &Trade, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(trade)?);
    } else {
        let show = |p: Option<Price>| p.map_or("-".to_string(), |p| p.to_string());
        println!(
            "#{} {} {} {} lots @ {} sl {} tp {} | {}{}",
            trade.id,
            trade.symbol,
            trade.side,
            trade.lots,
            trade.entry,
            show(trade.stop_loss),
            show(trade.take_profit),
            trade.status,
            match (trade.close_reason, trade.exit_price) {
                (Some(reason), Some(exit)) => format!(
                    " {reason} @ {exit}, {} pips, {} profit",
                    trade.pips.map_or("-".into(), |p| p.to_string()),
                    trade.profit.map_or("-".into(), |p| p.to_string())
                ),
                _ => String::new(),
            }
        );
    }
    Ok(())
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = startup::open_store(config).await?;
    println!("migrations applied ({})", store.backend_name());
    Ok(())
}

pub async fn trades(config: &Config, command: TradesCommand) -> anyhow::Result<()> {
    let store = startup::open_store(config).await?;
    match command {
        TradesCommand::Open(args) => open(&store, config, args).await,
        TradesCommand::List(args) => {
            let status = match args.status.as_deref() {
                None => None,
                Some(s) => Some(
                    TradeStatus::parse(s)
                        .with_context(|| format!("unknown status {s:?}: use open, closed or cancelled"))?,
                ),
            };
            let symbol = match args.symbol.as_deref() {
                None => None,
                Some(s) => Some(InstrumentRegistry::global().get(s)?.symbol.clone()),
            };
            let filter = TradeFilter { user_id: args.user.map(UserId), status, symbol, limit: args.limit, offset: 0 };
            for trade in store.list_trades(&filter).await.context("could not list trades")? {
                print_trade(&trade, args.json)?;
            }
            Ok(())
        }
        TradesCommand::Show { id, json } => {
            let trade = store.get_trade(TradeId(id)).await?.with_context(|| format!("no trade #{id}"))?;
            print_trade(&trade, json)?;
            for update in store.trade_updates(trade.id).await.context("could not read the trade's history")? {
                if json {
                    println!("{}", serde_json::to_string(&update)?);
                } else {
                    println!(
                        "  {} {}{}",
                        update.created_at.to_rfc3339(),
                        update.kind,
                        update.price.map_or(String::new(), |p| format!(" @ {p}"))
                    );
                }
            }
            Ok(())
        }
        TradesCommand::Close { id, price, json } => close(&store, config, TradeId(id), price, json).await,
    }
}

/// Tells running servers about a change at once when they share a NATS bus; without one they notice it on
/// their next sync with the store, so a failure here loses nothing.
async fn announce(config: &Config, event: bus::Event) {
    let Some(url) = &config.nats_url else { return };
    let published = match bus::NatsBus::connect(url, &config.bus_prefix).await {
        Ok(nats) => bus::Bus::publish(&nats, event).await,
        Err(error) => Err(error),
    };
    if let Err(error) = published {
        tracing::warn!(%error, "could not announce the change on NATS; servers will see it on their next sync");
    }
}

async fn open(store: &Arc<dyn Store>, config: &Config, args: OpenArgs) -> anyhow::Result<()> {
    let instrument = InstrumentRegistry::global().get(&args.symbol)?;
    let side = Side::parse(&args.side)?;
    let last = store.last_price(&instrument.symbol).await.context("could not read the latest price")?;
    let entry = match (&args.entry, &last) {
        (Some(text), _) => Price::parse(text).context("--entry")?,
        (None, Some(tick)) => tick.entry_price(side),
        (None, None) => bail!(
            "no price for {} has been seen yet: pass --entry, or start `signalpost serve` so the feed records prices",
            instrument.symbol
        ),
    };
    // Replayed markets run on their own clock; stamping the trade with the market's time keeps its history in order.
    let opened_at = last.as_ref().map_or_else(Utc::now, |t| t.time);
    let user = match args.user {
        Some(id) => store.get_user(UserId(id)).await?.with_context(|| format!("no user #{id}"))?.id,
        None => local_user(store).await?,
    };
    let optional = |v: &Option<String>, what: &str| -> anyhow::Result<Option<Price>> {
        v.as_deref().map(|s| Price::parse(s).with_context(|| what.to_string())).transpose()
    };
    let mut new = NewTrade::new(
        user,
        instrument.symbol.as_str(),
        side,
        entry,
        Lots::parse(&args.lots).context("--lots")?,
        optional(&args.stop_loss, "--sl")?,
        optional(&args.take_profit, "--tp")?,
        opened_at,
    )?;
    new.notes = args.notes;
    let opened = store.open_trade(&new).await.context("could not store the trade")?;
    announce(config, bus::Event::TradeOpened { trade: opened.trade.clone() }).await;
    print_trade(&opened.trade, args.json)
}

async fn close(
    store: &Arc<dyn Store>,
    config: &Config,
    id: TradeId,
    price: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let account = config.account_currency.as_str();
    let trade = store.get_trade(id).await?.with_context(|| format!("no trade #{id}"))?;
    if trade.status != TradeStatus::Open {
        bail!("trade #{id} is already {}", trade.status);
    }
    let instrument = InstrumentRegistry::global().get(trade.symbol.as_str())?;
    let last = store.last_price(&trade.symbol).await.context("could not read the latest price")?;
    let (exit, at) = match (price, &last) {
        (Some(text), _) => (Price::parse(&text).context("--price")?, last.as_ref().map_or_else(Utc::now, |t| t.time)),
        (None, Some(tick)) => (tick.exit_price(trade.side), tick.time),
        (None, None) => bail!("no price for {} has been seen yet: pass --price", trade.symbol),
    };
    instrument.check_precision(exit)?;
    let mut rates = RateBook::default();
    // A cross is converted to the account currency through the latest price of its quote currency.
    for pair in [format!("{}{account}", instrument.quote), format!("{account}{}", instrument.quote)] {
        if let Ok(i) = InstrumentRegistry::global().get(&pair)
            && let Some(tick) = store.last_price(&i.symbol).await?
        {
            rates.set(i.symbol.as_str(), tick.mid());
        }
    }
    let outcome = pnl::outcome(instrument, trade.side, trade.entry, exit, trade.lots, &rates, account);
    let closing = Closing::new(exit, CloseReason::ManualClose, at.max(trade.opened_at), &outcome);
    match store.close_trade(id, &closing).await.context("could not close the trade")? {
        Some(closed) => {
            announce(config, bus::Event::TradeClosed { trade: closed.clone() }).await;
            print_trade(&closed, json)
        }
        None => bail!("trade #{id} was closed by something else first"),
    }
}

pub async fn users(config: &Config, command: UsersCommand) -> anyhow::Result<()> {
    let store = startup::open_store(config).await?;
    match command {
        UsersCommand::List { json } => {
            for user in store.list_users().await.context("could not list users")? {
                if json {
                    println!("{}", serde_json::to_string(&user)?);
                } else {
                    println!(
                        "#{} {} ({}) discord {} | {} | default lots {}",
                        user.id,
                        user.display_name,
                        user.role.as_str(),
                        user.discord_user_id.as_deref().unwrap_or("not linked"),
                        user.account_currency,
                        user.default_lots
                    );
                }
            }
            Ok(())
        }
        UsersCommand::LinkCode { user, json } => {
            let user = match user {
                Some(id) => store.get_user(UserId(id)).await?.with_context(|| format!("no user #{id}"))?.id,
                None => local_user(&store).await?,
            };
            let expires_at = Utc::now() + chrono::Duration::minutes(crate::slash::LINK_CODE_TTL_MINUTES);
            // Two users holding the same code is astronomically unlikely; a collision just draws again.
            let mut attempts = 0;
            let code = loop {
                let code = crate::slash::new_link_code()?;
                match store.create_link_code(user, &crate::slash::hash_link_code(&code), expires_at).await {
                    Ok(()) => break code,
                    Err(store::StoreError::Conflict { .. }) if attempts < 3 => attempts += 1,
                    Err(error) => return Err(error).context("could not store the link code"),
                }
            };
            if json {
                let shown = serde_json::json!({"user_id": user, "code": code, "expires_at": expires_at});
                println!("{shown}");
            } else {
                println!("{code}");
                eprintln!(
                    "Run `/link code:{code}` in Discord before {} to link user #{user}; the code works once.",
                    expires_at.format("%H:%M UTC")
                );
            }
            Ok(())
        }
        UsersCommand::SignInLink { user } => {
            let user = web::bootstrap::resolve_user(store.as_ref(), &user).await?;
            let (link, expires_at) =
                web::bootstrap::sign_in_link(store.as_ref(), &public_url(config), user.id, Utc::now())
                    .await
                    .context("could not make a sign-in link")?;
            println!("{link}");
            eprintln!(
                "Open it before {} to sign in to the dashboard as {} (#{}); it works once.",
                expires_at.format("%Y-%m-%d %H:%M UTC"),
                user.display_name,
                user.id
            );
            Ok(())
        }
        UsersCommand::SetPassword { user, username } => {
            let user = web::bootstrap::resolve_user(store.as_ref(), &user).await?;
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("could not read the password from stdin")?;
            let password = line.trim_end_matches(['\r', '\n']).to_string();
            let username =
                web::bootstrap::set_password(store.as_ref(), &user, username.as_deref(), password, Utc::now()).await?;
            eprintln!("Password set: {} (#{}) signs in to the dashboard as {username:?}.", user.display_name, user.id);
            Ok(())
        }
    }
}

/// The dashboard address links point at: SIGNALPOST_PUBLIC_URL, or the listener's configured address.
fn public_url(config: &Config) -> String {
    config.web.public_url.clone().unwrap_or_else(|| format!("http://{}", config.bind))
}

pub async fn providers(config: &Config, command: ProvidersCommand) -> anyhow::Result<()> {
    let store = startup::open_store(config).await?;
    match command {
        ProvidersCommand::Add { channel, name } => {
            let added = store
                .add_provider_channel(&channel, &name, "cli", Utc::now())
                .await
                .with_context(|| format!("could not register channel {channel}"))?;
            println!("provider channel {} ({}) registered", added.channel_id, added.name);
        }
        ProvidersCommand::List { json } => {
            for c in store.provider_channels().await.context("could not list provider channels")? {
                if json {
                    let row = serde_json::json!({
                        "channel_id": c.channel_id, "name": c.name, "added_by": c.added_by,
                        "enabled": c.enabled, "created_at": c.created_at,
                    });
                    println!("{row}");
                } else {
                    let state = if c.enabled { "enabled" } else { "disabled" };
                    println!("{}\t{}\t{state}\tadded by {} at {}", c.channel_id, c.name, c.added_by, c.created_at);
                }
            }
        }
    }
    Ok(())
}
