"""Engines: one module per long-lived external program (LibreOffice...), owned by the worker.

Nothing outside its engine module starts that program; ops call the engine's small API.
"""
