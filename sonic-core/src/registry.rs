//! Named components, built in or provided by plugins, behind one lookup path: the CLI
//! resolves `--sampler NAME` or `--audio-encoder NAME` the same way whichever provides it.

use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::models::AudioEncoder;
use crate::sampling::{builtin_sampler, Sampler, BUILTIN_SAMPLERS};
use crate::{Error, Result};

pub type SamplerFactory = Arc<dyn Fn() -> Result<Box<dyn Sampler>> + Send + Sync>;
pub type AudioEncoderFactory = Arc<dyn Fn() -> Result<Box<dyn AudioEncoder>> + Send + Sync>;

/// The audio encoder every model set brings: Whisper, loaded with the weights.
pub const BUILTIN_AUDIO_ENCODER: &str = "whisper";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComponentInfo {
    pub kind: &'static str,
    pub name: String,
    /// "built-in", or the plugin library that provides it.
    pub origin: String,
    pub description: String,
}

struct Entry<F> {
    info: ComponentInfo,
    create: F,
}

/// One kind's components; the built-ins are added on first use.
struct Table<F> {
    kind: &'static str,
    entries: RwLock<Vec<Entry<F>>>,
    builtins: fn() -> Vec<Entry<F>>,
}

impl<F: Clone> Table<F> {
    const fn new(kind: &'static str, builtins: fn() -> Vec<Entry<F>>) -> Self {
        Table {
            kind,
            entries: RwLock::new(Vec::new()),
            builtins,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vec<Entry<F>>) -> R) -> R {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if !entries.iter().any(|e| e.info.origin == "built-in") {
            let mut all = (self.builtins)();
            all.append(&mut entries);
            *entries = all;
        }
        f(&mut entries)
    }

    fn register(&self, info: ComponentInfo, create: F) -> Result<()> {
        self.with(|entries| {
            if let Some(taken) = entries.iter().find(|e| e.info.name == info.name) {
                return Err(Error::invalid(
                    "registry",
                    format!(
                        "{} `{}` from {} is already provided by {}",
                        self.kind, info.name, info.origin, taken.info.origin
                    ),
                ));
            }
            entries.push(Entry { info, create });
            Ok(())
        })
    }

    fn factory(&self, name: &str) -> Result<F> {
        self.with(
            |entries| match entries.iter().find(|e| e.info.name == name) {
                Some(e) => Ok(e.create.clone()),
                None => {
                    let known: Vec<&str> = entries.iter().map(|e| e.info.name.as_str()).collect();
                    Err(Error::invalid(
                        self.kind,
                        format!(
                            "unknown {} `{name}` (available: {})",
                            self.kind,
                            known.join(", ")
                        ),
                    ))
                }
            },
        )
    }

    fn list(&self) -> Vec<ComponentInfo> {
        self.with(|entries| entries.iter().map(|e| e.info.clone()).collect())
    }
}

fn builtin(kind: &'static str, name: &str, description: &str) -> ComponentInfo {
    ComponentInfo {
        kind,
        name: name.to_string(),
        origin: "built-in".into(),
        description: description.to_string(),
    }
}

static SAMPLERS: Table<SamplerFactory> = Table::new("sampler", || {
    BUILTIN_SAMPLERS
        .iter()
        .map(|&name| Entry {
            info: builtin("sampler", name, ""),
            create: Arc::new(move || builtin_sampler(name)) as SamplerFactory,
        })
        .collect()
});

static AUDIO_ENCODERS: Table<AudioEncoderFactory> = Table::new("audio encoder", || {
    vec![Entry {
        info: builtin(
            "audio-encoder",
            BUILTIN_AUDIO_ENCODER,
            "Whisper's encoder, loaded with the model weights",
        ),
        create: Arc::new(|| {
            Err(Error::invalid(
                "audio encoder",
                "the built-in whisper encoder is loaded with the model weights, not by name",
            ))
        }) as AudioEncoderFactory,
    }]
});

/// Makes a sampler available by name. A name already taken (by a built-in or an earlier
/// plugin) is an error naming both providers.
pub fn register_sampler(info: ComponentInfo, create: SamplerFactory) -> Result<()> {
    SAMPLERS.register(info, create)
}

/// A new instance of the sampler `name`.
pub fn sampler(name: &str) -> Result<Box<dyn Sampler>> {
    SAMPLERS.factory(name)?()
}

/// Every registered sampler, built-ins first.
pub fn samplers() -> Vec<ComponentInfo> {
    SAMPLERS.list()
}

/// Makes an audio encoder available by name, as [`register_sampler`] does for samplers.
pub fn register_audio_encoder(info: ComponentInfo, create: AudioEncoderFactory) -> Result<()> {
    AUDIO_ENCODERS.register(info, create)
}

/// A new instance of the registered audio encoder `name` (not the built-in Whisper, which
/// comes with the model weights).
pub fn audio_encoder(name: &str) -> Result<Box<dyn AudioEncoder>> {
    AUDIO_ENCODERS.factory(name)?()
}

/// Whether `name` is a registered audio encoder (the built-in included), without creating
/// one; an unknown name is the error [`audio_encoder`] would give.
pub fn check_audio_encoder(name: &str) -> Result<()> {
    AUDIO_ENCODERS.factory(name).map(drop)
}

/// Every registered audio encoder, the built-in first.
pub fn audio_encoders() -> Vec<ComponentInfo> {
    AUDIO_ENCODERS.list()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::Euler;

    #[test]
    fn builtins_and_registered_samplers_share_one_lookup() {
        assert_eq!(sampler("heun").unwrap().name(), "heun");
        let info = ComponentInfo {
            kind: "sampler",
            name: "test-euler-copy".into(),
            origin: "test".into(),
            description: String::new(),
        };
        register_sampler(info.clone(), Arc::new(|| Ok(Box::new(Euler)))).unwrap();
        assert_eq!(sampler("test-euler-copy").unwrap().name(), "euler");
        assert!(samplers()
            .iter()
            .any(|i| i.name == "test-euler-copy" && i.origin == "test"));
        let again = register_sampler(info, Arc::new(|| Ok(Box::new(Euler))))
            .unwrap_err()
            .to_string();
        assert!(again.contains("already provided by test"), "{again}");
        let clash = ComponentInfo {
            kind: "sampler",
            name: "euler".into(),
            origin: "x.so".into(),
            description: String::new(),
        };
        assert!(register_sampler(clash, Arc::new(|| Ok(Box::new(Euler))))
            .unwrap_err()
            .to_string()
            .contains("built-in"));
        assert!(sampler("nope")
            .err()
            .unwrap()
            .to_string()
            .contains("available: euler"));
    }

    struct Silence;

    impl AudioEncoder for Silence {
        fn info(&self) -> crate::models::AudioEncoderInfo {
            crate::models::AudioEncoderInfo {
                sample_rate: 16_000,
                frames_per_second: 50.0,
                layers: 1,
                hidden_size: 2,
            }
        }
        fn frames_for(&self, samples: usize) -> usize {
            samples / 320
        }
        fn encode(&self, samples: &[f32]) -> Result<Vec<crate::Tensor>> {
            let frames = self.frames_for(samples.len());
            Ok(vec![crate::Tensor::zeros([frames, 2], crate::Device::Cpu)?])
        }
    }

    #[test]
    fn audio_encoders_register_by_name_beside_the_builtin() {
        let info = ComponentInfo {
            kind: "audio-encoder",
            name: "test-silence".into(),
            origin: "test".into(),
            description: String::new(),
        };
        register_audio_encoder(info.clone(), Arc::new(|| Ok(Box::new(Silence)))).unwrap();
        let encoder = audio_encoder("test-silence").unwrap();
        assert_eq!(encoder.encode(&[0.0; 640]).unwrap()[0].dims(), [2, 2]);
        let listed = audio_encoders();
        assert_eq!(listed[0].name, BUILTIN_AUDIO_ENCODER);
        assert!(listed.iter().any(|i| i.name == "test-silence"));
        assert!(register_audio_encoder(info, Arc::new(|| Ok(Box::new(Silence)))).is_err());
        let builtin = audio_encoder(BUILTIN_AUDIO_ENCODER)
            .err()
            .unwrap()
            .to_string();
        assert!(builtin.contains("model weights"), "{builtin}");
        check_audio_encoder(BUILTIN_AUDIO_ENCODER).unwrap();
        check_audio_encoder("test-silence").unwrap();
        assert!(check_audio_encoder("nope").is_err());
        let unknown = audio_encoder("nope").err().unwrap().to_string();
        assert!(unknown.contains("available: whisper"), "{unknown}");
    }
}
