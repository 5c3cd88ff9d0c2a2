"""Reading a trial's stored weights from the study's artifact store, from any process.

The engine records weights through the study's :class:`~automl.store.study.StudyStore`;
a worker that trains a warm-started child elsewhere (a Ray task on another core or machine)
needs only the artifact folder to read its parent's. :class:`WeightsReader` holds just that
folder, so it travels to workers (pickled) where the store, with its database connection,
does not. The folder must be one every worker reaches: a shared path on a cluster.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from automl.core import attrs
from automl.core.errors import StudyError


class WeightsReader:
    """``reader(trial)`` -> the trial's weights as a state dict (safetensors, no pickle)."""

    def __init__(self, artifacts: Path | None, study: str) -> None:
        self.artifacts = Path(artifacts) if artifacts is not None else None
        self.study = study

    def __call__(self, trial: Any) -> dict[str, Any]:
        from optuna.artifacts import FileSystemArtifactStore, download_artifact
        from safetensors.torch import load_file

        artifact_id = trial.user_attrs.get(attrs.WEIGHTS_ARTIFACT)
        if artifact_id is None or self.artifacts is None:
            raise StudyError(f"trial {trial.number} of study {self.study!r} has no stored weights")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "weights.safetensors"
            try:
                download_artifact(artifact_store=FileSystemArtifactStore(str(self.artifacts)),
                                  file_path=str(path), artifact_id=artifact_id)
                return load_file(str(path))
            except Exception as error:
                raise StudyError(f"weights of trial {trial.number} cannot be read: {error}") from None
