"""reasoning: the twin's brain, and what the CLI may use of it.

- `corpus/`: the owner's files read into passages (`formats/`, `manifest`, `chunking`) and
  kept in step with the store (`ingest`, `twins`);
- `retrieval/`: the twin's passages and vectors in the store, embeddings, the hybrid index;
- `answering/`: the engine that turns a question into an answer, its composers, memory,
  tone and the owner's part; `handlers` puts it on the bus.
"""

from twincast_reasoning.answering.memory import Inbox, PeopleMemory, Person, Promise
from twincast_reasoning.corpus.ingest import IngestResult, Skipped, get_corpus_root
from twincast_reasoning.corpus.passages import CorpusError
from twincast_reasoning.corpus.twin_folder import load_profile
from twincast_reasoning.corpus.twins import (
    IngestReport,
    TwinExists,
    create_twin,
    create_twin_from_folder,
    ingest_twin,
)
from twincast_reasoning.handlers import SPEC
from twincast_reasoning.retrieval.embeddings import Embedder
from twincast_reasoning.retrieval.store import UnknownTwin

__all__ = [
    "SPEC",
    "CorpusError",
    "Embedder",
    "Inbox",
    "IngestReport",
    "IngestResult",
    "PeopleMemory",
    "Person",
    "Promise",
    "Skipped",
    "TwinExists",
    "UnknownTwin",
    "create_twin",
    "create_twin_from_folder",
    "get_corpus_root",
    "ingest_twin",
    "load_profile",
]
