"""The empty-prompt embedding: equal to the T5 output, cached, never recomputed from the cache."""

import pytest
import torch
import transformers

from aether.models import EMPTY_PROMPT_FILE, empty_prompt_embedding
from aether.models.testing import TINY_TEXT_LENGTH, save_tiny_base


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("base"))


def test_embedding_equals_encoder_output_on_eos_then_padding(base, tmp_path):
    emb = empty_prompt_embedding(base, cache=tmp_path, max_length=TINY_TEXT_LENGTH)
    encoder = transformers.T5EncoderModel.from_pretrained(base / "text_encoder").eval()
    ids = torch.tensor([[1] + [0] * (TINY_TEXT_LENGTH - 1)])  # T5: </s> then <pad>, no attention mask
    with torch.no_grad():
        expected = encoder(ids)[0]
    assert emb.shape == (1, TINY_TEXT_LENGTH, 32)
    assert torch.allclose(emb, expected, atol=1e-6)
    assert (tmp_path / EMPTY_PROMPT_FILE).is_file()


def test_cached_embedding_never_constructs_the_text_encoder(base, tmp_path, monkeypatch):
    first = empty_prompt_embedding(base, cache=tmp_path, max_length=TINY_TEXT_LENGTH)

    def refuse(*args, **kwargs):
        raise AssertionError("the text encoder must not be built when the cache exists")

    monkeypatch.setattr(
        transformers, "T5EncoderModel", type("Refuse", (), {"from_pretrained": refuse, "__init__": refuse})
    )
    monkeypatch.setattr(transformers, "AutoTokenizer", type("Refuse", (), {"from_pretrained": refuse}))
    again = empty_prompt_embedding(None, cache=tmp_path / EMPTY_PROMPT_FILE, max_length=TINY_TEXT_LENGTH)
    assert torch.equal(first, again)


def test_missing_cache_without_base_or_wrong_length_raises(base, tmp_path):
    with pytest.raises(ValueError, match="no base model"):
        empty_prompt_embedding(None, cache=tmp_path)
    empty_prompt_embedding(base, cache=tmp_path, max_length=TINY_TEXT_LENGTH)
    with pytest.raises(ValueError, match="is not \\(1, 226, D\\)"):
        empty_prompt_embedding(None, cache=tmp_path, max_length=226)
