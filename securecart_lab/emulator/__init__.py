"""The embedded AWS emulator: moto's server plus the kit's extensions (see hooks.py for every patch point).

Run it with `python -m securecart_lab.emulator --host 127.0.0.1 --port 4566`; start it from code with
`securecart_lab.emulator.process.start()`.
"""
