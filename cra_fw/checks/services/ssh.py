"""OpenSSH sshd_config and Debian-style dropbear defaults."""

from __future__ import annotations

from cra_fw.checks.services.base import ConfigFacts, Source, kv_lines, make_finding


class SshdConfig(Source):
    globs = ("*/ssh/sshd_config", "*/sshd_config")

    def parse(self, ctx, data, entry, lines, out):
        opts: dict[str, tuple[int, str]] = {}
        for no, key, value in kv_lines(lines):
            if key.lower() == "match":
                break  # global section only
            opts.setdefault(key.lower(), (no, value.split("#")[0].strip()))
        root = opts.get("permitrootlogin", (0, ""))
        pw = opts.get("passwordauthentication", (0, "yes"))[1].lower()
        if root[1].lower() == "yes" and pw != "no":
            out.findings.append(
                make_finding(
                    ctx,
                    "services.ssh-root-password",
                    entry,
                    root[0],
                    f"PermitRootLogin yes, PasswordAuthentication {pw}",
                )
            )
        empty = opts.get("permitemptypasswords", (0, "no"))
        if empty[1].lower() == "yes":
            out.findings.append(
                make_finding(ctx, "services.ssh-empty-password", entry, empty[0], "PermitEmptyPasswords yes")
            )
        port = opts.get("port", (0, "22"))[1]
        out.configs.append(
            ConfigFacts(
                "ssh",
                entry,
                int(port) if port.isdecimal() else 22,
                opts.get("listenaddress", (0, ""))[1],
                "password+key" if pw != "no" else "key",
                "tcp",
            )
        )


class DropbearDefaults(Source):
    """/etc/default/dropbear (Debian-style DROPBEAR_EXTRA_ARGS / DROPBEAR_PORT)."""

    globs = ("*/etc/default/dropbear",)

    def parse(self, ctx, data, entry, lines, out):
        for no, key, value in kv_lines(lines, r"="):
            value = value.strip("'\"")
            if key == "DROPBEAR_PORT" and value.isdecimal():
                out.configs.append(ConfigFacts("ssh", entry, int(value), protocol="tcp"))
            if key == "DROPBEAR_EXTRA_ARGS":
                flags = "".join(a[1:] for a in value.split() if a.startswith("-"))
                if not any(f in flags for f in "wsg"):
                    out.findings.append(
                        make_finding(
                            ctx,
                            "services.ssh-root-password",
                            entry,
                            no,
                            f"DROPBEAR_EXTRA_ARGS={value!r} (no -w/-s/-g)",
                        )
                    )
