from __future__ import annotations

from pathlib import Path

import pytest

from twincast.runtime import EXAMPLES
from twincast_reasoning.answering.extractive import ExtractiveComposer
from twincast_reasoning.corpus.passages import CorpusError, Passage, embedding_text
from twincast_reasoning.corpus.twin_folder import load_corpus, load_profile, parse_markdown
from twincast_reasoning.retrieval.embeddings import Embedder
from twincast_reasoning.retrieval.index import Hit, HybridIndex, RetrievalHit
from twincast_reasoning.words import sentences
from twincast_shared.contract.events import Scope

TWIN = EXAMPLES / "juniper"


class Search:
    """The service's index over the sample twin, as the composer's hits."""

    def __init__(self, index: HybridIndex, embedder: Embedder) -> None:
        self._index = index
        self._embedder = embedder

    def search(self, question: str, *, scope: Scope, k: int = 3) -> list[RetrievalHit]:
        vector = self._embedder.embed_one(question)
        return self._index.search(question, vector, scope=scope, k=k)


@pytest.fixture(scope="module")
def index() -> Search:
    passages, skipped = load_corpus(TWIN / "corpus")
    assert skipped == []
    embedder = Embedder()
    vectors = embedder.embed([embedding_text(p) for p in passages])
    return Search(HybridIndex.from_passages(passages, vectors, ignore=("Juniper Hale",)), embedder)


def test_sample_twin_is_labelled_fictional() -> None:
    profile = load_profile(TWIN)
    assert profile.fictional
    assert "fictional" in profile.notice.lower()
    assert "AI twin" in profile.greeting


def test_composer_quotes_the_owner_and_cites_the_source(index: Search) -> None:
    composer = ExtractiveComposer()
    profile = load_profile(TWIN)
    question = "How many bee species did you find on the rooftops?"
    answer = composer.compose(
        profile=profile,
        question=question,
        hits=index.search(question, scope="public"),
        first_turn=False,
    )
    assert not answer.deferred
    cited = [(TWIN / "corpus" / c.source_id).read_text() for c in answer.citations]
    for sentence in answer.sentences:
        assert any(sentence in " ".join(source.split()) for source in cited)


def test_composer_defers_when_nothing_supports_an_answer(index: Search) -> None:
    profile = load_profile(TWIN)
    question = "What do you think about cryptocurrency?"
    answer = ExtractiveComposer().compose(
        profile=profile,
        question=question,
        hits=index.search(question, scope="public"),
        first_turn=True,
    )
    assert answer.deferred
    assert answer.citations == ()
    assert answer.sentences[0].startswith("Hi, I'm Juniper Hale's AI twin.")
    assert any("pass your question to Juniper" in s for s in answer.sentences)


def test_an_answer_is_a_run_of_the_owners_sentences_within_the_word_budget(
    index: Search,
) -> None:
    profile = load_profile(TWIN)
    composer = ExtractiveComposer(max_words=40)
    for question in (
        "What is a pan trap?",
        "How can I make my garden lighting better for moths?",
        "Why do rooftop bees need weeds?",
    ):
        answer = composer.compose(
            profile=profile,
            question=question,
            hits=index.search(question, scope="public"),
            first_turn=False,
        )
        assert not answer.deferred
        assert answer.sentences == answer.body
        assert len(answer.citations) == len(answer.used) >= 1
        said = " ".join(answer.body)
        assert len(said.split()) <= 40 or len(answer.body) == 1
        # Each passage's part is said as the owner wrote it: consecutive sentences, in order.
        rest = list(answer.body)
        for passage in answer.used:
            own = sentences(passage.text)
            start = own.index(rest[0])
            part = own[start : start + len([x for x in rest if x in own])]
            assert rest[: len(part)] == part
            rest = rest[len(part) :]
        assert rest == []


def _passage(paragraph: int, text: str, source_id: str = "notes.md") -> Passage:
    return Passage(
        source_id=source_id,
        title="Notes",
        date=None,
        origin=None,
        scope="public",
        section=None,
        paragraph=paragraph,
        text=text,
    )


def test_a_second_supporting_passage_adds_its_run_in_the_sources_order() -> None:
    profile = load_profile(TWIN)
    later = _passage(3, "Wrens nest in ivy. Wrens sing loudly in spring.")
    earlier = _passage(1, "I count wrens every May. The wrens on my street nest in the ivy.")
    hits = [Hit(later, 2.0, 1.0), Hit(earlier, 1.0, 1.0)]
    answer = ExtractiveComposer(max_words=60).compose(
        profile=profile, question="Where do wrens nest?", hits=hits, first_turn=False
    )
    assert answer.used == (earlier, later)
    assert answer.body == (*sentences(earlier.text), *sentences(later.text))
    alone = ExtractiveComposer(max_words=10).compose(
        profile=profile, question="Where do wrens nest?", hits=hits, first_turn=False
    )
    assert len(alone.used) == 1, "no words left for a second passage"
    assert len(" ".join(alone.body).split()) <= 10


def test_a_paragraph_is_found_by_its_section_heading(index: Search) -> None:
    hits = index.search("What is your advice for students?", scope="public", k=2)
    assert {h.passage.section for h in hits} == {"Advice for students"}
    top = next(h for h in hits if "field notebook" in h.passage.text)
    assert embedding_text(top.passage).startswith(
        "About me and questions people ask, Advice for students. "
    )


def test_bad_corpus_files_are_reported_and_the_rest_loads(tmp_path: Path) -> None:
    good = "---\ntitle: Good\ndate: 2024-01-01\nscope: public\n---\nI like bees. They are busy.\n"
    (tmp_path / "good.md").write_text(good)
    (tmp_path / "no-front-matter.md").write_text("Just text.\n")
    (tmp_path / "bad-scope.md").write_text("---\ntitle: x\nscope: everyone\n---\nText.\n")
    (tmp_path / "latin1.txt").write_bytes(b"---\ntitle: x\n---\ncaf\xe9\n")
    (tmp_path / "empty.md").write_text("---\ntitle: Empty\n---\n\n")
    (tmp_path / "slides.pptx").write_bytes(b"PK\x03\x04")
    passages, skipped = load_corpus(tmp_path)
    assert [p.source_id for p in passages] == ["good.md"]
    reasons = {s.path: s.reason for s in skipped}
    assert "no front matter" in reasons["no-front-matter.md"]
    assert "scope must be" in reasons["bad-scope.md"]
    assert reasons["latin1.txt"] == "not UTF-8 text"
    assert reasons["empty.md"] == "empty"
    assert reasons["slides.pptx"] == "unsupported type"


def test_sources_without_a_scope_are_private() -> None:
    (passage,) = parse_markdown("n.md", "---\ntitle: Note\n---\nA thought.\n")
    assert passage.scope == "private"


def test_broken_front_matter_is_a_clear_error() -> None:
    with pytest.raises(CorpusError, match="without ':'"):
        parse_markdown("n.md", "---\ntitle Note\n---\nA thought.\n")
