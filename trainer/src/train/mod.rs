//! The one training loop every method runs on ([`Trainer`]), the contract
//! a method fulfils to plug into it ([`Method`]), `trainer fit` from a
//! configuration or a run directory to an exported model ([`fit()`]), and the
//! end of a run: export, engine cross-check, pictures and `report.md`
//! ([`report`]).

pub mod curves;
pub mod fit;
pub mod method;
pub mod report;
pub mod trainer;

pub use fit::{fit, DataOptions, FitOptions, FitResult};
pub use method::{Data, EpochPlan, Method, MethodConfig, RunContext, StepLoss};
pub use trainer::{
    epochs_done, has_checkpoint, EpochRecord, LoopState, Observer, Outcome, Trainer, CHECKPOINT,
    GRID_ROWS, STATE,
};
