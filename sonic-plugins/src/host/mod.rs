//! The host side: loading plugin libraries safely and adapting their instances to the
//! SDK's traits. Libraries are never unloaded: unloading Rust or C++ code with thread-local
//! destructors is unsound, and a plugin's descriptors must outlive every instance.

mod audio_encoder;
mod callbacks;
mod instance;
mod sampler;
pub(crate) mod views;

use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sonic_core::registry::{self, ComponentInfo};

pub use audio_encoder::{
    PluginAudioEncoder, MAX_HIDDEN_SIZE, MAX_LAYERS, MAX_OUTPUT_ELEMENTS, SAMPLE_RATE,
};
pub use sampler::PluginSampler;

use crate::abi::{self, PluginEntry};
use crate::manifest::{check_hash, read_manifest, Manifest};
use crate::PluginError;

/// One component a plugin offers.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentDescriptor {
    pub id: String,
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub description: String,
}

/// A loaded plugin library and what it provides.
#[derive(Clone, Debug, Serialize)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub manifest: Option<Manifest>,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub host_min_version: String,
    pub samplers: Vec<ComponentDescriptor>,
    pub audio_encoders: Vec<ComponentDescriptor>,
    #[serde(skip)]
    entry: EntryRef,
}

/// The plugin's entry, which lives as long as the (never unloaded) library.
#[derive(Clone, Copy)]
struct EntryRef(&'static PluginEntry);

impl std::fmt::Debug for EntryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntryRef({:p})", self.0)
    }
}
// SAFETY: the entry is an immutable static of the plugin library.
unsafe impl Send for EntryRef {}
unsafe impl Sync for EntryRef {}

/// Libraries loaded so far, by canonical path: loading a path twice reuses the first load.
static LOADED: Mutex<Vec<LoadedPlugin>> = Mutex::new(Vec::new());

pub(crate) fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the ABI requires NUL-terminated strings that live until `deinit`.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Loads the plugin at `path`: manifest and hash first (without running plugin code), then
/// the library, its ABI handshake and `init`.
pub fn load(path: &Path) -> Result<LoadedPlugin, PluginError> {
    let path = path.canonicalize().map_err(|e| PluginError::Load {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = loaded.iter().find(|p| p.path == path) {
        return Ok(p.clone());
    }
    let manifest = read_manifest(&path)?;
    if let Some(m) = &manifest {
        if m.abi_major != abi::ABI_MAJOR {
            return Err(PluginError::AbiMismatch {
                path,
                major: m.abi_major,
                minor: m.abi_minor,
                host_major: abi::ABI_MAJOR,
            });
        }
        check_hash(&path, m)?;
    }
    // SAFETY: loading runs the library's initialisers; that is what the user asked for by
    // naming the plugin. The library is leaked so it is never unloaded.
    let library = unsafe { libloading::Library::new(&path) }.map_err(|e| PluginError::Load {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    // SAFETY: the symbol is a data symbol whose address is the entry struct.
    let symbol = unsafe { library.get::<*const PluginEntry>(abi::ENTRY_SYMBOL) }
        .map_err(|_| PluginError::NoEntry { path: path.clone() })?;
    let entry_ptr: *const PluginEntry = *symbol;
    if entry_ptr.is_null() {
        return Err(PluginError::NoEntry { path });
    }
    let plugin = handshake(&path, entry_ptr, manifest)?;
    loaded.push(plugin.clone());
    Ok(plugin)
}

/// Registers a plugin linked into the host binary itself (its `sonic_plugin_entry` static),
/// through the same handshake and checks as a loaded library; `name` stands for its path.
pub fn load_static(name: &str, entry: &'static PluginEntry) -> Result<LoadedPlugin, PluginError> {
    handshake(Path::new(name), entry, None)
}

fn handshake(
    path: &Path,
    entry_ptr: *const PluginEntry,
    manifest: Option<Manifest>,
) -> Result<LoadedPlugin, PluginError> {
    let invalid = |msg: String| PluginError::Invalid {
        path: path.to_path_buf(),
        msg,
    };
    // Read the version fields alone first: a different major may lay the rest out differently.
    // SAFETY: every ABI version starts with these three u32 fields.
    let (size, major, minor) = unsafe {
        let head = entry_ptr as *const u32;
        (head.read(), head.add(1).read(), head.add(2).read())
    };
    if major != abi::ABI_MAJOR {
        return Err(PluginError::AbiMismatch {
            path: path.to_path_buf(),
            major,
            minor,
            host_major: abi::ABI_MAJOR,
        });
    }
    if (size as usize) < std::mem::size_of::<PluginEntry>() {
        return Err(invalid(format!(
            "entry struct of {size} bytes is smaller than ABI 1.0's"
        )));
    }
    // SAFETY: same major and at least our size: our fields are a prefix of the plugin's struct.
    let entry: &'static PluginEntry = unsafe { &*entry_ptr };
    let (Some(init), Some(get_factory)) = (entry.init, entry.get_factory) else {
        return Err(invalid("the entry lacks init or get_factory".into()));
    };
    // SAFETY: `host()` is a static that outlives the plugin.
    let status = unsafe { init(callbacks::host()) };
    if status != abi::OK {
        return Err(invalid(format!("init failed ({})", status_name(status))));
    }
    let factory_id = |id: &str| {
        let id = std::ffi::CString::new(id).expect("factory ids have no NUL");
        // SAFETY: the plugin was initialised; the id is a valid C string for this call.
        unsafe { get_factory(id.as_ptr()) }
    };
    let samplers = descriptors(
        path,
        factory_id(abi::SAMPLER_FACTORY_ID) as *const abi::SamplerFactory,
        |f| (f.count, f.descriptor),
    )?;
    let audio_encoders = descriptors(
        path,
        factory_id(abi::AUDIO_ENCODER_FACTORY_ID) as *const abi::AudioEncoderFactory,
        |f| (f.count, f.descriptor),
    )?;
    Ok(LoadedPlugin {
        path: path.to_path_buf(),
        manifest,
        abi_major: major,
        abi_minor: minor,
        host_min_version: c_string(entry.host_min_version),
        samplers,
        audio_encoders,
        entry: EntryRef(entry),
    })
}

type CountFn = Option<unsafe extern "C" fn() -> u32>;
type DescriptorFn = Option<unsafe extern "C" fn(u32) -> *const abi::Descriptor>;

fn descriptors<F>(
    path: &Path,
    factory: *const F,
    fns: impl Fn(&F) -> (CountFn, DescriptorFn),
) -> Result<Vec<ComponentDescriptor>, PluginError> {
    if factory.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: a non-null factory pointer from get_factory points at a static of that kind.
    let (Some(count), Some(descriptor)) = fns(unsafe { &*factory }) else {
        return Err(PluginError::Invalid {
            path: path.to_path_buf(),
            msg: "a factory lacks count or descriptor".into(),
        });
    };
    // SAFETY: factory functions of an initialised plugin, called from the loading thread.
    let n = unsafe { count() };
    (0..n)
        .map(|i| {
            let d = unsafe { descriptor(i) };
            if d.is_null() {
                return Err(PluginError::Invalid {
                    path: path.to_path_buf(),
                    msg: format!("descriptor {i} is null"),
                });
            }
            // SAFETY: descriptors live until deinit.
            let d = unsafe { &*d };
            Ok(ComponentDescriptor {
                id: c_string(d.id),
                name: c_string(d.name),
                version: c_string(d.version),
                vendor: c_string(d.vendor),
                description: c_string(d.description),
            })
        })
        .collect()
}

pub(crate) fn status_name(status: abi::Status) -> String {
    match status {
        abi::ERR_INVALID_ARGUMENT => "invalid argument".into(),
        abi::ERR_UNSUPPORTED => "unsupported".into(),
        abi::ERR_OUT_OF_MEMORY => "out of memory".into(),
        abi::ERR_INTERNAL => "internal error".into(),
        abi::ERR_PANIC => "the plugin panicked".into(),
        abi::ERR_HOST => "host callback failed".into(),
        other => format!("status {other}"),
    }
}

impl LoadedPlugin {
    pub fn display_name(&self) -> String {
        self.manifest
            .as_ref()
            .map_or_else(|| self.path.display().to_string(), |m| m.name.clone())
    }

    /// Creates the sampler `id` of this plugin.
    pub fn create_sampler(&self, id: &str) -> Result<PluginSampler, PluginError> {
        PluginSampler::create(self, id)
    }

    /// Creates the audio encoder `id` of this plugin, with an optional JSON configuration
    /// (`None` for the plugin's defaults). Its info is read and checked here.
    pub fn create_audio_encoder(
        &self,
        id: &str,
        config: Option<&str>,
    ) -> Result<PluginAudioEncoder, PluginError> {
        PluginAudioEncoder::create(self, id, config)
    }

    fn factory(&self, id: &str) -> *const c_void {
        let id = std::ffi::CString::new(id).expect("factory ids have no NUL");
        match self.entry.0.get_factory {
            // SAFETY: the plugin was initialised at load.
            Some(f) => unsafe { f(id.as_ptr()) },
            None => std::ptr::null(),
        }
    }

    /// Registers every sampler and audio encoder of this plugin under its id, with the
    /// library's path as origin. Audio encoders made through the registry get their defaults.
    pub fn register(&self) -> Result<(), PluginError> {
        for d in &self.samplers {
            let (plugin, id) = (self.clone(), d.id.clone());
            self.registered(registry::register_sampler(
                self.component_info("sampler", d),
                Arc::new(move || Ok(Box::new(plugin.create_sampler(&id)?))),
            ))?;
        }
        for d in &self.audio_encoders {
            let (plugin, id) = (self.clone(), d.id.clone());
            self.registered(registry::register_audio_encoder(
                self.component_info("audio-encoder", d),
                Arc::new(move || Ok(Box::new(plugin.create_audio_encoder(&id, None)?))),
            ))?;
        }
        Ok(())
    }

    fn component_info(&self, kind: &'static str, d: &ComponentDescriptor) -> ComponentInfo {
        ComponentInfo {
            kind,
            name: d.id.clone(),
            origin: self.path.display().to_string(),
            description: d.description.clone(),
        }
    }

    fn registered(&self, result: sonic_core::Result<()>) -> Result<(), PluginError> {
        result.map_err(|e| PluginError::Invalid {
            path: self.path.clone(),
            msg: e.to_string(),
        })
    }
}
