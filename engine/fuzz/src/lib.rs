//! What the fuzz targets share: running a parsed model with inputs taken
//! from the fuzzer's bytes, and checking what the engine promises.

use engine::{Error, Model, Workspace};

/// Inference parameters read from the first bytes of a fuzz input.
pub struct Params {
    /// Seed for `generate`.
    pub seed: u64,
    /// Expert index for `generate` and `decode` (often out of range).
    pub expert: usize,
    /// Bytes repeated to make u8 pixels and (as f32 bits) f32 pixels and latents.
    pub pattern: [u8; 16],
}

/// Bytes [`Params::take`] consumes.
pub const PARAMS_LEN: usize = 25;

impl Params {
    /// Splits `data` into parameters and the rest (zero-filled if short).
    pub fn take(data: &[u8]) -> (Params, &[u8]) {
        let mut head = [0u8; PARAMS_LEN];
        let n = data.len().min(PARAMS_LEN);
        head[..n].copy_from_slice(&data[..n]);
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&head[..8]);
        let mut pattern = [0u8; 16];
        pattern.copy_from_slice(&head[9..25]);
        let params = Params {
            seed: u64::from_le_bytes(seed),
            expert: head[8] as usize % 20,
            pattern,
        };
        (params, &data[n..])
    }

    fn f32_at(&self, i: usize) -> f32 {
        let j = (4 * i) % 16;
        f32::from_le_bytes([
            self.pattern[j],
            self.pattern[j + 1],
            self.pattern[j + 2],
            self.pattern[j + 3],
        ])
    }
}

/// Runs everything a parsed model offers; panics if a promise is broken.
pub fn exercise(model: &Model<'_>, p: &Params) {
    let mut ws = Workspace::<1024>::new();
    let pixels = model.pixels();
    let image: Vec<u8> = (0..pixels).map(|i| p.pattern[i % 16]).collect();
    let image_f32: Vec<f32> = (0..pixels).map(|i| p.f32_at(i)).collect();
    let z: Vec<f32> = (0..model.latent()).map(|i| p.f32_at(i + 1)).collect();
    let fits = model.workspace_len() <= 1024;
    for result in [
        model.classify(&mut ws, &image),
        model.classify_f32(&mut ws, &image_f32),
    ] {
        match result {
            Ok(c) => {
                assert!(fits);
                assert!(c.cluster < model.experts());
                assert_eq!(c.probabilities.len(), model.experts());
                let sum: f32 = c.probabilities.iter().sum();
                assert!((sum - 1.0).abs() < 1e-3, "probabilities sum to {sum}");
                assert!(c.style < model.styles(c.cluster));
                assert_eq!(c.style_probabilities.len(), model.styles(c.cluster));
                let sum: f32 = c.style_probabilities.iter().sum();
                assert!((sum - 1.0).abs() < 1e-3, "style probabilities sum to {sum}");
            }
            Err(e) => assert!(!fits && matches!(e, Error::WorkspaceTooSmall { .. })),
        }
    }
    let in_range = p.expert < model.experts();
    for generated in [true, false] {
        let result = if generated {
            model.generate(&mut ws, p.expert, p.seed).map(|o| o.len())
        } else {
            model.decode(&mut ws, p.expert, &z).map(|o| o.len())
        };
        match result {
            Ok(len) => {
                assert!(fits && in_range);
                assert_eq!(len, pixels);
            }
            Err(Error::WorkspaceTooSmall { .. }) => assert!(!fits),
            Err(Error::NoSuchExpert { .. }) => assert!(!in_range),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    // A style of the expert, often out of range.
    let style = p.pattern[0] as usize % 18;
    match model.generate_style(&mut ws, p.expert, style, p.seed) {
        Ok(out) => assert!(fits && in_range && out.len() == pixels),
        Err(Error::WorkspaceTooSmall { .. }) => assert!(!fits),
        Err(Error::NoSuchExpert { .. }) => assert!(!in_range),
        Err(Error::NoSuchStyle { .. }) => assert!(style >= model.styles(p.expert)),
        Err(e) => panic!("unexpected {e:?}"),
    }
}
