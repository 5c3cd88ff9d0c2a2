"""Names of what a study records: trial user attributes and the study's own attributes.

Every module that writes or reads a trial attribute uses these names, so a renamed attribute
is renamed once and old studies stay readable where a name is kept.
"""

# trial user attributes: identity and lineage
KEY = "key"  # Genome.key(): the identity that recognises an architecture already evaluated
GENOME = "genome"  # the space's readable string
GENERATION = "generation"
PARENTS = "parents"  # NSGA-II parent trial numbers
STRATEGY = "strategy"
DUPLICATE_OF = "duplicate_of"  # a repeated proposal answered from this trial, not trained
INFEASIBLE = "infeasible"  # a proposal that breaks the constraints, answered without training
TRAINED_FROM = "trained_from"  # `automl train`: the trial whose architecture this one trained longer
DISTRIBUTED = "distributed"  # how a DDP training was shared out (processes, backend, batches)

# trial user attributes: what training measured
FLOPS = "flops"
MFLOPS = "mflops"
PARAMS = "params"
SECONDS = "seconds"
PREDICTED_SECONDS = "predicted_seconds"  # the cost model's prediction of SECONDS (plain fp32 training)
EPOCHS = "epochs"
SEED = "seed"
ACCELERATORS = "accelerators"
ACCELERATOR_REPORTS = "accelerator_reports"
PARTIAL_VALUES = "partial_values"  # values of a PRUNED (early-stopped) trial

# trial user attributes: weights and warm starts
WEIGHTS_ARTIFACT = "weights_artifact"
WEIGHTS_NOTE = "weights"  # why weights were not stored
WARM_START = "warm_start"
WARM_START_FROM = "warm_start_from"
TRANSFORMS = "transforms"
SCRATCH_REASON = "scratch_reason"  # why a child with a trained parent was trained from scratch

# trial user attributes: failures
FAIL_REASON = "fail_reason"
RETRY = "retry"  # a FAILED trial whose genome a resumed or joining process trains again

# trial user attributes: which process owns a RUNNING trial, and that it is alive
WORKER = "worker"  # host:pid:nonce of the process that claimed the trial
HEARTBEAT = "heartbeat"  # time.time() of the last beat, for storages without Optuna heartbeats

# study user attributes
SETTINGS = "automl"  # the search's settings, data description and objectives
ENGINE = "engine"  # the search's state: generation, its batch, the strategy's state
