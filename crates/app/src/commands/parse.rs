//! `signalpost parse`: runs the provider-message parser on one message from stdin, or on every
//! `{"text": …}` line of a JSONL file, printing one JSON object per message.

use anyhow::Context;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// A file of JSON lines, each an object with a "text" field; without it the whole of stdin is one message.
    #[arg(long)]
    pub jsonl: Option<PathBuf>,
}

#[derive(Debug, serde::Deserialize)]
struct Line {
    text: String,
}

pub fn run(args: ParseArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.jsonl {
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("could not read the message from stdin")?;
            serde_json::to_writer(&mut out, &parser::parse(&text))?;
            writeln!(out)?;
        }
        Some(path) => {
            let file = std::fs::File::open(&path).with_context(|| format!("could not open {}", path.display()))?;
            let mut bad = 0usize;
            for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
                let number = index + 1;
                let line = line.with_context(|| format!("{}:{number}: could not read the line", path.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Line>(&line) {
                    Ok(Line { text }) => {
                        serde_json::to_writer(&mut out, &parser::parse(&text))?;
                        writeln!(out)?;
                    }
                    Err(error) => {
                        // Keep going: one bad line should not hide the results of the rest.
                        bad += 1;
                        out.flush()?;
                        eprintln!("{}:{number}: not a {{\"text\": …}} JSON object: {error}", path.display());
                    }
                }
            }
            out.flush()?;
            if bad > 0 {
                anyhow::bail!("{bad} malformed line(s) in {}", path.display());
            }
        }
    }
    out.flush()?;
    Ok(())
}
