"""Scheduling policies (pure): interface in `base`, implementations registered by `registry`."""

from tutor.policy import registry as registry
