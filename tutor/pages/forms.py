"""Parsing of page form posts. Only shape and bounds here; the answer itself is judged by `attempt_record`."""

from __future__ import annotations

from django import forms


class AnswerForm(forms.Form):
    item = forms.IntegerField(min_value=1)
    decision = forms.IntegerField(min_value=1)
    client_attempt_id = forms.CharField(min_length=1, max_length=64)
    # Not stripped by the form: the answer checker owns normalisation, and the log keeps the raw response.
    response = forms.CharField(
        max_length=2000, strip=False, error_messages={"required": "Please enter an answer."}
    )
    time_taken_ms = forms.IntegerField(required=False, min_value=0, max_value=86_400_000)
