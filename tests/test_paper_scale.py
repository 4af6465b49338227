"""The paper-scale configuration builds (on the meta device: nothing is allocated)."""

from backend.bench import paper_scale


def test_paper_scale_builds_on_meta():
    parts = paper_scale.build("meta")
    counts = paper_scale.parameter_counts(parts)
    assert 6.5e9 < counts["llm"] < 7.0e9           # LLaMA-7B / Vicuna-7B shape
    assert 3.0e8 < counts["hubert"] < 3.3e8         # HuBERT-large
    assert 9.0e7 < counts["wav2vec2"] < 1.0e8       # wav2vec 2.0 base
    assert parts.stage1.config.qformer.audio_dim == parts.hubert.config.hidden_size
    assert parts.stage1.config.instructor.llm_dim == parts.llm.get_input_embeddings().embedding_dim
    assert parts.stage2.config.content.speech_dim == parts.wav2vec2.config.hidden_size
    assert next(parts.llm.parameters()).device.type == "meta"
