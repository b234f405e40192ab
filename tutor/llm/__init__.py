"""The LLM tutor's pure code (no Django, no Celery).

- `backends/`: one interface over the template writer, a local transformers model and OpenAI-compatible servers;
- `constrain`: regex / JSON-schema constrained decoding; `server`: the OpenAI-compatible server (`serve_llm`);
- `diagnose`, `prompts`, `writer`, `checks`, `explain`: wrong answer -> misconception -> grounded prompt ->
  generation -> checks -> template fallback;
- `embed`, `reward`, `goals`: embeddings, the feedback-trained reward model and style bandit, goals in plain words.

See docs/decisions/0005-llm.md.
"""
