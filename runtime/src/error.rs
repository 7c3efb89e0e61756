use thiserror::Error;

/// Errors of the host. Each names the file, actor or value at fault.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The manifest cannot be read or is invalid.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An actor module cannot be read, verified or loaded.
    #[error("actor {path}: {reason}")]
    Actor {
        /// The module file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A portable provider module cannot be read, verified or started.
    #[error("portable provider {path}: {reason}")]
    Provider {
        /// The module file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A binding is invalid.
    #[error("manifest {manifest}: binding of actor {actor} to {capability} ({binding}): {reason}")]
    Binding {
        /// The manifest file.
        manifest: String,
        /// The actor's key.
        actor: String,
        /// The capability id.
        capability: String,
        /// The binding name.
        binding: String,
        /// What is wrong.
        reason: String,
    },
    /// An engine cannot be built.
    #[error(transparent)]
    Engine(#[from] wascc_engines::EngineError),
    /// The shard cannot run.
    #[error(transparent)]
    Scheduler(#[from] wascc_scheduler::SchedulerError),
    /// The lattice cannot be joined.
    #[error(transparent)]
    Lattice(#[from] wascc_lattice::LatticeError),
    /// A run-time command on providers or bindings was refused.
    #[error("{0}")]
    Control(String),
    /// The services runtime (providers' I/O thread) cannot start.
    #[error("cannot start the services runtime: {0}")]
    Services(String),
    /// A listener cannot be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS's reason.
        reason: String,
    },
}
