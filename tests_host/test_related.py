"""Related errors of the runbook: relay DNS, listener port labels, firewall, SASL credentials."""

import stat

from postfix_compliance.checks import bullet_list, check, require_postfix, require_selinux
from postfix_compliance.facts import model
from postfix_compliance.facts.host import not_applicable
from postfix_compliance.runbook import SMTP_SERVICES



@check(id="REL-001", title="relayhost resolves", severity="medium", section="Related",
       rationale="An unresolvable relayhost defers everything with 'Host or domain name not found': a DNS "
                 "problem that looks like a stuck queue.",
       remediation=["postconf relayhost", "getent ahosts <relayhost>", "cat /etc/resolv.conf"],
       references=["runbook: Related Errors & Cross-Refs (DNS resolver issues)"])
def test_relayhost_resolves(facts):
    require_postfix(facts)
    resolution = facts.need("relay_resolution")
    if not resolution.name:
        raise not_applicable("no relayhost configured (direct delivery)")
    assert resolution.addresses, f"relayhost {resolution.name} does not resolve (getent ahosts)"


@check(id="REL-002", title="Every port master listens on is labelled for SMTP", severity="medium",
       section="Related",
       rationale="smtpd on an unlabelled port cannot bind after a restart under enforcing policy.",
       remediation=["semanage port -a -t smtp_port_t -p tcp <port>"],
       rollback=["semanage port -d -t smtp_port_t -p tcp <port>"],
       references=["design: only listener ports need smtp_port_t"])
def test_listener_ports_labelled(facts, profile):
    require_postfix(facts)
    require_selinux(facts)
    listeners = facts.need("listeners")
    ports = sorted({l.port for l in listeners.listeners if l.held_by("master")})
    if not ports:
        raise not_applicable("master listens on no TCP port (see SVC-003)")
    labels = facts.need("port_labels")
    wrong = [p for p in ports if profile.smtp_port_type not in labels.types_for(p, "tcp")]
    assert not wrong, "master listens on ports not labelled " + profile.smtp_port_type + ": " + \
        ", ".join(map(str, wrong))


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address.strip("[]").split("%")[0] == "::1"


@check(id="REL-003", title="The firewall admits SMTP when Postfix listens beyond loopback", severity="medium",
       section="Related",
       rationale="A firewall that blocks 25 looks like a dead relay from the other side.",
       remediation=["firewall-cmd --permanent --add-service=smtp", "firewall-cmd --reload"],
       rollback=["firewall-cmd --permanent --remove-service=smtp && firewall-cmd --reload"],
       references=["runbook: Related Errors & Cross-Refs (firewall SMTP blocks)"])
def test_firewall_admits_smtp(facts):
    require_postfix(facts)
    listeners = facts.need("listeners")
    public = sorted({l.port for l in listeners.listeners
                     if l.held_by("master") and not _is_loopback(l.address)})
    if not public:
        raise not_applicable("Postfix listens on loopback only")
    firewall = facts.get("firewall")
    if isinstance(firewall, model.Unavailable) or (isinstance(firewall, model.FirewallState)
                                                   and not firewall.running):
        raise not_applicable("firewalld is not running (other firewalls are not inspected)")
    firewall = facts.need("firewall")
    blocked = [p for p in public
               if SMTP_SERVICES.get(p) not in firewall.services and f"{p}/tcp" not in firewall.ports]
    assert not blocked, "firewalld does not admit port(s) " + ", ".join(map(str, blocked)) + \
        " where master listens beyond loopback"


@check(id="REL-004", title="SASL password maps are root-owned, 0600, and their .db is current",
       severity="medium", section="Related", static=True,
       rationale="Readable credentials leak the relay password; a .db older than its source means Postfix "
                 "authenticates with the old password (relay credential failures).",
       remediation=["chown root:root /etc/postfix/sasl_passwd*", "chmod 0600 /etc/postfix/sasl_passwd*",
                    "postmap /etc/postfix/sasl_passwd"],
       references=["runbook: Related Errors & Cross-Refs (relay credential failures)"])
def test_sasl_maps(facts):
    require_postfix(facts)
    if not (facts.postconf("smtp_sasl_password_maps") or "").strip():
        raise not_applicable("no smtp_sasl_password_maps configured")
    stats = facts.need("sasl_maps")
    present = [f for f in stats.files if f.exists]
    problems = []
    for f in present:
        if f.owner != "root":
            problems.append(f"{f.path} is owned by {f.owner}, expected root")
        if f.mode is not None and f.mode & (stat.S_IRWXG | stat.S_IRWXO):
            problems.append(f"{f.path} has mode {f.mode:04o}, expected 0600")
    by_path = {f.path: f for f in present}
    for f in present:
        for suffix in (".db", ".lmdb"):
            table = by_path.get(f.path + suffix)
            if table and f.mtime is not None and table.mtime is not None and table.mtime < f.mtime:
                problems.append(f"{table.path} is older than {f.path}")
    if not present:
        problems.append("none of the configured SASL map files exist")
    assert not problems, "SASL password maps:\n" + bullet_list(problems)
