"""A site's own checks: their own ids and section, facts from the suite's probes and from their own."""

from postfix_compliance.checks import check


@check(id="SITE-001", title="Postfix's myhostname is set", severity="medium", section="Site policy",
       rationale="Mail leaves with the name the site registered.", remediation=("postconf -e myhostname=...",))
def test_myhostname_is_set(facts):
    value = facts.postconf("myhostname")  # asked for by conftest.py's hook
    assert value, "myhostname unset"
    facts.say(f"myhostname = {value}")


@check(id="SITE-002", title="/etc/mailname names a host", severity="low", section="Site policy",
       rationale="Debian's Postfix takes myorigin from /etc/mailname.")
def test_mailname(facts):
    name = facts.need("site_mailname")  # the site's own probe
    assert "." in name, f"/etc/mailname is {name!r}, not a fully qualified name"
    facts.say(f"/etc/mailname = {name}")


@check(id="SITE-003", title="myorigin is set (a parameter nobody asked for)", severity="low",
       section="Site policy", rationale="Shows that reading a fact nobody collected is an error, not a fail.")
def test_a_parameter_nobody_asked_for(facts):
    assert facts.postconf("myorigin"), "myorigin unset"
