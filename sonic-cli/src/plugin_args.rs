//! Plugin options shared by every subcommand that resolves named components.

use std::path::PathBuf;

use clap::Args;
use sonic_plugins::SearchPath;

#[derive(Debug, Args)]
pub struct PluginArgs {
    /// A plugin file or a directory of plugins, searched before SONIC_PLUGIN_PATH
    /// (repeatable).
    #[arg(long = "plugin", value_name = "PATH", global = true)]
    pub paths: Vec<PathBuf>,

    /// Load no plugins at all, whatever --plugin and SONIC_PLUGIN_PATH say.
    #[arg(long, global = true)]
    pub no_plugins: bool,
}

impl PluginArgs {
    pub fn search_path(&self) -> SearchPath {
        sonic_plugins::search_path(&self.paths, self.no_plugins)
    }
}
