"""Phonemes (espeak IPA, as Piper aligns them) to the 15 visemes 3D rigs commonly use."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from twincast_shared.contract import Viseme

SILENCE = "sil"
_GROUPS = {
    "PP": "pbm",
    "FF": "fv",
    "TH": "θð",
    "DD": "td",
    "kk": "kgɡŋx",
    "CH": "ʃʒʧʤç",
    "SS": "sz",
    "nn": "nlɫ",
    "RR": "ɹrɾɚɝ",
    "aa": "aɑæʌɐ",
    "E": "eɛəᵻɜh",
    "ih": "iɪj",
    "oh": "oɔɒ",
    "ou": "uʊwɯ",
}
VISEMES = frozenset({SILENCE, *_GROUPS})
PHONEME_VISEME = {ph: vis for vis, group in _GROUPS.items() for ph in group}
_SILENT = set("^$_.,!?;:-—…\"'()")
LEADING_MARKS = frozenset("ˈˌ")  # primary and secondary stress, written before the syllable


def viseme_of(phoneme: str) -> str | None:
    """The viseme of one phoneme, SILENCE for pauses, None for marks that extend the previous."""
    if phoneme in _SILENT or (not phoneme.strip() and phoneme != " "):
        return SILENCE
    return PHONEME_VISEME.get(phoneme[:1])


def track(alignments: Iterable[tuple[str, int]]) -> list[Viseme]:
    """Contiguous viseme segments covering every sample of the aligned audio.

    A stress mark is spoken as the start of the syllable after it; other marks without a
    viseme of their own (length, diacritics, word breaks) lengthen the phoneme before them.
    """
    segments: list[tuple[str, int, int]] = []
    at = 0
    leading = 0
    for phoneme, samples in alignments:
        if samples <= 0:
            continue
        vis = viseme_of(phoneme)
        if phoneme in LEADING_MARKS or (leading and vis is None):
            leading += samples  # up to the phoneme the stress mark leads into
            continue
        samples, leading = samples + leading, 0
        if segments and (vis is None or segments[-1][0] == vis):
            name, start, _ = segments[-1]
            segments[-1] = (name, start, at + samples)
        else:
            segments.append((vis or SILENCE, at, at + samples))
        at += samples
    if leading:
        name, start, _ = segments[-1] if segments else (SILENCE, 0, 0)
        segments[-1:] = [(name, start, at + leading)]
    return [Viseme(viseme=v, start=start, end=end) for v, start, end in segments]


def fit(visemes: Sequence[Viseme], samples: int) -> list[Viseme]:
    """The track cut or stretched at its end so that it covers exactly `samples` samples."""
    if samples <= 0:
        return []
    kept = [v for v in visemes if v.start < samples]
    if not kept:
        return [Viseme(viseme=SILENCE, start=0, end=samples)]
    last = kept[-1]
    kept[-1] = Viseme(viseme=last.viseme, start=last.start, end=samples)
    return kept
