"""Configuration from ``SVC_*`` environment variables (SPEC §3), validated at start-up."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .quantities import DEFAULT_CLASSIFIERS, NumberClassifier, parse_classifiers


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SVC_", extra="ignore")

    # a JSON list of {"name", "regex"} in match order (SPEC §12); decoded by parse_classifiers
    number_classifiers: Annotated[tuple[NumberClassifier, ...], NoDecode] = DEFAULT_CLASSIFIERS

    @field_validator("number_classifiers", mode="before")
    @classmethod
    def _parse_classifiers(cls, value: Any) -> tuple[NumberClassifier, ...]:
        if isinstance(value, tuple) and all(isinstance(c, NumberClassifier) for c in value):
            return value
        return parse_classifiers(value)


class SettingsError(ValueError):
    """A bad ``SVC_*`` value: the message names the variable and the rule."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"SVC_{str(e['loc'][0]).upper()}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise SettingsError(problems) from None
