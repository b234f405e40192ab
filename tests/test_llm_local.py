"""The local transformers backend: a tiny random model for the decode loop, the packaged SmolLM2 when slow."""

from __future__ import annotations

import json
import os
import string
import threading
from pathlib import Path

import pytest

from tutor.llm.backends import BackendError, BackendTimeout
from tutor.llm.backends.local import LocalBackend, packaged_gguf, unload_all
from tutor.llm.backends.openai import OpenAIBackend
from tutor.llm.constrain import RegexDFA
from tutor.llm.server import make_server

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

MSGS = [{"role": "user", "content": "What is 3 + 4?"}]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a character-level BPE tokenizer: the real decode loop in a fraction of a second."""
    from tokenizers import Tokenizer, decoders, models

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    merges = [("t", "h"), ("th", "e"), (" ", "the"), ("A", "n"), ("An", "s"), (":", " ")]
    vocab = {tok: i for i, tok in enumerate(special + list(string.printable[:95]) + ["\n"])}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.decoder = decoders.Fuse()
    tk.add_special_tokens(special)
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="<|im_end|>", bos_token="<|im_start|>", pad_token="<|endoftext|>"
    )
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    transformers.LlamaForCausalLM(cfg).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture
def tiny(tiny_dir: Path) -> LocalBackend:
    return LocalBackend(tiny_dir, dtype="float32", max_context=400)


def test_one_model_per_process(tiny: LocalBackend, tiny_dir: Path) -> None:
    first = tiny.load()
    again = LocalBackend(tiny_dir, dtype="float32").load()
    assert again is first
    assert first.eos_ids == [0, 2]
    assert tiny.version == f"local:{tiny_dir.name}:float32"


def test_greedy_is_deterministic_and_sampling_follows_the_seed(tiny: LocalBackend) -> None:
    a = tiny.generate(MSGS, max_tokens=12)
    b = tiny.generate(MSGS, max_tokens=12)
    assert a.text == b.text
    assert a.prompt_tokens == 33  # ChatML framing + 14 characters
    s1 = tiny.generate(MSGS, max_tokens=12, temperature=1.0, seed=5)
    s2 = tiny.generate(MSGS, max_tokens=12, temperature=1.0, seed=5)
    s3 = tiny.generate(MSGS, max_tokens=12, temperature=1.0, seed=6)
    assert s1.text == s2.text
    assert s1.text != s3.text
    assert (s1.backend, s1.model) == ("local", tiny.model)


def test_json_schema_output_always_parses_even_when_the_budget_runs_out(tiny: LocalBackend) -> None:
    schema = {"type": "object", "properties": {"context": {"type": "string"}, "n": {"type": "integer"}}}
    for seed in range(4):
        for budget in (3, 12, 40):
            done = tiny.generate(MSGS, max_tokens=budget, temperature=1.0, seed=seed, json_schema=schema)
            parsed = json.loads(done.text)
            assert set(parsed) == {"context", "n"}
            assert done.completion_tokens <= budget


def test_regex_constraint_and_stream_agree(tiny: LocalBackend) -> None:
    pattern = r"Answer: (?:7|seven)\."
    stream = tiny.stream(MSGS, max_tokens=30, temperature=1.0, seed=1, regex=pattern)
    chunks = list(stream)
    assert stream.completion is not None
    assert "".join(chunks) == stream.completion.text
    assert RegexDFA(pattern).fullmatch(stream.completion.text)
    assert stream.completion.finish_reason == "stop"


def test_stop_strings_cut_the_text(tiny: LocalBackend) -> None:
    full = tiny.generate(MSGS, max_tokens=20, temperature=1.0, seed=3).text
    assert len(full) > 4
    cut_at = full[3]
    stopped = tiny.generate(MSGS, max_tokens=20, temperature=1.0, seed=3, stop=[cut_at])
    assert stopped.text == full[: full.index(cut_at)]
    assert stopped.finish_reason == "stop"


def test_timeout_and_context_limit(tiny: LocalBackend) -> None:
    with pytest.raises(BackendTimeout):
        tiny.generate(MSGS, max_tokens=50, timeout=0.0)
    with pytest.raises(BackendError, match="exceeds the context"):
        tiny.generate([{"role": "user", "content": "x" * 500}], max_tokens=10)


def test_served_local_model_streams_through_the_openai_backend(tiny: LocalBackend) -> None:
    server = make_server(tiny, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", tiny.model)
        direct = tiny.generate(MSGS, max_tokens=10, temperature=1.0, seed=2)
        remote = client.stream(MSGS, max_tokens=10, temperature=1.0, seed=2)
        assert remote.text() == direct.text
        assert remote.completion is not None
        assert remote.completion.completion_tokens == direct.completion_tokens
        assert remote.completion.prompt_tokens == direct.prompt_tokens
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_packaged_smollm2_converts_once_and_answers(tmp_path: Path) -> None:
    """The real GGUF: dequantised into the data directory once, then loaded from there with the same output."""
    gguf = packaged_gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    backend = LocalBackend(data_dir=tmp_path, threads=1)
    first = backend.load()
    assert not first.from_cache
    greedy = backend.generate(MSGS, max_tokens=8)
    unload_all()
    second = backend.load()
    assert second.from_cache
    assert second.load_s < first.load_s
    assert backend.generate(MSGS, max_tokens=8).text == greedy.text
    assert "7" in greedy.text
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    constrained = json.loads(backend.generate(MSGS, max_tokens=8, json_schema=schema).text)
    assert list(constrained) == ["answer"]  # parses; its value is the model's business (it says 1: keys never
    assert isinstance(constrained["answer"], int)  # come from the model)
    unload_all()
