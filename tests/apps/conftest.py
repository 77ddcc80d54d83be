"""One tiny random-weight model (``aether tiny-model``) shared by the newcomer-command tests."""

import pytest

from aether.apps.model import save_tiny_model

HEIGHT, WIDTH = 32, 48


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("apps") / "tiny", height=HEIGHT, width=WIDTH)
