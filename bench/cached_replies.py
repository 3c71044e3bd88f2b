"""Run a bench in this process with the language model's replies cached on disk.

    .venv/bin/python bench/cached_replies.py bench/realfolders.py --in-process [its options]

Generation is greedy, so the same prompt and grammar give the same reply: a rerun after a
change to what happens around the model (gates, grounding, what is shown) asks the model only
for the prompts that changed. llama.cpp runs on one thread (on a busy 2-core machine two
spinning threads were several times slower). Replies go to $RAG_REPLY_CACHE
(default bench/.cache/replies). Latency figures of such a run are not a user's.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import runpy
import sys
from pathlib import Path

from ragcli.models import generators

CACHE = Path(os.environ.get("RAG_REPLY_CACHE", Path(__file__).resolve().parent / ".cache" / "replies"))
_plain_init = generators.LlamaGenerator.__init__
_plain_generate = generators.LlamaGenerator.generate


def _one_thread(self, *args, **kw) -> None:
    kw["n_threads"] = 1
    _plain_init(self, *args, **kw)


def _cached(self, messages, *, grammar, max_tokens, on_text=None) -> generators.Generation:
    key = hashlib.sha256(json.dumps([self.name, messages, grammar, max_tokens]).encode()).hexdigest()
    f = CACHE / f"{key}.json"
    if f.exists():
        return generators.Generation(**json.loads(f.read_text(encoding="utf-8")))
    out = _plain_generate(self, messages, grammar=grammar, max_tokens=max_tokens, on_text=on_text)
    f.write_text(json.dumps(dataclasses.asdict(out)), encoding="utf-8")
    return out


if __name__ == "__main__":
    CACHE.mkdir(parents=True, exist_ok=True)
    generators.LlamaGenerator.__init__ = _one_thread
    generators.LlamaGenerator.generate = _cached
    script, sys.argv = sys.argv[1], sys.argv[1:]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")
