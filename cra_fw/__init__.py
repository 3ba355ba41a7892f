"""cra-fw: firmware compliance analyzer for the EU Cyber Resilience Act."""

__version__ = "0.1.0"
