//! The slash commands Signalpost registers: `/link`, `/settings`, `/trades`, `/history`, `/stats` and
//! `/stop <trade_id>`. Register them with [`crate::DiscordNotifier::register_commands`].
//!
//! The option names here are the keys the app's handler reads from `Incoming::SlashCommand::options`:
//! `code` (`/link`), `pairs` (`/settings`), `page` (`/history`) and `trade_id` (`/stop`).

use twilight_model::application::command::{Command, CommandType};
use twilight_util::builder::command::{CommandBuilder, IntegerBuilder, StringBuilder};

/// Every command, ready for one bulk overwrite.
pub fn slash_commands() -> Vec<Command> {
    let simple = |name: &str, description: &str| CommandBuilder::new(name, description, CommandType::ChatInput).build();
    vec![
        CommandBuilder::new("link", "Link this Discord account to your Signalpost dashboard", CommandType::ChatInput)
            .option(
                StringBuilder::new("code", "The one-time code from the dashboard or `signalpost users link-code`")
                    .required(true)
                    .min_length(4)
                    .max_length(32),
            )
            .build(),
        CommandBuilder::new("settings", "Show and change your signal settings", CommandType::ChatInput)
            .option(
                StringBuilder::new("pairs", "Set your pairs as a list, e.g. EURUSD, XAUUSD, BTCUSDT (or: all)")
                    .max_length(1000),
            )
            .build(),
        simple("trades", "List your open trades"),
        CommandBuilder::new("history", "Show your closed trades, newest first", CommandType::ChatInput)
            .option(IntegerBuilder::new("page", "Which page of 10 (default 1)").min_value(1))
            .build(),
        simple("stats", "Show your win rate, pips and profit"),
        CommandBuilder::new("stop", "Close one of your open trades at the current price", CommandType::ChatInput)
            .option(IntegerBuilder::new("trade_id", "The trade to close (see /trades)").required(true).min_value(1))
            .build(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_valid_and_named_as_designed() {
        let commands = slash_commands();
        let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["link", "settings", "trades", "history", "stats", "stop"]);
        for command in &commands {
            assert!(command.description.len() <= 100 && command.name.len() <= 32, "{}", command.name);
        }
        let json = serde_json::to_value(&commands[5]).unwrap();
        assert_eq!(json["options"][0]["name"], "trade_id");
        assert_eq!(json["options"][0]["type"], 4);
        assert_eq!(json["options"][0]["required"], true);
        let link = serde_json::to_value(&commands[0]).unwrap();
        assert_eq!((link["options"][0]["name"].as_str(), link["options"][0]["type"].as_u64()), (Some("code"), Some(3)));
        assert_eq!(link["options"][0]["required"], true);
        let history = serde_json::to_value(&commands[3]).unwrap();
        assert_eq!(history["options"][0]["name"], "page");
        assert_eq!(history["options"][0]["type"], 4);
        assert_ne!(history["options"][0]["required"], true);
    }
}
