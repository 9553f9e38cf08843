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

impl PluginArgs {
    /// Loads every plugin the search path finds and registers its components. A plugin named
    /// with `--plugin` that fails to load is an error; one merely found on the search path is
    /// skipped with a warning, so a broken library in a shared folder cannot stop a run.
    pub fn activate(&self) -> anyhow::Result<Vec<sonic_plugins::LoadedPlugin>> {
        let mut loaded = Vec::new();
        for file in sonic_plugins::candidate_files(&self.search_path()) {
            let explicit = self.paths.iter().any(|p| p == &file);
            match sonic_plugins::load(&file).and_then(|p| p.register().map(|()| p)) {
                Ok(plugin) => {
                    tracing::info!("loaded plugin {}", plugin.path.display());
                    loaded.push(plugin);
                }
                Err(e) if explicit => return Err(e.into()),
                Err(e) => tracing::warn!("skipping plugin: {e}"),
            }
        }
        Ok(loaded)
    }
}
