"""labctl: system-design study notes made real as Docker labs."""

__version__ = "0.1.0"
