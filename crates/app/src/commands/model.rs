//! Where the stage-2 model comes from: the file `SIGNALPOST_MODEL` (or `--model`) names, or the model that
//! ships in the repository (`models/reversal-lr-v1.json`), compiled into the binary.

use anyhow::Context;
use engine::reversal::ReversalModel;
use std::{path::Path, sync::Arc};

/// The shipped model's file name, for messages.
pub const SHIPPED_MODEL: &str = "models/reversal-lr-v1.json";
const SHIPPED_TEXT: &str = include_str!("../../../../models/reversal-lr-v1.json");

/// Loads `path`, or the shipped model when None. A missing or corrupt file is an error naming it.
pub fn load_model(path: Option<&Path>) -> anyhow::Result<Arc<ReversalModel>> {
    let model = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read the model file {}", path.display()))?;
            ReversalModel::from_json(&text, &path.display().to_string())?
        }
        None => ReversalModel::from_json(SHIPPED_TEXT, SHIPPED_MODEL)?,
    };
    Ok(Arc::new(model))
}
