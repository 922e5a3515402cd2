//! Ink and paper: MNIST is white ink (255) on black paper (0); scans and
//! most PNGs are dark ink on light paper. `--invert auto` decides from the
//! border: the pixels of every image's outermost ring are mostly paper, so
//! when their mean over the set is above mid-grey the set is dark on light
//! and is inverted.

use super::Images;

/// `--invert`: what to do about a set's polarity.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Invert {
    /// Decide from the border pixels (light border: invert).
    #[default]
    Auto,
    /// Always invert (255 − v).
    Yes,
    /// Never invert.
    No,
}

/// The mean of the outermost ring of pixels over all images (0–255).
pub fn border_mean(images: &Images) -> f64 {
    let (w, h) = (images.cols, images.rows);
    if images.n == 0 || w == 0 || h == 0 {
        return 0.0;
    }
    let (mut sum, mut count) = (0u64, 0u64);
    for i in 0..images.n {
        let img = images.image(i);
        for y in 0..h {
            for x in 0..w {
                if y == 0 || x == 0 || y + 1 == h || x + 1 == w {
                    sum += img[y * w + x] as u64;
                    count += 1;
                }
            }
        }
    }
    sum as f64 / count as f64
}

impl Invert {
    /// Whether `images` should be inverted, and the sentence that says why.
    pub fn decide(self, images: &Images) -> (bool, String) {
        match self {
            Invert::Yes => (true, "inverted (--invert yes)".into()),
            Invert::No => (false, "not inverted (--invert no)".into()),
            Invert::Auto => {
                let m = border_mean(images);
                if m > 127.5 {
                    (
                        true,
                        format!("inverted: light border (mean {m:.1} of 255), so dark ink on light paper (--invert auto)"),
                    )
                } else {
                    (
                        false,
                        format!("not inverted: dark border (mean {m:.1} of 255), so light ink on dark paper as in MNIST (--invert auto)"),
                    )
                }
            }
        }
    }
}

/// Inverts every pixel (255 − v).
pub fn invert(images: &mut Images) {
    for p in &mut images.pixels {
        *p = 255 - *p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pixels: Vec<u8>) -> Images {
        Images {
            n: 1,
            rows: 3,
            cols: 3,
            pixels,
        }
    }

    #[test]
    fn the_border_decides() {
        let scan = set(vec![250, 250, 250, 250, 0, 250, 250, 250, 250]);
        assert!(Invert::Auto.decide(&scan).0);
        let mnist = set(vec![0, 0, 0, 0, 255, 0, 0, 0, 0]);
        let (inv, why) = Invert::Auto.decide(&mnist);
        assert!(!inv && why.contains("mean 0.0"), "{why}");
        assert!(!Invert::No.decide(&scan).0);
        assert!(Invert::Yes.decide(&mnist).0);
        let mut s = scan.clone();
        invert(&mut s);
        assert_eq!(s.pixels[4], 255);
        assert_eq!(border_mean(&s), 5.0);
    }
}
