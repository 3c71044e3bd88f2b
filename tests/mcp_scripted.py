"""The ``rag mcp`` server over an index, with the hashing embedder and a scripted generator
(no LLM), for the MCP tests' answered ``ask``: ``python tests/mcp_scripted.py INDEX``.
The test doubles enter through ``Index``'s constructor; the server is ``mcp_server.serve``."""

from __future__ import annotations

import sys

from ragcli.answer import AnswerParams
from ragcli.api import Index
from ragcli.mcp_server import serve
from ragcli.models.embedders import HashEmbedder
from ragcli.models.generators import ScriptedGenerator

REPLY = '{"answer": "The K stands for the k-quant family.", "evidence": [1]}'

if __name__ == "__main__":
    serve(Index(sys.argv[1], embedder=HashEmbedder(), generator=ScriptedGenerator(REPLY)),
          params=AnswerParams(min_sentence_similarity=0.0))
