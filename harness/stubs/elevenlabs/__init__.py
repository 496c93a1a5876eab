"""A local stand-in for the ElevenLabs Conversational AI API, with fault injection.

`app` serves it (run with `python -m harness.stubs.elevenlabs`), `faults` holds
the presets and the fault engine, `agents` the catalog built from a dataset
manifest, `middleware` the request pipeline, `process` the helpers that start
it as a child process.
"""

from harness.stubs.elevenlabs.process import (
    StubAdmin,
    StubProcess,
    StubStartError,
    start_stub,
)

__all__ = ["StubAdmin", "StubProcess", "StubStartError", "start_stub"]
