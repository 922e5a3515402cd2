//! `engine::idx` on any bytes: a view or a typed error, never a panic, and
//! a view's accessors agree with the bytes.

use engine::idx::{IdxError, Images, Labels, IMAGES_MAGIC, LABELS_MAGIC};
use proptest::prelude::*;

/// An images file of `n` images of `rows × cols`, its data `extra` bytes
/// longer (or shorter) than the header announces.
fn images_file(n: u32, rows: u32, cols: u32, extra: i64, fill: u8) -> Vec<u8> {
    let mut bytes: Vec<u8> = [IMAGES_MAGIC, n, rows, cols]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let data = (n * rows * cols) as i64 + extra;
    bytes.extend((0..data.max(0)).map(|i| fill.wrapping_add(i as u8)));
    bytes
}

proptest! {
    #[test]
    fn any_bytes_give_a_view_or_an_error(
        magic in prop_oneof![Just(None), Just(Some(IMAGES_MAGIC)), Just(Some(LABELS_MAGIC))],
        mut bytes in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        // Small counts and sizes, so that some files are whole.
        for b in bytes.iter_mut().take(16).skip(4).step_by(4) {
            *b = 0;
        }
        if let Some(m) = magic {
            for (b, m) in bytes.iter_mut().zip(m.to_be_bytes()) {
                *b = m;
            }
        }
        if let Ok(images) = Images::new_checked(&bytes[..]) {
            prop_assert_eq!(images.iter().map(<[u8]>::len).sum::<usize>(), bytes.len() - 16);
        }
        if let Ok(labels) = Labels::new_checked(&bytes[..]) {
            prop_assert_eq!(labels.len(), bytes.len() - 8);
        }
    }

    #[test]
    fn headers_and_lengths_are_checked(
        n in 0u32..5,
        rows in 0u32..5,
        cols in 0u32..5,
        extra in -3i64..=3,
        fill in any::<u8>(),
    ) {
        let bytes = images_file(n, rows, cols, extra, fill);
        let needed = 16 + (n * rows * cols) as usize;
        // No data cannot be shorter.
        let extra = bytes.len() as i64 - needed as i64;
        match Images::new_checked(&bytes[..]) {
            Ok(images) => {
                prop_assert_eq!(extra, 0);
                prop_assert_eq!((images.len(), images.rows(), images.cols()), (n as usize, rows as usize, cols as usize));
                let p = (rows * cols) as usize;
                prop_assert_eq!(images.iter().count(), n as usize);
                for (i, image) in images.iter().enumerate() {
                    prop_assert_eq!(image, &bytes[16 + i * p..16 + (i + 1) * p]);
                }
                prop_assert_eq!(images.image(n as usize), None);
            }
            Err(IdxError::Truncated { needed: got, available }) => {
                prop_assert!(extra < 0);
                prop_assert_eq!((got, available), (needed, bytes.len()));
            }
            Err(IdxError::TrailingBytes { extra: got }) => {
                prop_assert_eq!(got as i64, extra);
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn labels_are_checked(labels in proptest::collection::vec(0u8..12, 0..20), cut in 0usize..3) {
        let mut bytes: Vec<u8> = [LABELS_MAGIC, labels.len() as u32]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        bytes.extend(&labels);
        let short = &bytes[..bytes.len().saturating_sub(cut)];
        match Labels::new_checked(short) {
            Ok(view) => {
                prop_assert_eq!(cut, 0);
                prop_assert_eq!(view.labels(), &labels[..]);
                match labels.iter().position(|&l| l > 9) {
                    Some(index) => prop_assert_eq!(
                        view.check_max(9),
                        Err(IdxError::Label { index, value: labels[index], max: 9 })
                    ),
                    None => prop_assert_eq!(view.check_max(9), Ok(())),
                }
            }
            Err(e) => {
                prop_assert!(cut > 0, "{e}");
                let truncated = matches!(e, IdxError::Truncated { .. });
                prop_assert!(truncated, "{e}");
            }
        }
    }
}
