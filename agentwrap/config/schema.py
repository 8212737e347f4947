"""pydantic schema of a profile TOML file.

Unknown keys are refused, so a typo is an error naming the field rather than a
silent no-op; new keys (routing rules, failover) are added here as they land.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendSchema(_Strict):
    type: Literal["http", "scripted"] = "http"
    protocol: Literal["anthropic_messages", "openai_chat", "openai_responses", "gemini"] | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0)
    script: str | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> "BackendSchema":
        if self.type == "http":
            if self.protocol is None:
                raise ValueError(
                    'an http backend needs `protocol` (anthropic_messages | openai_chat | openai_responses | gemini)'
                )
            if not self.base_url:
                raise ValueError("an http backend needs `base_url`")
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"`base_url` must start with http:// or https://, not {self.base_url!r}")
        else:
            if not self.script:
                raise ValueError('a scripted backend needs `script = "PATH"`')
        return self


class WhenSchema(_Strict):
    agent: Literal["claude", "codex", "gemini"] | None = None
    model: str | None = None
    tools: bool | None = None
    thinking: bool | None = None


class RouteSchema(_Strict):
    backend: str
    model: str | None = None
    when: WhenSchema | None = None
    fallbacks: list[str] = Field(default_factory=list)


class ProfileSchema(_Strict):
    name: str | None = None
    description: str | None = None
    backends: dict[str, BackendSchema] = Field(default_factory=dict)
    routes: list[RouteSchema] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_refs(self) -> "ProfileSchema":
        if not self.backends:
            raise ValueError("a profile needs at least one [backends.NAME] table")
        known = sorted(self.backends)
        for i, route in enumerate(self.routes):
            for name in (route.backend, *route.fallbacks):
                if name not in self.backends:
                    raise ValueError(f"routes[{i}] names backend {name!r}, which is not defined (known: {', '.join(known)})")
        return self
