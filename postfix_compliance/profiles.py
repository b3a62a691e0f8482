"""Profiles: the expected state of a host per platform, YAML, validated on load."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from postfix_compliance import layout
from postfix_compliance.errors import UsageError
from postfix_compliance.facts.probes import AUSEARCH_KEYWORDS, validate_since
from postfix_compliance.inputfiles import load_yaml, validate

PROFILES_DIR = layout.PROFILES_DIR

_BOOLEAN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "value"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
        "value": {"type": "boolean"},
    },
}

PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "selinux", "booleans", "labels", "queue"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "match": {
            "type": "object",
            "additionalProperties": False,
            "required": ["ids"],
            "properties": {
                "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "version": {"type": "string"},
            },
        },
        "selinux": {
            "type": "object",
            "additionalProperties": False,
            "required": ["mode", "policy"],
            "properties": {
                "mode": {"enum": ["enforcing"]},
                "policy": {"type": "string", "minLength": 1},
            },
        },
        "booleans": {"type": "array", "items": _BOOLEAN},
        "labels": {
            "type": "object",
            "additionalProperties": False,
            "required": ["queue_directory_type", "default_queue_directory"],
            "properties": {
                "queue_directory_type": {"type": "string", "pattern": "^[a-z0-9_]+_t$"},
                "default_queue_directory": {"type": "string", "pattern": "^/"},
                "chroot_copies": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}},
            },
        },
        "queue": {
            "type": "object",
            "additionalProperties": False,
            "required": ["deferred_threshold"],
            "properties": {
                "deferred_threshold": {"type": "integer", "minimum": 0},
                "drain_timeout": {"type": "number", "exclusiveMinimum": 0},
                "poll_interval": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "audit": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "since": {"type": "string"},
                # Target types of a login session's descriptors (see postfix_compliance/denials.py), and
                # whether Postfix denials on them fail AVC-002 ("fail") or are only listed ("show").
                "login_session_types": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9_]+_t$"}},
                "login_session_denials": {"enum": ["show", "fail"]},
            },
        },
        "postfix_domain_prefix": {"type": "string", "minLength": 1},
        "smtp_port_type": {"type": "string", "pattern": "^[a-z0-9_]+_t$"},
        "allowed_local_modules": {"type": "array", "items": {"type": "string"}},
    },
}


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    path: str
    data: dict[str, Any]

    def expected(self) -> dict[str, Any]:
        """What the remediation plan reads of the profile (carried with each host's results)."""
        return {"selinux_mode": self.selinux_mode, "selinux_policy": self.selinux_policy,
                "booleans": [list(b) for b in self.booleans],
                "default_queue_directory": self.default_queue_directory, "chroot_copies": list(self.chroot_copies),
                "smtp_port_type": self.smtp_port_type, "postfix_domain_prefix": self.postfix_domain_prefix}

    @property
    def booleans(self) -> tuple[tuple[str, bool], ...]:
        return tuple((b["name"], b["value"]) for b in self.data["booleans"])

    @property
    def selinux_mode(self) -> str:
        return self.data["selinux"]["mode"]

    @property
    def selinux_policy(self) -> str:
        return self.data["selinux"]["policy"]

    @property
    def queue_directory_type(self) -> str:
        return self.data["labels"]["queue_directory_type"]

    @property
    def default_queue_directory(self) -> str:
        return self.data["labels"]["default_queue_directory"]

    @property
    def chroot_copies(self) -> tuple[str, ...]:
        """Queue subdirectories the distribution's Postfix start-up refills with copies (Debian's chroot
        etc/, lib/...): their files take the label of whoever copied them, which is no queue fault."""
        return tuple(self.data["labels"].get("chroot_copies", ()))

    @property
    def deferred_threshold(self) -> int:
        return self.data["queue"]["deferred_threshold"]

    @property
    def drain_timeout(self) -> float:
        return float(self.data["queue"].get("drain_timeout", 60))

    @property
    def poll_interval(self) -> float:
        return float(self.data["queue"].get("poll_interval", 0.5))

    @property
    def postfix_domain_prefix(self) -> str:
        return self.data.get("postfix_domain_prefix", "postfix_")

    @property
    def login_session_types(self) -> tuple[str, ...]:
        return tuple(self.data.get("audit", {}).get("login_session_types", ()))

    @property
    def login_session_denials_fail(self) -> bool:
        return self.data.get("audit", {}).get("login_session_denials", "show") == "fail"

    @property
    def smtp_port_type(self) -> str:
        return self.data.get("smtp_port_type", "smtp_port_t")

    @property
    def allowed_local_modules(self) -> tuple[str, ...]:
        return tuple(self.data.get("allowed_local_modules", ()))

    def matches(self, os_id: str, version_id: str, id_like: tuple[str, ...] = ()) -> bool:
        match = self.data.get("match")
        if not match:
            return False
        if os_id not in match["ids"]:
            return False
        version = match.get("version")
        return version is None or version_id.split(".")[0] == version


def load_profile_file(path: str) -> Profile:
    data = load_yaml(path, "profile")
    validate(data, PROFILE_SCHEMA, path, "profile")
    since = data.get("audit", {}).get("since")
    if since is not None:
        # It becomes part of the ausearch/journalctl commands: only the forms those take, checked here.
        try:
            validate_since(since)
        except ValueError:
            raise UsageError(f"profile {path}: audit.since: {since!r} is not an audit window: use one of "
                             f"{', '.join(AUSEARCH_KEYWORDS)} or 'MM/DD/YYYY HH:MM:SS'") from None
    return Profile(data["name"], path, data)


def available_profiles(directory: str = PROFILES_DIR) -> dict[str, str]:
    """Profile name -> file, from the *.yaml files of a directory."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    return {os.path.splitext(n)[0]: os.path.join(directory, n) for n in names if n.endswith((".yaml", ".yml"))}


def load_profile(name_or_path: str, directory: str = PROFILES_DIR) -> Profile:
    """A profile by name (from the profiles directory) or by path to a YAML file."""
    if os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        return load_profile_file(name_or_path)
    known = available_profiles(directory)
    if name_or_path not in known:
        raise UsageError(f"unknown profile {name_or_path!r}: known profiles are {', '.join(known) or 'none'}"
                         f" (or give a path to a YAML file)")
    return load_profile_file(known[name_or_path])


ID_LIKE_MAX = 16


def detect_profile(os_id: str, version_id: str, id_like: tuple[str, ...] = (),
                   directory: str = PROFILES_DIR) -> Profile | None:
    """The first profile whose `match` fits the host's /etc/os-release, else None. Each profile is read
    once; ID_LIKE is a short list (os-release(5)): its first ID_LIKE_MAX distinct names are tried, so a
    host padding it with a million names costs nothing."""
    profiles = [load_profile_file(path) for path in available_profiles(directory).values()]
    likes = list(dict.fromkeys(id_like[:ID_LIKE_MAX * 8]))[:ID_LIKE_MAX]
    for name in (os_id, *likes):  # then e.g. a rebuild that names itself only through ID_LIKE
        for profile in profiles:
            if profile.matches(name, version_id):
                return profile
    return None
