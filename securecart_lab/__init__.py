"""securecart-lab: offline AWS labs for the SecureCart scenario."""

__version__ = "0.1.0"
