//! Logs go to stderr so that stdout carries only command output (`--json`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

const DEFAULT_LEVEL: &str = "warn";
/// Checked in this order; the first one set wins.
const FILTER_ENV_VARS: [&str; 2] = ["SONIC_LOG", "RUST_LOG"];

/// Installs the global subscriber. `-v`/`-q` win over the environment, as explicit flags
/// do everywhere else in the CLI.
pub fn init(verbose: u8, quiet: bool) {
    let mut rejected_env = None;
    let filter = match level_from_flags(verbose, quiet) {
        Some(level) => EnvFilter::new(level),
        None => match filter_from_env() {
            Some((var, value)) => EnvFilter::try_new(&value).unwrap_or_else(|err| {
                rejected_env = Some(format!("ignoring {var}={value:?}: {err}"));
                EnvFilter::new(DEFAULT_LEVEL)
            }),
            None => EnvFilter::new(DEFAULT_LEVEL),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr_wants_color())
        .init();
    if let Some(message) = rejected_env {
        tracing::warn!("{message}");
    }
}

fn level_from_flags(verbose: u8, quiet: bool) -> Option<&'static str> {
    match (quiet, verbose) {
        (true, _) => Some("error"),
        (false, 0) => None,
        (false, 1) => Some("info"),
        (false, 2) => Some("debug"),
        (false, _) => Some("trace"),
    }
}

fn filter_from_env() -> Option<(&'static str, String)> {
    FILTER_ENV_VARS.iter().find_map(|&var| {
        let value = std::env::var(var).ok()?;
        (!value.trim().is_empty()).then_some((var, value))
    })
}

/// Colour only for a terminal, and never when NO_COLOR is set (<https://no-color.org>).
fn stderr_wants_color() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_levels() {
        assert_eq!(level_from_flags(0, false), None);
        assert_eq!(level_from_flags(1, false), Some("info"));
        assert_eq!(level_from_flags(2, false), Some("debug"));
        assert_eq!(level_from_flags(5, false), Some("trace"));
        assert_eq!(level_from_flags(0, true), Some("error"));
    }
}
