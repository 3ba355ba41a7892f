"""Service inventory and attack-surface findings from start scripts and daemon configs."""

from __future__ import annotations

from cra_fw.checks import run
from cra_fw.checks.services import load_data, parse_command

from .conftest import DATA, tree_context, write_tree


def _findings(result):
    return sorted((f.rule_id, f.location.path, f.location.line) for f in result.findings)


def test_parse_command_wrappers_and_ports():
    data = load_data()
    d, binary, args, port, bind = parse_command(
        "start-stop-daemon -S -b -x /usr/sbin/telnetd -- -p 2323", data
    )
    assert (d.service, binary, args, port) == ("telnet", "/usr/sbin/telnetd", ["-p", "2323"], 2323)
    d, binary, args, port, bind = parse_command("udpsvd -vE 0 69 tftpd -c /srv/tftp", data)
    assert (d.service, binary, port, bind) == ("tftp", "tftpd", 69, "0.0.0.0")
    d, binary, _, port, bind = parse_command("/usr/sbin/dropbear -F -p 192.168.1.1:2222", data)
    assert (d.service, port, bind) == ("ssh", 2222, "192.168.1.1")
    assert parse_command("killall telnetd", data) is None
    assert parse_command("[ -x /usr/sbin/telnetd ]", data) is None
    assert parse_command("echo telnetd", data) is None


def test_busybox_router_start_mechanisms(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "/etc/inittab": "::sysinit:/etc/init.d/rcS\n"
            "::askfirst:-/bin/sh\n"
            "ttyS1::respawn:/sbin/getty -L ttyS1 115200 vt100\n"
            "ttyS2::respawn:/sbin/getty -n -l /bin/sh ttyS2 115200\n"
            "::ctrlaltdel:/sbin/reboot\n",
            "/etc/init.d/rcS": "#!/bin/sh\n"
            "# telnetd -l /bin/sh   (a comment must not count)\n"
            "killall -q telnetd\n"
            "[ -x /usr/sbin/utelnetd ] && /usr/sbin/utelnetd -p 23 -l /bin/login &\n"
            "udpsvd -vE 0 69 tftpd -c /srv &\n"
            "tcpsvd 0 21 ftpd -w -a ftp /srv &\n"
            "/usr/bin/gdbserver :1234 /usr/bin/app &\n"
            "httpd -p 8080 -h /www\n"
            "dropbear -p 22\n",
            "/etc/inetd.conf": "# service sock proto wait user server args\n"
            "telnet stream tcp nowait root /usr/sbin/telnetd telnetd -i\n"
            "login stream tcp nowait root /usr/sbin/tcpd in.rlogind\n"
            "time stream tcp nowait root internal\n",
            "/etc/xinetd.d/tftp": "service tftp\n{\n\tdisable = no\n\tsocket_type = dgram\n"
            "\tserver = /usr/sbin/in.tftpd\n\tserver_args = -s /srv\n}\n",
            "/etc/xinetd.d/telnet": "service telnet\n{\n\tdisable = yes\n\tserver = /usr/sbin/in.telnetd\n}\n",
        },
    )
    result = run(tree_context(root), only=("services",))
    assert _findings(result) == sorted(
        [
            ("services.shell-no-login", "/etc/inittab", 2),  # ::askfirst:-/bin/sh
            ("services.shell-no-login", "/etc/inittab", 4),  # getty -n -l /bin/sh
            ("services.telnet", "/etc/init.d/rcS", 4),
            ("services.tftp", "/etc/init.d/rcS", 5),
            ("services.ftp-anonymous", "/etc/init.d/rcS", 6),
            ("services.debug-daemon", "/etc/init.d/rcS", 7),
            ("services.http-admin", "/etc/init.d/rcS", 8),
            ("services.ssh-root-password", "/etc/init.d/rcS", 9),
            ("services.telnet", "/etc/inetd.conf", 2),
            ("services.rlogin", "/etc/inetd.conf", 3),
            ("services.tftp", "/etc/xinetd.d/tftp", 1),
        ]
    )
    by_started = {s.started_by: s for s in result.services}
    telnet = by_started["script:/etc/init.d/rcS:4"]
    assert (telnet.name, telnet.binary, telnet.port, telnet.protocol) == (
        "telnet",
        "/usr/sbin/utelnetd",
        23,
        "tcp",
    )
    assert by_started["inetd:/etc/inetd.conf:3"].binary == "in.rlogind"
    tftp = by_started["script:/etc/init.d/rcS:5"]
    assert (tftp.port, tftp.bind_address, tftp.protocol) == (69, "0.0.0.0", "udp")
    assert by_started["script:/etc/init.d/rcS:8"].port == 8080
    console = [(s.bind_address, s.authentication) for s in result.services if s.protocol == "serial"]
    assert sorted(console) == [("console", "none"), ("ttyS1", "password"), ("ttyS2", "none")]
    for f in result.findings:
        assert f.category == "services" and f.cra_reference and f.remediation
    telnet_f = next(f for f in result.findings if f.rule_id == "services.telnet")
    assert "Annex I Part I (2)(e)" in telnet_f.cra_reference


def test_daemon_configs(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "/etc/ssh/sshd_config": "Port 2222\nPermitRootLogin yes\n#PasswordAuthentication no\n"
            "PermitEmptyPasswords yes\nMatch User x\n  PermitRootLogin no\n",
            "/etc/mosquitto/mosquitto.conf": "listener 1883 0.0.0.0\nallow_anonymous true\n",
            "/etc/miniupnpd/miniupnpd.conf": "ext_ifname=eth1\nlistening_ip=eth1\nenable_upnp=yes\n",
            "/etc/samba/smb.conf": "[global]\n  security = user\n[public]\n  path = /mnt\n  guest ok = yes\n",
            "/etc/lighttpd/lighttpd.conf": 'server.port = 80\nserver.document-root = "/www"\n',
            "/etc/nginx/nginx.conf": "http {\n server {\n  listen 443 ssl;\n }\n}\n",
            "/etc/config/upnpd": "config upnpd 'config'\n\toption enabled '1'\n\toption internal_iface 'lan wan'\n",
            "/etc/config/snmpd": "config community 'public'\n\toption community 'public'\n",
            "/etc/default/dropbear": 'DROPBEAR_PORT=2022\nDROPBEAR_EXTRA_ARGS="-B"\n',
            "/etc/proftpd/proftpd.conf": "ServerName x\n<Anonymous ~ftp>\n</Anonymous>\n",
            # a real ELF under the name of the debug server: shipped, never started
            "/usr/bin/gdbserver": (DATA / "debian" / "true-armhf").read_bytes(),
        },
    )
    result = run(tree_context(root), only=("services",))
    got = _findings(result)
    assert got == sorted(
        [
            ("services.ssh-root-password", "/etc/ssh/sshd_config", 2),
            ("services.ssh-empty-password", "/etc/ssh/sshd_config", 4),
            ("services.mqtt-anonymous", "/etc/mosquitto/mosquitto.conf", 2),
            ("services.upnp-wan", "/etc/miniupnpd/miniupnpd.conf", 2),
            ("services.smb-guest", "/etc/samba/smb.conf", 5),
            ("services.http-admin", "/etc/lighttpd/lighttpd.conf", 1),
            ("services.upnp-wan", "/etc/config/upnpd", 3),
            ("services.snmp-community", "/etc/config/snmpd", 2),
            ("services.ssh-root-password", "/etc/default/dropbear", 2),
            ("services.ftp-anonymous", "/etc/proftpd/proftpd.conf", 2),
            ("services.debug-daemon", "/usr/bin/gdbserver", None),
        ]
    ), got
    shipped = next(f for f in result.findings if f.rule_id == "services.debug-daemon")
    assert shipped.severity.value == "low"
    names = {s.name for s in result.services}
    assert {"ssh", "mqtt", "upnp", "smb", "http"} <= names
    ssh = [s for s in result.services if s.config == "/etc/ssh/sshd_config"]
    assert ssh and ssh[0].port == 2222 and ssh[0].started_by == ""


def test_safe_configuration_reports_nothing(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "/etc/inittab": "::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100\n"
            "::askconsole:/usr/libexec/login.sh\n",
            "/etc/init.d/rcS": "#!/bin/sh\n/usr/sbin/dropbear -R -s -w -p 22\nsyslogd\n",
            "/etc/ssh/sshd_config": "PermitRootLogin prohibit-password\nPasswordAuthentication no\n",
            "/etc/snmp/snmpd.conf": "rocommunity Zq8-unique-community 10.0.0.0/8\n",
            "/etc/vsftpd.conf": "anonymous_enable=NO\nlocal_enable=YES\n",
            "/etc/mosquitto/mosquitto.conf": "listener 8883\nallow_anonymous false\npassword_file /etc/mosquitto/pw\n",
            "/etc/config/uhttpd": "config uhttpd 'main'\n\tlist listen_https '0.0.0.0:443'\n",
            "/etc/config/dropbear": "config dropbear\n\toption PasswordAuth 'off'\n",
            "/lib/systemd/system/telnet.socket": "[Socket]\nListenStream=23\n",  # installed, not enabled
        },
    )
    result = run(tree_context(root), only=("services",))
    assert _findings(result) == []


def test_systemd_enabled_units(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "/lib/systemd/system/telnetd.service": "[Service]\nExecStart=-/usr/sbin/in.telnetd -debug\n",
            "/lib/systemd/system/gdbserver.service": "[Service]\nExecStart=/usr/bin/gdbserver --multi :2345\n",
            "/etc/systemd/system/tftp.socket": "[Socket]\nListenDatagram=69\n",
        },
    )
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "telnetd.service").symlink_to("/lib/systemd/system/telnetd.service")
    result = run(tree_context(root), only=("services",))
    assert _findings(result) == sorted(
        [
            ("services.telnet", "/lib/systemd/system/telnetd.service", 2),
            ("services.tftp", "/etc/systemd/system/tftp.socket", 2),
        ]
    )  # gdbserver.service is installed but not enabled
