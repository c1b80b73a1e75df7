//! Why a job failed: the engine's own errors, carried as they are, and the job's refusals
//! (what is missing and what to do). A job turns its error into the outcome's message only
//! where it ends (`Outcome::Failed`).

use hitvideo_engine::checkpoint::CheckpointError;
use hitvideo_engine::generator::config::GeneratorConfigError;
use hitvideo_engine::generator::token_cache::CacheError;
use hitvideo_engine::generator::{PipelineError, SamplingError};
use hitvideo_engine::service::ServiceError;
use hitvideo_engine::service::text::UnknownEncoder;
use hitvideo_engine::tensor::ReadError;
use hitvideo_engine::tokenizer::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job cannot run as asked; the message says what to do.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    #[error(transparent)]
    TokenizerConfig(#[from] ConfigError),
    #[error(transparent)]
    GeneratorConfig(#[from] GeneratorConfigError),
    #[error(transparent)]
    Encoder(#[from] UnknownEncoder),
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl From<&str> for JobError {
    fn from(why: &str) -> Self {
        JobError::Refused(why.to_string())
    }
}

impl From<String> for JobError {
    fn from(why: String) -> Self {
        JobError::Refused(why)
    }
}
