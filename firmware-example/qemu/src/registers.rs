//! Volatile access to a block of memory-mapped device registers: the one
//! place the UART drivers' `unsafe` lives.

use core::marker::PhantomData;
use core::mem::size_of;

/// `len` bytes of device registers from `base`, `T`-wide (`u8`, `u32`).
#[derive(Clone, Copy)]
pub struct Registers<T> {
    base: usize,
    len: usize,
    width: PhantomData<T>,
}

impl<T: Copy> Registers<T> {
    /// The block of `len` bytes from `base`.
    ///
    /// # Safety
    /// `[base, base + len)` must be device registers that the machine maps
    /// there for the whole run, each `T`-aligned offset readable and
    /// writable with a volatile access of `T`'s width (a register the
    /// device does not implement reads as anything and ignores writes), the
    /// access changing nothing but the device: no Rust object lives there.
    pub const unsafe fn new(base: usize, len: usize) -> Self {
        Registers {
            base,
            len,
            width: PhantomData,
        }
    }

    /// The register at byte `offset`.
    ///
    /// # Panics
    /// If `offset` is not `T`-aligned or the register is outside the block
    /// (constant offsets: checked at build time in effect, the check folds
    /// away).
    pub fn read(&self, offset: usize) -> T {
        let address = self.address(offset);
        // SAFETY: an aligned register inside the block, which `new`'s
        // contract makes readable device memory that no Rust object aliases.
        unsafe { core::ptr::read_volatile(address as *const T) }
    }

    /// Writes `value` to the register at byte `offset` (panics as
    /// [`read`](Self::read) does).
    pub fn write(&self, offset: usize, value: T) {
        let address = self.address(offset);
        // SAFETY: as in `read`; the contract makes the register writable,
        // the write changing nothing but the device.
        unsafe { core::ptr::write_volatile(address as *mut T, value) }
    }

    fn address(&self, offset: usize) -> usize {
        assert!(
            offset.is_multiple_of(size_of::<T>()) && offset + size_of::<T>() <= self.len,
            "register offset {offset} outside the block"
        );
        self.base + offset
    }
}
