//! The training methods, one folder each, every one a [`crate::train::Method`]
//! run by the one loop. Adding a method: a folder here, a variant of
//! [`MethodName`] (which the command line and `config.json` use), its
//! flags in [`crate::cli::fit`], and the engine if its model needs a new
//! kind of layer.

pub mod hierarchical;
pub mod kvae;
pub mod mixture;

/// The methods `trainer fit --method` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MethodName {
    /// A gate routes each image to K VAE experts (mixture-of-experts loss).
    #[default]
    Mixture,
    /// k VAEs trained competitively, points reassigned by discriminators.
    Kvae,
    /// Two levels: a gate routes to K digit experts, each a mixture of
    /// --styles style VAEs under its own style gate.
    Hierarchical,
}

impl MethodName {
    /// The name on the command line and in `config.json`.
    pub fn as_str(self) -> &'static str {
        use crate::train::Method;
        match self {
            MethodName::Mixture => mixture::Mixture::NAME,
            MethodName::Kvae => kvae::method::KVae::NAME,
            MethodName::Hierarchical => hierarchical::Hierarchical::NAME,
        }
    }

    /// The method called `name` in a run's `config.json`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            MethodName::Mixture,
            MethodName::Kvae,
            MethodName::Hierarchical,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }
}
