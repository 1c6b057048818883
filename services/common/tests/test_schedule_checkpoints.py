"""`zetl schedule dq`: which checkpoints a round runs."""

from __future__ import annotations

import pytest

from zetl.errors import ConfigError
from zetl.schedule import dq_checkpoints


def test_dq_runs_the_checkpoints_it_is_given() -> None:
    assert dq_checkpoints(" marts, source_integrity ,") == ["marts", "source_integrity"]
    with pytest.raises(ConfigError, match="names no checkpoint"):
        dq_checkpoints(" , ")


def test_dq_runs_every_checkpoint_the_quality_service_lists() -> None:
    # One source: the list comes from the checkpoints' own definitions (zetl dq list).
    from zetl_quality.checks import CHECKPOINTS

    assert dq_checkpoints(None) == list(CHECKPOINTS)
    assert dq_checkpoints("") == list(CHECKPOINTS)
