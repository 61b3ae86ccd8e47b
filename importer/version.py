"""The version, in a module of its own: the User-Agent names it without loading the package."""

__version__ = "0.2.0"
