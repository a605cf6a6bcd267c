"""One module per command family. Each parses nothing (cli.py does), calls one service, renders the result."""
