//! Where plugins are looked for, and which files there look like plugins.
//!
//! Nothing here opens a library: loading runs foreign initialisers, so it happens later and
//! only for files the user has agreed to load.

use std::collections::HashSet;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

/// Environment variable holding extra plugin directories, separated like `PATH`.
pub const PLUGIN_PATH_ENV: &str = "SONIC_PLUGIN_PATH";

/// Where a search path entry came from, in decreasing precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchSource {
    /// A `--plugin` argument: a plugin file or a directory of plugins.
    Cli,
    /// An entry of [`PLUGIN_PATH_ENV`].
    Env,
    /// The per-user plugin directory.
    User,
}

impl SearchSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchSource::Cli => "cli",
            SearchSource::Env => "env",
            SearchSource::User => "user",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchEntry {
    #[serde(serialize_with = "serialize_path_lossy")]
    pub path: PathBuf,
    pub source: SearchSource,
    pub exists: bool,
}

/// The ordered places plugins are taken from; earlier entries win on duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SearchPath {
    /// Set by `--no-plugins`; `entries` is then empty.
    pub disabled: bool,
    pub entries: Vec<SearchEntry>,
}

/// The plugin search path for this process: `cli_paths`, then [`PLUGIN_PATH_ENV`], then
/// the user data directory (`$XDG_DATA_HOME/sonic/plugins` on Linux).
pub fn search_path(cli_paths: &[PathBuf], no_plugins: bool) -> SearchPath {
    search_path_with(
        cli_paths,
        no_plugins,
        std::env::var_os(PLUGIN_PATH_ENV),
        user_plugin_dir(),
    )
}

/// The per-user plugin directory, if the platform has a home directory.
pub fn user_plugin_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "sonic").map(|dirs| dirs.data_dir().join("plugins"))
}

fn search_path_with(
    cli_paths: &[PathBuf],
    no_plugins: bool,
    env_value: Option<OsString>,
    user_dir: Option<PathBuf>,
) -> SearchPath {
    if no_plugins {
        return SearchPath {
            disabled: true,
            entries: Vec::new(),
        };
    }
    let cli = cli_paths
        .iter()
        .cloned()
        .map(|path| (path, SearchSource::Cli));
    // An empty PATH-style entry conventionally means the working directory; loading code
    // from wherever the user happens to stand is not something to do implicitly.
    let env = env_value
        .iter()
        .flat_map(std::env::split_paths)
        .filter(|path| !path.as_os_str().is_empty())
        .map(|path| (path, SearchSource::Env));
    let user = user_dir.into_iter().map(|path| (path, SearchSource::User));
    let entries = cli
        .chain(env)
        .chain(user)
        .map(|(path, source)| SearchEntry {
            exists: path.exists(),
            path,
            source,
        })
        .collect();
    SearchPath {
        disabled: false,
        entries,
    }
}

/// The plugin files the search path offers, in search path order and sorted by name within
/// each directory, keeping only the first occurrence of each file (compared by canonical
/// path). A `--plugin` path that is not a directory is taken as is, even when missing, so
/// that loading it reports the problem instead of the request vanishing.
pub fn candidate_files(search_path: &SearchPath) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    for entry in &search_path.entries {
        let found = if entry.source == SearchSource::Cli && !entry.path.is_dir() {
            vec![entry.path.clone()]
        } else {
            plugin_files_in(&entry.path)
        };
        for file in found {
            let identity = fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(identity) {
                files.push(file);
            }
        }
    }
    files
}

/// Files named `{DLL_PREFIX}sonic_*{DLL_SUFFIX}` directly inside `dir`, sorted. A directory
/// that is missing or unreadable offers nothing; `sonic doctor` shows which ones exist.
fn plugin_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(read_dir) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = read_dir
        .filter_map(Result::ok)
        .filter(|dir_entry| is_plugin_file_name(&dir_entry.file_name()))
        .map(|dir_entry| dir_entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn is_plugin_file_name(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let prefix = format!("{DLL_PREFIX}sonic_");
    name.len() > prefix.len() + DLL_SUFFIX.len()
        && name.starts_with(&prefix)
        && name.ends_with(DLL_SUFFIX)
}

/// Paths go into `--json` output; a non-UTF-8 path must not make that output fail.
fn serialize_path_lossy<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn plugin_name(stem: &str) -> String {
        format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}")
    }

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, b"not a real library").unwrap();
        path
    }

    fn sources(search_path: &SearchPath) -> Vec<SearchSource> {
        search_path
            .entries
            .iter()
            .map(|entry| entry.source)
            .collect()
    }

    #[test]
    fn orders_cli_then_env_then_user() {
        let cli_dir = tempfile::tempdir().unwrap();
        let env_a = tempfile::tempdir().unwrap();
        let user = tempfile::tempdir().unwrap();
        let missing = env_a.path().join("missing");
        let env_value = std::env::join_paths([env_a.path(), missing.as_path()]).unwrap();

        let search_path = search_path_with(
            &[cli_dir.path().to_path_buf()],
            false,
            Some(env_value),
            Some(user.path().to_path_buf()),
        );

        assert!(!search_path.disabled);
        let paths: Vec<&Path> = search_path
            .entries
            .iter()
            .map(|e| e.path.as_path())
            .collect();
        assert_eq!(
            paths,
            [cli_dir.path(), env_a.path(), missing.as_path(), user.path()]
        );
        assert_eq!(
            sources(&search_path),
            [
                SearchSource::Cli,
                SearchSource::Env,
                SearchSource::Env,
                SearchSource::User
            ]
        );
        let exists: Vec<bool> = search_path.entries.iter().map(|e| e.exists).collect();
        assert_eq!(exists, [true, true, false, true]);
    }

    #[test]
    fn empty_env_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let env_value = std::env::join_paths([Path::new(""), dir.path(), Path::new("")]).unwrap();
        let search_path = search_path_with(&[], false, Some(env_value), None);
        assert_eq!(sources(&search_path), [SearchSource::Env]);
        assert_eq!(search_path.entries[0].path, dir.path());
    }

    #[test]
    fn no_plugins_disables_everything() {
        let dir = tempfile::tempdir().unwrap();
        let search_path = search_path_with(
            &[dir.path().to_path_buf()],
            true,
            Some(dir.path().as_os_str().to_owned()),
            Some(dir.path().to_path_buf()),
        );
        assert!(search_path.disabled);
        assert!(search_path.entries.is_empty());
        assert!(candidate_files(&search_path).is_empty());
    }

    #[test]
    fn default_user_dir_ends_in_sonic_plugins() {
        if let Some(dir) = user_plugin_dir() {
            assert_eq!(dir.file_name(), Some(OsStr::new("plugins")));
        }
    }

    #[test]
    fn candidates_match_the_plugin_name_pattern_only() {
        let dir = tempfile::tempdir().unwrap();
        let b = touch(dir.path(), &plugin_name("sonic_b"));
        let a = touch(dir.path(), &plugin_name("sonic_a"));
        touch(dir.path(), &plugin_name("other"));
        touch(dir.path(), &format!("{DLL_PREFIX}sonic_c.txt"));
        touch(dir.path(), &plugin_name("sonic_"));
        fs::create_dir(dir.path().join(plugin_name("sonic_dir"))).unwrap();

        let search_path = search_path_with(&[], false, None, Some(dir.path().to_path_buf()));
        assert_eq!(candidate_files(&search_path), [a, b]);
    }

    #[test]
    fn cli_files_are_taken_as_is_and_duplicates_dropped() {
        let env_dir = tempfile::tempdir().unwrap();
        let user_dir = tempfile::tempdir().unwrap();
        let explicit = touch(env_dir.path(), "custom-name.plugin");
        let shared = touch(env_dir.path(), &plugin_name("sonic_shared"));
        let user_only = touch(user_dir.path(), &plugin_name("sonic_user"));
        let missing = env_dir.path().join("missing.plugin");

        let search_path = search_path_with(
            &[explicit.clone(), shared.clone(), missing.clone()],
            false,
            Some(env_dir.path().as_os_str().to_owned()),
            Some(user_dir.path().to_path_buf()),
        );
        // `shared` is offered by both --plugin and the env directory; the first one wins.
        assert_eq!(
            candidate_files(&search_path),
            [explicit, shared, missing, user_only]
        );
    }

    #[test]
    fn same_directory_twice_yields_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = touch(dir.path(), &plugin_name("sonic_once"));
        let dotted = dir.path().join(".");
        let search_path = search_path_with(
            &[dir.path().to_path_buf()],
            false,
            Some(dotted.into_os_string()),
            Some(dir.path().to_path_buf()),
        );
        assert_eq!(candidate_files(&search_path), [plugin]);
    }

    #[test]
    fn serialises_sources_in_snake_case() {
        let entry = SearchEntry {
            path: PathBuf::from("/p"),
            source: SearchSource::Env,
            exists: false,
        };
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"path": "/p", "source": "env", "exists": false})
        );
        assert_eq!(SearchSource::Env.as_str(), "env");
    }
}
