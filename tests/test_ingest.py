"""Corpus ingest: every format, metadata precedence, incremental sync, bad files, the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from uuid import uuid4

import docx
import numpy as np
import pytest
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DecodedStreamObject, DictionaryObject, NameObject

from tests.conftest import run_twincast
from twincast.runtime import EXAMPLES
from twincast_reasoning.corpus.chunking import MAX_WORDS, MIN_WORDS, Block, chunk
from twincast_reasoning.corpus.formats import MAX_SOURCE_BYTES, parse
from twincast_reasoning.corpus.ingest import IngestResult, ingest
from twincast_reasoning.corpus.manifest import load_manifest, parse_manifest
from twincast_reasoning.corpus.passages import EMBEDDING_FORMAT, CorpusError, embedding_text
from twincast_reasoning.corpus.sources import ParsedFile, SourceMeta
from twincast_reasoning.corpus.twins import create_twin_from_folder
from twincast_reasoning.retrieval.embeddings import Embedder
from twincast_reasoning.retrieval.store import TwinRepository
from twincast_shared.store import StateStore

CORPUS = Path(__file__).parent / "data" / "corpus"
TEXT_FILES = [
    "essays/heat.html",
    "notes/diary.txt",
    "notes/public-bees.md",
    "notes/public-plain.md",
    "posts.json",
    "talks/moths-keynote.vtt",
    "talks/roofs-panel.srt",
]


def make_pdf(path: Path, pages: list[list[str]], *, title: str | None = None) -> None:
    """A real PDF with a text layer: one Helvetica line per string, pages in order."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for lines in pages:
        page = writer.add_blank_page(width=612, height=792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        shown = "".join(f"({line}) Tj T* " for line in lines)
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 11 Tf 14 TL 72 720 Td {shown}ET".encode("latin-1"))
        page.replace_contents(ContentStream(stream, writer))
    if title:
        writer.add_metadata({"/Title": title})
    with path.open("wb") as out:
        writer.write(out)


PDF_PAGES = [
    [
        "Rooftop bee counts are only as good as the traps that make them. We used",
        "yellow, white and blue bowls on every roof, because each colour draws a",
        "different crowd of bees, and a survey with one colour misses a third of them.",
        "That is the whole method.",
        "Bowls were set at nine and collected at four on dry, calm days only, from May",
        "to September, which gave us nine visits per roof and season.",
    ],
    [
        "The counts themselves were done at the microscope over two winters. Every",
        "specimen was checked by two people, and where they disagreed a third person",
        "decided, which happened for about one bee in twenty, mostly small sweat bees.",
    ],
]


def make_docx(path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Swab protocol, version three"
    document.add_paragraph("Swab protocol", style="Title")
    document.add_heading("Why we changed it", level=1)
    document.add_paragraph(
        "Seven of sixty blank swabs came back with bee DNA last year, so DNA was travelling "
        "between roofs on our hands and our scissors. Nobody is in trouble, and I made the "
        "same mistakes, but we cannot publish with that many dirty blanks."
    )
    document.add_heading("What to do", level=1)
    document.add_paragraph(
        "Change gloves between every roof. Wipe the scissors with bleach between flowers and "
        "rinse them with clean water. Take two blank swabs per roof, one at the start and one "
        "at the end, and get every swab into the cool box within five minutes."
    )
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Cost per sample"
    table.rows[0].cells[1].text = "38 dollars"
    document.save(str(path))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root)
    (root / "papers").mkdir()
    make_pdf(root / "papers" / "bowls.pdf", PDF_PAGES, title="Counting bees with bowls")
    make_docx(root / "notes" / "protocol.docx")
    return root


ALL_FILES = sorted([*TEXT_FILES, "papers/bowls.pdf", "notes/protocol.docx"])


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def parsed(root: Path, rel: str) -> ParsedFile:
    return parse(root / rel, rel, load_manifest(root).meta_for(rel))


def words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------- formats and metadata


def test_markdown_front_matter_beats_the_manifest(corpus: Path) -> None:
    (source,) = parsed(corpus, "notes/public-bees.md").sources
    assert source.source_id == "notes/public-bees.md"
    assert (source.title, source.date, source.scope) == (
        "Bees in the rain",
        "2024-05-10",
        "colleagues",  # front matter; the manifest says public
    )
    assert source.origin == "field notes"  # not in the front matter: the manifest's
    assert [p.location for p in source.passages] == [
        "Wet mornings, paragraphs 1\u20132",
        "Dry afternoons, paragraph 1",
    ]
    first = source.passages[0].text
    assert "On wet mornings the bumblebees still fly" in first
    assert "See the protocol for how we log rain." in first
    assert "**" not in first
    assert "](" not in first


def test_markdown_without_front_matter_takes_the_manifest(corpus: Path) -> None:
    (source,) = parsed(corpus, "notes/public-plain.md").sources
    assert (source.title, source.date, source.scope, source.origin) == (
        "Notes on seed mixes",
        None,
        "public",
        "field notes",
    )
    (passage,) = source.passages
    assert passage.section == "Notes on seed mixes"
    assert passage.text.endswith(
        "Ask the supplier where the seed was grown. Sow in autumn, not spring."
    )


def test_a_source_nothing_describes_is_private_and_undated(corpus: Path) -> None:
    (source,) = parsed(corpus, "notes/diary.txt").sources
    assert (source.title, source.date, source.origin, source.scope) == (
        "diary",
        None,
        None,
        "private",
    )
    assert [p.location for p in source.passages] == ["paragraph 1", "paragraphs 2\u20133"]
    assert source.passages[1].text.startswith("Short note. The other question is money.")


def test_html_title_meta_and_sections(corpus: Path) -> None:
    (source,) = parsed(corpus, "essays/heat.html").sources
    assert (source.title, source.date, source.scope, source.origin) == (
        "How hot does a roof get?",
        "2023-07-21",
        "public",
        "blog post",
    )
    assert [p.location for p in source.passages] == [
        "How hot does a roof get?, paragraph 1",
        "Why the plants matter, paragraphs 1\u20132",
    ]
    text = " ".join(p.text for p in source.passages)
    assert "first summer & checked every week. Shade helps too." in text
    for noise in ("Home", "console.log", "color", "cookies"):
        assert noise not in text


def test_html_without_metadata_and_with_self_closing_skipped_tags(tmp_path: Path) -> None:
    page = tmp_path / "page.htm"
    page.write_text(
        "<html><body><svg/><h1>Roof notes</h1><p>Sedum is tough.<br><br>Thyme is better."
        "<p>Water it.</body></html>"
    )
    (source,) = parse(page, "page.htm", SourceMeta()).sources
    assert (source.title, source.date, source.scope) == ("Roof notes", None, "private")
    assert source.passages[0].text == "Sedum is tough. Thyme is better. Water it."
    assert source.passages[0].location == "Roof notes, paragraphs 1\u20133"


def test_pdf_pages(corpus: Path) -> None:
    (source,) = parsed(corpus, "papers/bowls.pdf").sources
    assert (source.title, source.date, source.scope) == (
        "Counting bees with bowls",
        None,
        "private",
    )
    assert [p.location for p in source.passages] == ["page 1", "page 2"]
    assert source.passages[0].text.startswith("Rooftop bee counts are only as good as the traps")
    assert "misses a third of them. That is the whole method. Bowls were set" in (
        source.passages[0].text
    )
    assert source.passages[1].text.endswith("mostly small sweat bees.")


def test_docx_headings_and_paragraphs(corpus: Path) -> None:
    (source,) = parsed(corpus, "notes/protocol.docx").sources
    assert (source.title, source.scope) == ("Swab protocol, version three", "private")
    assert [p.location for p in source.passages] == [
        "Why we changed it, paragraph 1",
        "What to do, paragraphs 1\u20132",
    ]
    assert source.passages[1].text.endswith("within five minutes. Cost per sample 38 dollars")


def test_docx_title_falls_back_to_the_title_paragraph(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("A note on bowls", style="Title")
    document.add_paragraph("Yellow bowls catch the most bees, but not the same bees.")
    document.save(str(tmp_path / "n.docx"))
    (source,) = parse(tmp_path / "n.docx", "n.docx", SourceMeta()).sources
    assert source.title == "A note on bowls"
    assert source.passages[0].location == "paragraph 1"


def test_webvtt_cues_become_passages_with_times(corpus: Path) -> None:
    (source,) = parsed(corpus, "talks/moths-keynote.vtt").sources
    assert (source.title, source.date, source.scope, source.origin) == (
        "The night shift keynote",
        "2023-06-01",
        "colleagues",
        "conference talk",
    )
    assert [p.location for p in source.passages] == ["at 00:00:01", "at 00:00:35"]
    first, second = (p.text for p in source.passages)
    assert first.startswith("Good evening, and thank you for staying up with me. Tonight I want")
    assert "about the moths that pollinate" in first
    assert second.startswith("So what does that mean for a city")
    for text in (first, second):
        assert not re.search(r"-->|<|\d\d:\d\d|NOTE|intro|::cue|align:", text)


def test_srt_first_matching_manifest_rule_wins(corpus: Path) -> None:
    (source,) = parsed(corpus, "talks/roofs-panel.srt").sources
    # `talks/*.vtt` does not match; `talks` (the folder) does
    assert (source.title, source.date, source.scope, source.origin) == (
        "roofs panel",
        None,
        "public",
        "panel",
    )
    (passage,) = source.passages
    assert passage.location == "at 00:00:02"
    assert passage.text == (
        "I'll start with the question everyone asks me, which is whether a roof can really "
        "help bees. It can. On our forty roofs we found sixty-three species of wild bees, and "
        "some of them were nesting eleven storeys above the street. The trick is to plant for "
        "the whole season, not just for June. A roof that flowers from March to October feeds "
        "bees all year."
    )


def test_json_posts_are_sources_of_their_own(corpus: Path) -> None:
    found = parsed(corpus, "posts.json")
    first, second = found.sources
    assert first.source_id == "posts.json#110001"
    assert (first.date, first.scope, first.origin) == ("2024-03-02", "public", "Mastodon")
    assert first.title == "First bumblebee queen of the year on the\u2026"
    assert first.passages[0].location == "post 110001"
    assert second.source_id == "posts.json#110002"
    assert (second.title, second.date, second.scope) == ("Seed swap", "2024-03-09", "colleagues")
    assert second.passages[0].text == (
        "Reminder: the seed swap is on Saturday at the library. "
        "Bring oregano seed if you have any & I will trade you thyme."
    )
    assert [(s.path, s.reason) for s in found.skipped] == [
        ("posts.json#110003", "empty: post has no text")
    ]


def test_a_bare_list_of_posts_is_accepted(tmp_path: Path) -> None:
    posts = [{"text": "One."}, {"content": "Two.", "url": "https://example.org/2"}]
    (tmp_path / "p.json").write_text(json.dumps(posts))
    one, two = parse(tmp_path / "p.json", "p.json", SourceMeta(origin="blog")).sources
    assert [one.source_id, two.source_id] == ["p.json#1", "p.json#2"]
    assert (one.scope, one.origin, two.origin) == ("private", "blog", "blog")


def test_long_paragraphs_split_at_sentences_and_short_ones_merge() -> None:
    sentence = "Bees visit the thyme on the roof every single warm morning."
    long = " ".join([sentence] * 50)
    tiny = [f"Note {n} is short but it is mine." for n in range(12)]
    blocks = [Block(None, 1, long), *(Block("Notes", n, t) for n, t in enumerate(tiny, 1))]
    chunks = chunk(blocks)
    assert " ".join(c.text for c in chunks) == " ".join([long, *tiny])
    assert all(MIN_WORDS <= len(words(c.text)) <= MAX_WORDS for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    assert {c.group for c in chunks[:3]} == {None}
    assert chunks[3].group == "Notes"


def test_manifest_patterns() -> None:
    manifest = parse_manifest(
        """
        [[source]]
        path = "talks/*.vtt"
        scope = "colleagues"
        [[source]]
        path = "**/*.pdf"
        scope = "public"
        date = "2020-01-01"
        [[source]]
        path = "talks/"
        origin = "talk"
        """
    )
    assert manifest.meta_for("talks/a.vtt").scope == "colleagues"
    assert manifest.meta_for("talks/2023/a.vtt") == SourceMeta(origin="talk")
    assert manifest.meta_for("a.pdf").scope == "public"
    assert manifest.meta_for("x/y/a.pdf").date == "2020-01-01"
    assert manifest.meta_for("talks/b.pdf").scope == "public"
    assert manifest.meta_for("notes/a.md") == SourceMeta()
    for bad, why in [
        ('[[source]]\npath = "a"\nscope = "everyone"', "scope must be"),
        ('[[source]]\npath = "a"\naudience = "public"', "unknown key"),
        ('[[source]]\nscope = "public"', "no path"),
        ("[[source]\n", "not valid TOML"),
    ]:
        with pytest.raises(CorpusError, match=why):
            parse_manifest(bad)


# ---------------------------------------------------------------- ingest into Valkey


def twin_id() -> str:
    return f"t-{uuid4().hex[:12]}"


async def test_incremental_ingest(store: StateStore, embedder: Embedder, corpus: Path) -> None:
    repo = TwinRepository(store)
    twin = twin_id()
    seen: list[tuple[int, int, str]] = []
    first = await ingest(repo, embedder, twin, corpus, progress=lambda *a: seen.append(a))
    assert first.added == ALL_FILES
    assert [s.path for s in first.skipped] == ["posts.json#110003"]
    assert first.embedded == first.passages > 0
    assert seen[-1] == (len(ALL_FILES), len(ALL_FILES), ALL_FILES[-1])
    sources = await repo.sources(twin)
    assert len(sources) == first.sources == len(ALL_FILES) + 1  # two posts from one export
    assert sources["talks/moths-keynote.vtt"].scope == "colleagues"
    assert sources["notes/diary.txt"].scope == "private"
    vectors = await repo.source_vectors(twin, "papers/bowls.pdf")
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)

    second = await ingest(repo, embedder, twin, corpus)
    assert second.unchanged == ALL_FILES
    assert (second.added, second.updated, second.removed, second.passages) == ([], [], [], 0)
    assert second.version == first.version

    bees = corpus / "notes" / "public-bees.md"
    bees.write_text(bees.read_text().replace("thirty of them", "forty-one of them"))
    third = await ingest(repo, embedder, twin, corpus)
    assert third.updated == ["notes/public-bees.md"]
    assert len(third.unchanged) == len(ALL_FILES) - 1
    assert third.embedded == 1  # the "Wet mornings" passage kept its vector
    texts = " ".join(p.text for p in await repo.source_passages(twin, "notes/public-bees.md"))
    assert "forty-one of them" in texts
    assert "thirty of them" not in texts
    assert third.version > second.version

    (corpus / "notes" / "diary.txt").unlink()
    fourth = await ingest(repo, embedder, twin, corpus)
    assert fourth.removed == ["notes/diary.txt"]
    assert "notes/diary.txt" not in await repo.sources(twin)
    assert await repo.source_passages(twin, "notes/diary.txt") == []
    assert fourth.version > third.version

    posts = json.loads((corpus / "posts.json").read_text())
    posts["posts"] = posts["posts"][:1]
    (corpus / "posts.json").write_text(json.dumps(posts))
    fifth = await ingest(repo, embedder, twin, corpus)
    assert fifth.updated == ["posts.json"]
    assert fifth.embedded == 0
    ids = set(await repo.sources(twin))
    assert "posts.json#110001" in ids
    assert "posts.json#110002" not in ids


async def test_ingest_fills_in_a_twin_made_by_create_twin_from_folder(
    store: StateStore, embedder: Embedder, tmp_path: Path
) -> None:
    twin = twin_id()
    shutil.copytree(EXAMPLES / "juniper", tmp_path / "twin")
    toml = tmp_path / "twin" / "twin.toml"
    toml.write_text(toml.read_text().replace('id = "juniper"', f'id = "{twin}"'))
    repo = TwinRepository(store)
    made = await create_twin_from_folder(store, tmp_path / "twin")
    assert made.twin_id == twin
    result = await ingest(repo, embedder, twin, tmp_path / "twin" / "corpus")
    assert len(result.updated) == made.sources
    assert result.embedded == result.passages
    for source_id in await repo.sources(twin):
        assert np.all(np.linalg.norm(await repo.source_vectors(twin, source_id), axis=1) > 0.99)


async def test_vectors_made_another_way_are_made_again(
    store: StateStore, embedder: Embedder, corpus: Path
) -> None:
    """A passage keeps its vector across a re-index only when the vector was made the way
    vectors are made now (heading and text, EMBEDDING_FORMAT)."""
    repo = TwinRepository(store)
    twin = twin_id()
    await ingest(repo, embedder, twin, corpus)
    source = "notes/public-bees.md"
    record = (await repo.sources(twin))[source]
    assert record.embedding == EMBEDDING_FORMAT
    passages = await repo.source_passages(twin, source)
    vectors = await repo.source_vectors(twin, source)
    assert np.allclose(vectors, embedder.embed([embedding_text(p) for p in passages]), atol=1e-5)
    # As a store written before headings went into the vectors would hold it.
    await repo.put_source(twin, record.model_copy(update={"embedding": ""}), passages, vectors)
    bees = corpus / source
    bees.write_text(bees.read_text().replace("thirty of them", "forty-one of them"))
    again = await ingest(repo, embedder, twin, corpus)
    assert again.updated == [source]
    assert again.embedded == len(passages), "no old vector is reused"
    assert (await repo.sources(twin))[source].embedding == EMBEDDING_FORMAT


async def test_a_manifest_edit_reindexes_the_files_it_covers(
    store: StateStore, embedder: Embedder, corpus: Path
) -> None:
    repo = TwinRepository(store)
    twin = twin_id()
    await ingest(repo, embedder, twin, corpus)
    manifest = corpus / "sources.toml"
    rule = 'scope = "public"\norigin = "field notes"'
    manifest.write_text(manifest.read_text().replace(rule, rule.replace("public", "colleagues")))
    again = await ingest(repo, embedder, twin, corpus)
    assert again.updated == ["notes/public-bees.md", "notes/public-plain.md"]
    assert again.embedded == 0
    assert (await repo.sources(twin))["notes/public-plain.md"].scope == "colleagues"
    passages = await repo.source_passages(twin, "notes/public-plain.md")
    assert {p.scope for p in passages} == {"colleagues"}


async def test_ingest_of_some_paths_removes_only_inside_them(
    store: StateStore, embedder: Embedder, corpus: Path
) -> None:
    repo = TwinRepository(store)
    twin = twin_id()
    await ingest(repo, embedder, twin, corpus)
    (corpus / "essays" / "heat.html").unlink()
    (corpus / "talks" / "roofs-panel.srt").unlink()
    only_talks = await ingest(repo, embedder, twin, corpus, [Path("talks")])
    assert only_talks.removed == ["talks/roofs-panel.srt"]
    assert only_talks.unchanged == ["talks/moths-keynote.vtt"]
    assert "essays/heat.html" in await repo.sources(twin)
    gone = await ingest(repo, embedder, twin, corpus, [corpus / "essays" / "heat.html"])
    assert gone.removed == ["essays/heat.html"]
    assert "essays/heat.html" not in await repo.sources(twin)
    with pytest.raises(CorpusError, match="outside the corpus root"):
        await ingest(repo, embedder, twin, corpus, [corpus.parent])


async def test_bad_files_are_reported_and_the_rest_ingest(
    store: StateStore, embedder: Embedder, corpus: Path
) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog garbage")
    (corpus / "broken.docx").write_bytes(b"PK\x03\x04 this is not a zip archive")
    (corpus / "empty.md").write_text("")
    (corpus / "blank.txt").write_text("---\ntitle: Nothing yet\n---\n\n\n")
    (corpus / "slides.pptx").write_bytes(b"PK\x03\x04")
    (corpus / "latin1.txt").write_bytes("caf\xe9 notes".encode("latin-1"))
    (corpus / "no-header.vtt").write_text("00:00:01.000 --> 00:00:02.000\nHello.\n")
    (corpus / "bad-scope.md").write_text("---\nscope: everyone\n---\nText.\n")
    with (corpus / "huge.txt").open("wb") as huge:
        huge.truncate(MAX_SOURCE_BYTES + 1)
    repo = TwinRepository(store)
    twin = twin_id()
    result = await ingest(repo, embedder, twin, corpus)
    reasons = {s.path: s.reason for s in result.skipped}
    assert reasons == {
        "bad-scope.md": "invalid",
        "blank.txt": "empty",
        "broken.docx": "corrupt",
        "broken.pdf": "corrupt",
        "empty.md": "empty",
        "huge.txt": "too large",
        "latin1.txt": "unreadable",
        "no-header.vtt": "corrupt",
        "posts.json#110003": "empty",
        "slides.pptx": "unsupported",
    }
    assert all(s.detail for s in result.skipped)
    assert result.added == ALL_FILES
    assert set(await repo.sources(twin)) >= set(ALL_FILES) - {"posts.json"}

    (corpus / "notes" / "diary.txt").write_bytes(b"\xff\xfe\x00broken")
    after = await ingest(repo, embedder, twin, corpus)
    assert ("notes/diary.txt", "corrupt") in {(s.path, s.reason) for s in after.skipped}
    assert after.removed == ["notes/diary.txt"]  # the old text is no longer the owner's
    assert "notes/diary.txt" not in await repo.sources(twin)


# ---------------------------------------------------------------- the CLI


async def test_cli_twin_create_and_ingest(
    redis_url: str, store: StateStore, tmp_path: Path
) -> None:
    name = twin_id()
    folder = tmp_path / "twin"
    shutil.copytree(CORPUS, folder / "corpus")
    (folder / "twin.toml").write_text(
        'id = "someone"\ndisplay_name = "Juniper Hale"\nowner_first_name = "Juniper"\n'
        "fictional = true\n"
        "greeting = \"Hi, I'm Juniper Hale's AI twin. I answer from her own words.\"\n"
    )
    code, out, err = await run_twincast(
        "twin", "create", name, "--from", str(folder), "--redis-url", redis_url, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["created"] == name
    assert report["added"] == TEXT_FILES
    assert [s["path"] for s in report["skipped"]] == ["posts.json#110003"]
    assert f"{len(TEXT_FILES)}/{len(TEXT_FILES)}" in err  # the progress bar
    repo = TwinRepository(store)
    profile = await repo.profile(name)
    assert profile is not None
    assert profile.display_name == "Juniper Hale"

    code, _, err = await run_twincast(
        "twin", "create", name, "--from", str(folder), "--redis-url", redis_url
    )
    assert code != 0
    assert "exists already" in err

    (folder / "corpus" / "notes" / "diary.txt").unlink()
    html = folder / "corpus" / "essays" / "heat.html"
    html.write_text(html.read_text().replace("71 degrees", "73 degrees"))
    code, out, err = await run_twincast("twin", "ingest", name, "--redis-url", redis_url, "--json")
    assert code == 0, err
    report = IngestResult.model_validate(
        {k: v for k, v in json.loads(out).items() if k in IngestResult.model_fields}
    )
    assert (report.updated, report.removed) == (["essays/heat.html"], ["notes/diary.txt"])
    assert len(report.unchanged) == len(TEXT_FILES) - 2
    passages = await repo.source_passages(name, "essays/heat.html")
    assert "73 degrees" in passages[0].text

    (folder / "corpus" / "talks" / "extra.srt").write_text(
        "1\n00:00:01,000 --> 00:00:03,000\nOne more thing about roofs.\n"
    )
    code, out, err = await run_twincast(
        "twin", "ingest", name, str(folder / "corpus" / "talks"), "--redis-url", redis_url
    )
    assert code == 0, err
    assert "added    talks/extra.srt" in out
    assert "1 added, 0 updated, 0 removed, 2 unchanged, 0 skipped" in out
    assert (await repo.sources(name))["talks/extra.srt"].scope == "public"

    code, _, err = await run_twincast("twin", "ingest", twin_id(), "--redis-url", redis_url)
    assert code != 0
    assert "no twin" in err
