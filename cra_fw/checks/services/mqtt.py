"""Mosquitto MQTT broker configuration."""

from __future__ import annotations

from cra_fw.checks.services.base import ConfigFacts, Source, kv_lines, make_finding


class MosquittoConf(Source):
    globs = ("*/mosquitto.conf", "*/mosquitto/*.conf")

    def parse(self, ctx, data, entry, lines, out):
        for no, key, value in kv_lines(lines):
            if key == "allow_anonymous" and value.lower() == "true":
                out.findings.append(
                    make_finding(ctx, "services.mqtt-anonymous", entry, no, "allow_anonymous true")
                )
            if key in ("listener", "port") and value.split() and value.split()[0].isdecimal():
                w = value.split()
                out.configs.append(
                    ConfigFacts("mqtt", entry, int(w[0]), w[1] if len(w) > 1 else "", protocol="tcp")
                )
