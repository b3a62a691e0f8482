"""Profiles: every shipped profile validates, and detection from /etc/os-release picks the right one."""

import pytest

from postfix_compliance.errors import UsageError
from postfix_compliance.profiles import available_profiles, detect_profile, load_profile


def test_shipped_profiles_load():
    names = set(available_profiles())
    assert {"rhel8", "rhel9", "rhel10", "fedora", "debian12"} <= names
    for name in names:
        profile = load_profile(name)
        assert profile.name == name and profile.selinux_mode == "enforcing"
        assert ("postfix_local_write_mail_spool", True) in profile.booleans


@pytest.mark.parametrize("os_id, version, id_like, expected", [
    ("rhel", "9.4", (), "rhel9"),
    ("rhel", "8.10", (), "rhel8"),
    ("rhel", "10.0", (), "rhel10"),
    ("almalinux", "9.5", ("rhel", "centos", "fedora"), "rhel9"),
    ("fedora", "41", (), "fedora"),
    ("debian", "12", (), "debian12"),
    ("myrebuild", "9.2", ("rhel", "fedora"), "rhel9"),
])
def test_detection_from_os_release(os_id, version, id_like, expected):
    assert detect_profile(os_id, version, id_like).name == expected


def test_unknown_platform_detects_nothing():
    assert detect_profile("ubuntu", "24.04", ("debian",)) is None


def test_id_like_is_read_as_the_short_list_it_is():
    """A host padding ID_LIKE (a million names) is not a million tries of every profile: the first 16
    distinct names count (bench/parser_bench.py measures the time); repeats do not push a real one out."""
    assert detect_profile("myrebuild", "9.2", ("fedora",) * 100 + ("rhel",)).name == "fedora"
    assert detect_profile("myrebuild", "9.2", ("x",) * 1_000_000 + ("rhel",)) is None
    assert detect_profile("myrebuild", "9.2", tuple(f"n{i}" for i in range(16)) + ("rhel",)) is None
    assert detect_profile("myrebuild", "9.2", tuple(f"n{i}" for i in range(15)) + ("rhel",)).name == "rhel9"


def test_policy_names_differ_by_platform():
    assert load_profile("rhel9").selinux_policy == "targeted"
    assert load_profile("debian12").selinux_policy == "default"


def test_unknown_profile_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown profile 'rhel6'"):
        load_profile("rhel6")
