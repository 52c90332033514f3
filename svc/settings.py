"""Configuration from ``SVC_*`` environment variables (SPEC §3), validated at start-up."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .quantities import DEFAULT_CLASSIFIERS, NumberClassifier, parse_classifiers


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SVC_", extra="ignore")

    # a JSON list of {"name", "regex"} in match order (SPEC §12)
    number_classifiers: tuple[NumberClassifier, ...] = DEFAULT_CLASSIFIERS

    @field_validator("number_classifiers", mode="before")
    @classmethod
    def _parse_classifiers(cls, value: Any) -> tuple[NumberClassifier, ...]:
        if isinstance(value, tuple) and all(isinstance(c, NumberClassifier) for c in value):
            return value
        return parse_classifiers(value)
