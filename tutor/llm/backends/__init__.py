"""LLM backends chosen by name (settings `LLM_BACKEND`); `None`, "" or "off" switch LLM features off.

The local and openai modules are imported only when chosen: a web process configured for `openai` or `template`
never imports torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

from tutor.llm.backends.base import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatMessage,
    Completion,
    CompletionStream,
    LLMBackend,
    Messages,
)

# name -> "module:Class", imported on first use
BACKENDS: dict[str, str] = {
    "template": "tutor.llm.backends.template:TemplateBackend",
    "local": "tutor.llm.backends.local:LocalBackend",
    "openai": "tutor.llm.backends.openai:OpenAIBackend",
}
OFF = {"", "off", "none"}


def backend_class(name: str) -> type[LLMBackend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown LLM backend {name!r}; choose one of {sorted(BACKENDS)} or 'off'") from None
    module, _, cls = target.partition(":")
    found: type[LLMBackend] = getattr(importlib.import_module(module), cls)
    return found


def get_backend(name: str | None, **options: Any) -> LLMBackend | None:
    """The configured backend, or None when LLM features are off (callers then use the template writer directly
    or hide the feature)."""
    if name is None or name.strip().lower() in OFF:
        return None
    return backend_class(name.strip().lower())(**options)


__all__ = [
    "BACKENDS",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "ChatMessage",
    "Completion",
    "CompletionStream",
    "LLMBackend",
    "Messages",
    "backend_class",
    "get_backend",
]
