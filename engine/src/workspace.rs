/// Scratch memory for one inference: two buffers of `N` 32-bit slots.
///
/// f16 models use them as two ping-pong `f32` buffers, so `N` must be at
/// least the widest layer: for 28×28 digits at least 784, i.e. 6,272 bytes.
/// Integer models use the first as `i32` sums of column-major layers and the
/// second as two buffers of 8-bit codes, so the default int8 model needs
/// `N = 256` (2 KiB). [`Model::workspace_len`](crate::Model::workspace_len)
/// says what a model needs. Keep it in a `static` or on the stack; nothing
/// else is needed at run time.
///
/// ```
/// let ws = engine::Workspace::<784>::new();
/// assert_eq!(core::mem::size_of_val(&ws), 2 * 784 * 4);
/// ```
#[derive(Debug, Clone)]
pub struct Workspace<const N: usize> {
    pub(crate) a: [f32; N],
    pub(crate) b: [f32; N],
}

impl<const N: usize> Workspace<N> {
    /// A zeroed workspace.
    pub const fn new() -> Self {
        Workspace {
            a: [0.0; N],
            b: [0.0; N],
        }
    }

    /// Bytes of RAM this workspace occupies.
    pub const fn ram_bytes() -> usize {
        2 * N * core::mem::size_of::<f32>()
    }

    /// The first buffer as `i32` sums and the second as `4N` code bytes.
    pub(crate) fn int8_parts(&mut self) -> (&mut [i32], &mut [u8]) {
        (
            bytemuck::cast_slice_mut(&mut self.a[..]),
            bytemuck::cast_slice_mut(&mut self.b[..]),
        )
    }

    /// The second buffer as `4N` code bytes, to read.
    pub(crate) fn code_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.b[..])
    }

    /// The second buffer as `4N` code bytes.
    pub(crate) fn codes(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.b[..])
    }
}

impl<const N: usize> Default for Workspace<N> {
    fn default() -> Self {
        Self::new()
    }
}
