//! What can go wrong talking to the database, named so a caller can tell a bad request from a broken
//! database.

use domain::{SettingsError, SignalError, TradeError};

/// Every failure of a [`Store`](crate::Store) method.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme is neither SQLite nor PostgreSQL.
    #[error("unsupported database URL {url_redacted}: expected sqlite:PATH, sqlite://PATH or postgres://…")]
    UnsupportedUrl { url_redacted: String },

    /// The database could not be opened or reached. The URL has its password removed.
    #[error("cannot connect to the database at {url_redacted}: {source}")]
    Connect {
        url_redacted: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("applying database migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A statement failed; `op` names what the store was doing.
    #[error("database error while {op}: {source}")]
    Query {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// A write would break a uniqueness rule, such as a Discord account linked to two users.
    #[error("{op}: {detail}")]
    Conflict { op: &'static str, detail: String },

    /// A write refers to a user, signal, notification or trade that does not exist.
    #[error("{op}: it refers to a row that does not exist ({detail})")]
    MissingReference { op: &'static str, detail: String },

    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },

    /// A stored value cannot be read back as its type: the row was written by something other than this
    /// crate, or by a version with other rules.
    #[error("invalid stored value ({table}, column {column}): {reason}")]
    Corrupt { table: &'static str, column: String, reason: String },

    /// The input broke a domain rule; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// A rejected input, checked before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error(transparent)]
    Trade(#[from] TradeError),
    #[error("{0}")]
    Other(String),
}

impl From<SettingsError> for StoreError {
    fn from(e: SettingsError) -> Self {
        StoreError::Invalid(e.into())
    }
}

impl From<SignalError> for StoreError {
    fn from(e: SignalError) -> Self {
        StoreError::Invalid(e.into())
    }
}

impl From<TradeError> for StoreError {
    fn from(e: TradeError) -> Self {
        StoreError::Invalid(e.into())
    }
}

impl StoreError {
    /// Sorts a driver error: constraint violations and undecodable columns get their own variants so
    /// callers can react to them; everything else is a query failure of `op`.
    pub(crate) fn from_sqlx(op: &'static str, error: sqlx::Error) -> StoreError {
        match error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict { op, detail: db.message().to_string() }
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::MissingReference { op, detail: db.message().to_string() }
            }
            sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt {
                table: op,
                column: index.trim_matches('"').to_string(),
                reason: source.to_string(),
            },
            source => StoreError::Query { op, source },
        }
    }

    pub(crate) fn corrupt(table: &'static str, column: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { table, column: column.to_string(), reason: reason.to_string() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> StoreError {
        StoreError::Invalid(ValidationError::Other(message.into()))
    }
}

/// Removes the password from a database URL, both `user:password@host` and a `password=` parameter, so the
/// URL can be shown in errors and logs.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..].find(['/', '?', '#']).map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = &out[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let password_start = authority_start + colon + 1;
                out.replace_range(password_start..authority_start + at, "***");
            }
        }
    }
    if let Some(query_start) = out.find('?') {
        let (head, query) = out.split_at(query_start + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(redact_url("postgres://bob:s3cret@db:5432/sp"), "postgres://bob:***@db:5432/sp");
        assert_eq!(redact_url("postgres://bob@db/sp"), "postgres://bob@db/sp");
        assert_eq!(
            redact_url("postgresql://db/sp?user=a&password=x&sslmode=off"),
            "postgresql://db/sp?user=a&password=***&sslmode=off"
        );
        assert_eq!(redact_url("postgres://u:p@ss@host/db"), "postgres://u:***@host/db");
        assert_eq!(redact_url("sqlite://signalpost.db"), "sqlite://signalpost.db");
        assert_eq!(redact_url("sqlite:data/x.db?mode=rwc"), "sqlite:data/x.db?mode=rwc");
    }
}
