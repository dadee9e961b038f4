"""The version of ganforge, recorded in every picture record and exported file."""

__version__ = "0.2.0"
