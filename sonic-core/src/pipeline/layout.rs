//! Where each component's files are in a weights folder laid out as the reference's README
//! downloads them, with every file checked before anything is loaded.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::weights::find_weight_files;
use crate::{Error, Result};

/// SVD folder names the reference and ComfyUI accept; the VAE and CLIP weights are the same.
const SVD_DIRS: [&str; 2] = [
    "stable-video-diffusion-img2vid-xt",
    "stable-video-diffusion-img2vid-xt-1-1",
];

/// The files of a real model set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeightPaths {
    /// Sonic's fine-tuned UNet with its audio adapters (`Sonic/unet.pth`).
    pub unet: PathBuf,
    /// The folder whose `config.json` describes that UNet (SVD's `unet/`).
    pub unet_config: PathBuf,
    pub audio2token: PathBuf,
    pub audio2bucket: PathBuf,
    /// SVD's `vae/` folder.
    pub vae: PathBuf,
    /// SVD's `image_encoder/` folder.
    pub image_encoder: PathBuf,
    /// The `whisper-tiny/` folder.
    pub whisper: PathBuf,
    /// RIFE's `flownet.pkl` (or its safetensors conversion), when there is one.
    pub rife: Option<PathBuf>,
    /// YOLOv5m-face weights (`yoloface_v5m.pt` as downloaded, or a state dict export), when
    /// there are some; without them the built-in skin-tone detector finds the face.
    pub yolo_face: Option<PathBuf>,
}

/// Per-component overrides of [`WeightPaths::from_root`]'s choices.
#[derive(Clone, Debug, Default)]
pub struct WeightOverrides {
    /// The folder holding unet, audio2token and audio2bucket (`.pth` or `.safetensors`).
    pub sonic: Option<PathBuf>,
    /// The SVD folder (`vae/`, `image_encoder/`, `unet/config.json`).
    pub svd: Option<PathBuf>,
    pub whisper: Option<PathBuf>,
    /// RIFE's `flownet.pkl`.
    pub rife: Option<PathBuf>,
    /// YOLOv5m-face weights (`yoloface_v5m.pt`, or a state dict export of it).
    pub yolo_face: Option<PathBuf>,
}

impl WeightPaths {
    /// Resolves the reference layout under `root` (`Sonic/`, `stable-video-diffusion-img2vid-xt/`,
    /// `whisper-tiny/`), or wherever `overrides` point, and checks that every file is there.
    /// A missing file is an error naming it and what it is.
    pub fn resolve(root: Option<&Path>, overrides: &WeightOverrides) -> Result<Self> {
        let pick = |given: &Option<PathBuf>, names: &[&str], what: &str| -> Result<PathBuf> {
            if let Some(p) = given {
                return Ok(p.clone());
            }
            let Some(root) = root else {
                return Err(Error::invalid(
                    "weights",
                    format!("no folder for {what}: give --weights DIR or its own path"),
                ));
            };
            Ok(names
                .iter()
                .map(|n| root.join(n))
                .find(|p| p.is_dir())
                .unwrap_or_else(|| root.join(names[0])))
        };
        let sonic = pick(&overrides.sonic, &["Sonic"], "Sonic's checkpoints")?;
        let svd = pick(&overrides.svd, &SVD_DIRS, "Stable Video Diffusion")?;
        let whisper = pick(&overrides.whisper, &["whisper-tiny"], "whisper-tiny")?;
        for (dir, what) in [
            (
                &sonic,
                "Sonic's checkpoints (unet.pth, audio2token.pth, audio2bucket.pth)",
            ),
            (
                &svd,
                "Stable Video Diffusion img2vid-xt (vae/, image_encoder/, unet/)",
            ),
            (&whisper, "whisper-tiny"),
        ] {
            if !dir.is_dir() {
                return Err(Error::file(dir, format!("missing folder: {what}")));
            }
        }
        let paths = WeightPaths {
            unet: checkpoint(&sonic, "unet", "Sonic's UNet")?,
            unet_config: svd.join("unet"),
            audio2token: checkpoint(&sonic, "audio2token", "Sonic's audio projection")?,
            audio2bucket: checkpoint(&sonic, "audio2bucket", "Sonic's motion-bucket model")?,
            vae: svd.join("vae"),
            image_encoder: svd.join("image_encoder"),
            whisper,
            rife: optional_file(
                root,
                &overrides.rife,
                &["RIFE/flownet.pkl", "RIFE/flownet.safetensors"],
                "RIFE's flownet.pkl",
            )?,
            yolo_face: optional_file(
                root,
                &overrides.yolo_face,
                &["yoloface_v5m.pt", "yoloface_v5m.safetensors"],
                "YOLOv5m-face weights",
            )?,
        };
        let config = paths.unet_config.join("config.json");
        if !config.is_file() {
            return Err(Error::file(
                config,
                "missing: SVD's UNet config (Sonic's unet.pth is built from it)",
            ));
        }
        for (dir, variant) in [
            (&paths.vae, Some("fp16")),
            (&paths.image_encoder, Some("fp16")),
            (&paths.whisper, None),
        ] {
            if !dir.join("config.json").is_file() {
                return Err(Error::file(dir.join("config.json"), "missing model config"));
            }
            find_weight_files(dir, variant)?;
        }
        Ok(paths)
    }
}

/// A component the pipeline can do without: the file given, which must exist, or the first
/// of `names` under `root` that does.
fn optional_file(
    root: Option<&Path>,
    given: &Option<PathBuf>,
    names: &[&str],
    what: &str,
) -> Result<Option<PathBuf>> {
    if let Some(file) = given {
        if !file.is_file() {
            return Err(Error::file(file, format!("missing: {what}")));
        }
        return Ok(Some(file.clone()));
    }
    Ok(root.and_then(|root| names.iter().map(|n| root.join(n)).find(|p| p.is_file())))
}

/// `dir/stem.pth`, or its safetensors conversion (`sonic weights convert`).
fn checkpoint(dir: &Path, stem: &str, what: &str) -> Result<PathBuf> {
    let candidates = [format!("{stem}.pth"), format!("{stem}.safetensors")];
    candidates
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::file(
                dir.join(&candidates[0]),
                format!("missing: {what} ({} is accepted too)", candidates[1]),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    fn reference_layout(root: &Path) {
        for f in [
            "Sonic/unet.pth",
            "Sonic/audio2token.pth",
            "Sonic/audio2bucket.safetensors",
            "stable-video-diffusion-img2vid-xt/unet/config.json",
            "stable-video-diffusion-img2vid-xt/vae/config.json",
            "stable-video-diffusion-img2vid-xt/vae/diffusion_pytorch_model.fp16.safetensors",
            "stable-video-diffusion-img2vid-xt/image_encoder/config.json",
            "stable-video-diffusion-img2vid-xt/image_encoder/model.fp16.safetensors",
            "whisper-tiny/config.json",
            "whisper-tiny/model.safetensors",
        ] {
            touch(&root.join(f));
        }
    }

    #[test]
    fn the_reference_layout_resolves_and_each_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        reference_layout(root);
        let paths = WeightPaths::resolve(Some(root), &WeightOverrides::default()).unwrap();
        assert_eq!(paths.yolo_face, None);
        touch(&root.join("yoloface_v5m.safetensors"));
        touch(&root.join("yoloface_v5m.pt"));
        let paths = WeightPaths::resolve(Some(root), &WeightOverrides::default()).unwrap();
        assert_eq!(paths.yolo_face, Some(root.join("yoloface_v5m.pt")));
        assert_eq!(
            paths.audio2bucket,
            root.join("Sonic/audio2bucket.safetensors")
        );
        assert_eq!(
            paths.vae,
            root.join("stable-video-diffusion-img2vid-xt/vae")
        );

        for (remove, named) in [
            ("Sonic/unet.pth", "Sonic/unet.pth: missing: Sonic's UNet"),
            (
                "stable-video-diffusion-img2vid-xt/unet/config.json",
                "unet/config.json: missing",
            ),
            (
                "stable-video-diffusion-img2vid-xt/image_encoder/model.fp16.safetensors",
                "image_encoder: no weights found",
            ),
            (
                "whisper-tiny/config.json",
                "whisper-tiny/config.json: missing",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            reference_layout(dir.path());
            std::fs::remove_file(dir.path().join(remove)).unwrap();
            let err = WeightPaths::resolve(Some(dir.path()), &WeightOverrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{remove}: {err}");
        }
        let empty = tempfile::tempdir().unwrap();
        let err = WeightPaths::resolve(Some(empty.path()), &WeightOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Sonic: missing folder"), "{err}");
    }

    #[test]
    fn overrides_replace_the_reference_folders() {
        let dir = tempfile::tempdir().unwrap();
        reference_layout(&dir.path().join("a"));
        let overrides = WeightOverrides {
            sonic: Some(dir.path().join("a/Sonic")),
            svd: Some(dir.path().join("a/stable-video-diffusion-img2vid-xt")),
            whisper: Some(dir.path().join("a/whisper-tiny")),
            rife: None,
            yolo_face: Some(dir.path().join("a/nope.safetensors")),
        };
        let err = WeightPaths::resolve(None, &overrides)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing: YOLOv5m-face weights"), "{err}");
        let overrides = WeightOverrides {
            yolo_face: None,
            ..overrides
        };
        let paths = WeightPaths::resolve(None, &overrides).unwrap();
        assert_eq!(paths.unet, dir.path().join("a/Sonic/unet.pth"));
        assert_eq!(paths.yolo_face, None);
        assert!(WeightPaths::resolve(None, &WeightOverrides::default()).is_err());
    }
}
