/// Scratch memory for one inference: two ping-pong buffers of `N` f32 values.
///
/// `N` must be at least the model's widest layer
/// ([`Model::workspace_len`](crate::Model::workspace_len)); for 28×28 digits
/// that is at least 784, i.e. 6,272 bytes. Keep it in a `static` or on the
/// stack; nothing else is needed at run time.
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
}

impl<const N: usize> Default for Workspace<N> {
    fn default() -> Self {
        Self::new()
    }
}
