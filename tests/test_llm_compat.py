"""Stage 1's decoder works with transformers releases that name the key/value cache either way."""

from types import SimpleNamespace

import torch

from backend.language.llm import cache_argument, cache_of


class OldLM(torch.nn.Module):
    def forward(self, input_ids=None, past_key_values=None, inputs_embeds=None, use_cache=None, **kwargs):
        return SimpleNamespace(past_key_values=("old", past_key_values))


class NewLM(torch.nn.Module):
    def forward(self, input_ids=None, cache=None, inputs_embeds=None, use_cache=None, **kwargs):
        return SimpleNamespace(cache=("new", cache), past_key_values=None)


def test_the_cache_is_read_and_passed_under_the_installed_name():
    for lm, name in ((OldLM(), "past_key_values"), (NewLM(), "cache")):
        assert cache_argument(lm) == name
        first = cache_of(lm(input_ids=None))
        again = cache_of(lm(input_ids=None, **{cache_argument(lm): first}))
        assert again[1] is first


def test_a_cache_attribute_holding_none_falls_back_to_past_key_values():
    assert cache_of(SimpleNamespace(cache=None, past_key_values="kv")) == "kv"
