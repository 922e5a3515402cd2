//! Stack high-water mark by painting: fill the unused stack with a pattern
//! at boot, and later find the lowest word that no longer holds it.

/// The paint; a value unlikely to be a live stack word.
pub const PAINT: u32 = 0x5AA5_C33C;

/// Bytes left unpainted below the painter's own frame, so that painting never
/// overwrites the frame (or an interrupt frame) it runs in.
const MARGIN: usize = 256;

/// Paints the stack from `bottom` (its lowest address) up to a little below
/// the current stack pointer.
///
/// # Safety
/// `bottom` must be the lowest address of the stack this code runs on, that
/// region must be used by nothing but the stack, and it must lie below the
/// caller's frame (stacks grow down on every supported target).
#[inline(never)]
pub unsafe fn paint(bottom: usize) {
    let marker = 0u32;
    let here = core::ptr::addr_of!(marker) as usize;
    let end = here.saturating_sub(MARGIN) & !3;
    let mut p = (bottom + 3) & !3;
    while p < end {
        // SAFETY: [bottom, end) is unused stack below our frame (caller's
        // contract and MARGIN), word aligned.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used at the deepest point since [`paint`]: from `top` down
/// to the lowest word no longer holding the paint.
///
/// # Safety
/// `[bottom, top)` must be readable memory, the stack painted by [`paint`].
pub unsafe fn high_water(bottom: usize, top: usize) -> usize {
    let mut p = (bottom + 3) & !3;
    // SAFETY: p stays inside [bottom, top), readable by the contract.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_deepest_touched_word() {
        let mut region = [PAINT; 64];
        region[40] = 0;
        let bottom = region.as_ptr() as usize;
        let top = bottom + 64 * 4;
        // SAFETY: the region is a live local array.
        assert_eq!(unsafe { high_water(bottom, top) }, (64 - 40) * 4);
        region[3] = 1;
        let used = unsafe { high_water(region.as_ptr() as usize, top) };
        assert_eq!(used, (64 - 3) * 4);
    }
}
