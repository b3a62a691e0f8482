"""Output formats of the real tools, for the scenario snapshots.

Each function prints what the tool prints, column widths included, following the tool's own
source (cited per function). tests/test_scenarios.py holds every one that has a real sample in
tests/reference/ to that sample byte for byte, so the snapshots cannot drift into a made-up form.
"""

from __future__ import annotations

import json
import time
from typing import Iterable, Sequence

# ----------------------------------------------------------------------------- SELinux userland


def sestatus(enabled: bool, policy: str = "targeted", current: str = "enforcing", config: str = "enforcing",
             mls: bool = True, memory_protection: bool = True, max_policy: int = 33) -> str:
    """policycoreutils sestatus: `printf("%-32s%s\\n", label, value)`; no "Memory protection
    checking" line before libselinux 2.8 (RHEL 7)."""
    def line(label: str, value: str) -> str:
        return f"{label + ':':<32}{value}\n"

    if not enabled:
        return line("SELinux status", "disabled")
    out = [line("SELinux status", "enabled"), line("SELinuxfs mount", "/sys/fs/selinux"),
           line("SELinux root directory", "/etc/selinux"), line("Loaded policy name", policy),
           line("Current mode", current), line("Mode from config file", config),
           line("Policy MLS status", "enabled" if mls else "disabled"),
           line("Policy deny_unknown status", "allowed")]
    if memory_protection:
        out.append(line("Memory protection checking", "actual (secure)"))
    out.append(line("Max kernel policy version", str(max_policy)))
    return "".join(out)


_CONFIG_RHEL9 = """
# This file controls the state of SELinux on the system.
# SELINUX= can take one of these three values:
#     enforcing - SELinux security policy is enforced.
#     permissive - SELinux prints warnings instead of enforcing.
#     disabled - No SELinux policy is loaded.
# See also:
# https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9/html/using_selinux/changing-selinux-states-and-modes_using-selinux#changing-selinux-modes-at-boot-time_changing-selinux-states-and-modes
#
# NOTE: Up to RHEL 8 release included, SELINUX=disabled would also
# fully disable SELinux during boot. If you need a system with SELinux
# fully disabled instead of SELinux running with no policy loaded, you
# need to pass selinux=0 to the kernel command line. You can use grubby
# to persistently set the bootloader to boot with selinux=0:
#
#    grubby --update-kernel ALL --args selinux=0
#
# To revert back to SELinux enabled:
#
#    grubby --update-kernel ALL --remove-args selinux
#
SELINUX={selinux}
# SELINUXTYPE= can take one of these three values:
#     targeted - Targeted processes are protected,
#     minimum - Modification of targeted policy. Only selected processes are protected.
#     mls - Multi Level Security protection.
SELINUXTYPE={selinuxtype}

"""

_CONFIG_RHEL8 = """
# This file controls the state of SELinux on the system.
# SELINUX= can take one of these three values:
#     enforcing - SELinux security policy is enforced.
#     permissive - SELinux prints warnings instead of enforcing.
#     disabled - No SELinux policy is loaded.
SELINUX={selinux}
# SELINUXTYPE= can take one of these three values:
#     targeted - Targeted processes are protected,
#     minimum - Modification of targeted policy. Only selected processes are protected. 
#     mls - Multi Level Security protection.
SELINUXTYPE={selinuxtype}


"""

# RHEL 7 shipped the "one of three two values" typo for years.
_CONFIG_RHEL7 = """
# This file controls the state of SELinux on the system.
# SELINUX= can take one of these three values:
#     enforcing - SELinux security policy is enforced.
#     permissive - SELinux prints warnings instead of enforcing.
#     disabled - No SELinux policy is loaded.
SELINUX={selinux}
# SELINUXTYPE= can take one of three two values:
#     targeted - Targeted processes are protected,
#     minimum - Modification of targeted policy. Only selected processes are protected. 
#     mls - Multi Level Security protection.
SELINUXTYPE={selinuxtype} 


"""

SELINUX_CONFIGS = {"rhel9": _CONFIG_RHEL9, "rhel8": _CONFIG_RHEL8, "rhel7": _CONFIG_RHEL7}


def selinux_config(flavour: str, selinux: str, selinuxtype: str, template: str | None = None) -> str:
    """/etc/selinux/config as the distribution ships it (selinux-policy's config file)."""
    text = template if template is not None else SELINUX_CONFIGS[flavour]
    return text.replace("{selinux}", selinux).replace("{selinuxtype}", selinuxtype)


def getsebool(values: dict[str, bool]) -> str:
    """getsebool: `printf("%s --> %s\\n", name, on/off)`."""
    return "".join(f"{name} --> {'on' if value else 'off'}\n" for name, value in values.items())


def semanage_boolean(rows: Iterable[tuple[str, bool, bool, str]]) -> str:
    """seobject.booleanRecords.list: header `%-30s %s  %s %s\\n`, rows `%-30s (%-5s,%5s)  %s`
    with (runtime, persistent); rows sorted by name."""
    word = {False: "off", True: "on"}
    out = ["%-30s %s  %s %s\n\n" % ("SELinux boolean", "State", "Default", "Description")]
    for name, current, default, description in sorted(rows):
        out.append("%-30s (%-5s,%5s)  %s\n" % (name, word[current], word[default], description))
    return "".join(out)


def semanage_permissive(builtin: Sequence[str], customized: Sequence[str]) -> str:
    """seobject.permissiveRecords.list: nothing at all when no type is permissive; else the
    builtin heading (types not customized), then the customized heading when there are any."""
    if not builtin and not customized:
        return ""
    out = ["\n%-25s\n\n" % "Builtin Permissive Types"]
    out += [f"{t}\n" for t in builtin]
    if customized:
        out.append("\n%-25s\n\n" % "Customized Permissive Types")
        out += [f"{t}\n" for t in customized]
    return "".join(out)


def semanage_fcontext_local(rules: Sequence[tuple[str, str, str]], equivalences: dict[str, str]) -> str:
    """seobject.fcontextRecords.list(locallist=1): `%-50s %-18s %s ` rows (MLS: the context ends
    in a space), then the local equivalences under their heading; nothing when there is neither."""
    out = []
    if rules:
        out.append("%-50s %-18s %s\n\n" % ("SELinux fcontext", "type", "Context"))
        for spec, file_type, context in sorted(rules):
            out.append("%-50s %-18s %s \n" % (spec, file_type, context))
    if equivalences:
        out.append("\nSELinux Local fcontext Equivalence \n\n")
        out += [f"{path} = {target}\n" for path, target in equivalences.items()]
    return "".join(out)


def semanage_port(rows: Sequence[tuple[str, str, str]]) -> str:
    """seobject.portRecords.list: header `%-30s %-8s %s\\n`, rows `%-30s %-8s ` + ports, sorted
    by (type, protocol)."""
    out = ["%-30s %-8s %s\n\n" % ("SELinux Port Type", "Proto", "Port Number")]
    for port_type, proto, ports in sorted(rows):
        out.append("%-30s %-8s %s\n" % (port_type, proto, ports))
    return "".join(out)


def semodule_lfull(modules: Sequence[tuple[int, str, str, bool]]) -> str:
    """semodule -lfull: `printf("%0*u %-*s %-*s %-*s\\n")` with widths 3, longest name, 0 (column[2]
    is never set upstream) and max(8, longest lang_ext) for "disabled"."""
    if not modules:
        return "No modules.\n"
    name_width = max(len(name) for _, name, _, _ in modules)
    ext_width = max([8] + [len(kind) for _, _, kind, _ in modules])
    return "".join("%03u %-*s %s %-*s\n" % (priority, name_width, name, kind, ext_width,
                                             "" if enabled else "disabled")
                   for priority, name, kind, enabled in modules)


def restorecon(relabels: Sequence[tuple[str, str, str]], style: str = "would") -> str:
    """restorecon -Rnv: policycoreutils >= 2.7 `Would relabel P from OLD to NEW`; 2.5 (RHEL 7)
    `restorecon reset P context OLD->NEW` (the same line with and without -n)."""
    if style == "reset":
        return "".join(f"restorecon reset {p} context {old}->{new}\n" for p, old, new in relabels)
    return "".join(f"Would relabel {p} from {old} to {new}\n" for p, old, new in relabels)


def ls_zd(path: str, context: str | None, style: str = "short", mode: str = "drwxr-xr-x.",
          owner: str = "root", group: str = "root") -> str:
    """ls -Zd: coreutils >= 8.30 `CTX PATH` (`? PATH` without a label); coreutils 8.22 (RHEL 7)
    the long form `MODE OWNER GROUP CTX PATH`."""
    if style == "long":
        return f"{mode} {owner} {group} {context or '?'} {path}\n"
    return f"{context or '?'} {path}\n"


# ----------------------------------------------------------------------------- procps, iproute2


def ps_eZ(processes: Sequence[tuple[str, int, str, str, str]], pid_width: int = 7) -> str:
    """procps-ng 3.3 `ps -eZ`: LABEL (31, left), PID (digits of pid_max, right), TTY (8, left),
    TIME (8, right), CMD. A value wider than its column pushes the next ones right, taking the
    overflow out of their padding first (show_one_proc)."""
    columns = ((31, "left"), (pid_width, "right"), (8, "left"), (8, "right"))

    def row(values: Sequence[str]) -> str:
        out, carry = "", 0
        for (width, align), value in zip(columns, values):
            pad = width - len(value)
            if pad < 0:
                carry, pad = carry - pad, 0
            else:
                take = min(carry, pad)
                pad, carry = pad - take, carry - take
            out += (value + " " * pad if align == "left" else " " * pad + value) + " "
        return out + values[4]

    lines = [row(("LABEL", "PID", "TTY", "TIME", "CMD"))]
    lines += [row((label, str(pid), tty, cputime, cmd)) for label, pid, tty, cputime, cmd in processes]
    return "\n".join(lines) + "\n"


# (state, recv-q, send-q, local address, local port, peer address, peer port, users or None);
# users is what ss prints inside users:(...), e.g. ("master",pid=1189,fd=13)
Listener = tuple[str, int, int, str, str, str, str, "str | None"]


def _ss_render(columns: Sequence[tuple[str, str, str]], rows: Sequence[Sequence[str]],
               screen_width: int | None) -> str:
    """iproute2 >= 4.15 ss render(): widths from content (render_calc_width); screen_width None
    is the compact output of non-terminals (>= 5.5), a number the older fixed 80 columns with
    the spare space spread over the columns of a line."""
    widths, first = [], True
    for index, (_, header, ldelim) in enumerate(columns):
        longest = max(len(r[index]) for r in rows)
        width = longest + len(ldelim) if (not first and longest) else longest
        widths.append(width)
        first = first and not width
    if screen_width is not None:
        eol, length, linecols, c = -1, 0, 0, 0
        while c < len(widths):
            if not widths[c]:
                c += 1
                continue
            linecols += 1
            length += widths[c]
            last = not any(widths[c + 1:])
            if not last and length < screen_width:
                c += 1
                continue
            if length != screen_width:
                if length > screen_width:
                    length -= widths[c]
                    c -= 1
                    linecols -= 1
                spacing, rem = divmod(screen_width - length, linecols)
                for t in range(c, eol, -1):
                    if widths[t]:
                        widths[t] += spacing + (1 if rem else 0)
                        rem -= 1 if rem else 0
            eol, length, linecols = c, 0, 0
            c += 1
    out = []
    for row in rows:
        line, started = "", False
        for (align, _, ldelim), width, value in zip(columns, widths, row):
            printed = 0
            if started:
                line += ldelim
                printed = len(ldelim)
            started = True
            if width and align == "right":
                pad = width - len(value) - printed
                line += " " * max(pad, 0)
                printed += max(pad, 0)
            line += value
            printed += len(value)
            if width and align == "left":
                line += " " * max(width - printed, 0)
        out.append(line)
    return "\n".join(out) + "\n"


def ss_lntp(listeners: Sequence[Listener], style: str = "compact") -> str:
    """`ss -lntp`. style "compact": iproute2 >= 5.7 piped (Debian 12, RHEL 9: the "Process"
    header, columns as wide as their content); "spread80": iproute2 4.15-5.4 (RHEL 8.2's 5.3: no
    "Process" header, 80 columns spread over the fields); "legacy": iproute2 4.11 (RHEL 7)."""
    if style == "legacy":
        return _ss_legacy(listeners)
    process_header = "Process" if style == "compact" else ""
    columns = [("left", "State", ""), ("left", "Recv-Q", " "), ("left", "Send-Q", " "),
               ("right", "Local Address:", " "), ("left", "Port", ""), ("right", "Peer Address:", " "),
               ("left", "Port", ""), ("left", process_header, "")]
    if style == "compact":
        columns.append(("left", "", ""))
    rows = [[c[1] for c in columns]]
    for state, recvq, sendq, local, lport, peer, pport, users in listeners:
        row = [state, f"{recvq:<6d}", f"{sendq:<6d}", local + ":", lport, peer + ":", pport,
               f" users:({users})" if users else ""]
        rows.append(row + ([""] if style == "compact" else []))
    return _ss_render(columns, rows, None if style == "compact" else 80)


def _ss_legacy(listeners: Sequence[Listener]) -> str:
    """iproute2 4.11 ss (RHEL 7), not a terminal: 80 columns, State 10 wide (listening shows
    LISTEN|CLOSE), address 7 + port 18 after the "space for the port field" adjustment; IPv4
    any-address printed as `*`, IPv6 addresses bare (`:::22`)."""
    addr_width, serv_width = 7, 18
    out = ["%-10s " % "State" + "%-6s %-6s " % ("Recv-Q", "Send-Q")
           + "%*s:%-*s %*s:%-*s\n" % (addr_width, "Local Address", serv_width, "Port",
                                       addr_width, "Peer Address", serv_width, "Port")]
    for state, recvq, sendq, local, lport, peer, pport, users in listeners:
        line = "%-10s " % state + "%-6d %-6d " % (recvq, sendq)
        for address, port in ((local, lport), (peer, pport)):
            address = "*" if address == "0.0.0.0" else address.strip("[]")
            width = addr_width
            if ":" in address and len(address) > addr_width:  # inet_addr_print's IPv6 rounding
                width = addr_width + ((len(address) - addr_width + 3) // 4) * 4
            line += "%*s:%-*s " % (width, address, serv_width, port)
        if users:
            line += f" users:({users})"
        out.append(line + "\n")
    return "".join(out)


# ----------------------------------------------------------------------------- Postfix queue


def _asctime20(epoch: int) -> str:
    """The first 20 characters of asctime(localtime(t)) on a UTC host: `Sat Nov 28 13:14:56 `."""
    t = time.gmtime(epoch)
    return time.strftime("%a %b ", t) + f"{t.tm_mday:>2}" + time.strftime(" %H:%M:%S ", t)


def postqueue_j(messages: Sequence[dict], forced_expire: bool = True) -> str:
    """postqueue -j: one JSON object per message, keys in Postfix's order; `forced_expire`
    exists from Postfix 3.5 on."""
    out = []
    for m in messages:
        obj = {"queue_name": m["queue_name"], "queue_id": m["queue_id"], "arrival_time": m["arrival_time"],
               "message_size": m["message_size"]}
        if forced_expire:
            obj["forced_expire"] = False
        obj["sender"] = m["sender"]
        obj["recipients"] = [{"address": a, **({"delay_reason": r} if r else {})} for a, r in m["recipients"]]
        out.append(json.dumps(obj) + "\n")
    return "".join(out)


def mailq(messages: Sequence[dict]) -> str:
    """postqueue -p / mailq (showq): `%-11s %7ld %20.20s %s` per message (queue id with `*`
    active or `!` held), the delay reason right-aligned at column 78 (`%*s(%s)`, padding
    76 - length, at least 0), recipients at column 42, a blank line, then the total."""
    if not messages:
        return "Mail queue is empty\n"
    flags = {"active": "*", "hold": "!"}
    out = ["-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"]
    for m in messages:
        qid = m["queue_id"] + flags.get(m["queue_name"], "")
        out.append("%-11s %7d %s %s\n" % (qid, m["message_size"], _asctime20(m["arrival_time"]),
                                         m["sender"] or "MAILER-DAEMON"))
        for address, reason in m["recipients"]:
            if reason:
                out.append("%*s(%s)\n" % (max(76 - len(reason), 0), "", reason))
            out.append("%41s%s\n" % ("", address))
        out.append("\n")
    total = sum(m["message_size"] for m in messages)
    count = len(messages)
    out.append(f"-- {total // 1024} Kbytes in {count} Request{'s' if count != 1 else ''}.\n")
    return "".join(out)


# ----------------------------------------------------------------------------- everything else


def getent_ahosts(name: str, addresses: Sequence[str]) -> str:
    """getent ahosts: `%-15s %-6s %s\\n` per address and socket type, the name on STREAM only."""
    out = []
    for address in addresses:
        out += ["%-15s %-6s %s\n" % (address, "STREAM", name), "%-15s %-6s \n" % (address, "DGRAM"),
                "%-15s %-6s \n" % (address, "RAW")]
    return "".join(out)


def firewall_list_all(zone: str, interfaces: str, services: Sequence[str], ports: Sequence[str] = (),
                      forward_line: bool = True, rich_tab: bool = False) -> str:
    """firewall-cmd --list-all of the default zone (firewalld 0.6-1.x; `forward:` from 1.0)."""
    lines = [f"{zone} (active)", "  target: default", "  icmp-block-inversion: no",
             f"  interfaces: {interfaces}", "  sources: ", f"  services: {' '.join(services)}",
             f"  ports: {' '.join(ports)}", "  protocols: "]
    if forward_line:
        lines.append("  forward: yes")
    lines += ["  masquerade: no", "  forward-ports: ", "  source-ports: ", "  icmp-blocks: ", "  rich rules: "]
    if rich_tab:
        lines.append("\t")
    return "\n".join(lines) + "\n"
