"""Phonemes (espeak IPA, as Piper aligns them) to the 15 visemes 3D rigs commonly use."""

from __future__ import annotations

from collections.abc import Iterable

from twincast_shared.contract import Viseme

SILENCE = "sil"
_GROUPS = {
    "PP": "pbm",
    "FF": "fv",
    "TH": "θð",
    "DD": "td",
    "kk": "kgŋx",
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
PHONEME_VISEME = {ph: vis for vis, group in _GROUPS.items() for ph in group}
_SILENT = set("^$_.,!?;:-—…\"'()")


def viseme_of(phoneme: str) -> str | None:
    """The viseme of one phoneme, SILENCE for pauses, None for marks that extend the previous."""
    if phoneme in _SILENT or (not phoneme.strip() and phoneme != " "):
        return SILENCE
    return PHONEME_VISEME.get(phoneme[:1])


def track(alignments: Iterable[tuple[str, int]]) -> list[Viseme]:
    """Contiguous viseme segments covering every sample of the aligned audio."""
    segments: list[list[object]] = []
    at = 0
    for phoneme, samples in alignments:
        if samples <= 0:
            continue
        vis = viseme_of(phoneme)
        if vis is None or (segments and segments[-1][0] == vis):
            if segments:
                segments[-1][2] = at + samples
            else:
                segments.append([SILENCE, at, at + samples])
        else:
            segments.append([vis, at, at + samples])
        at += samples
    return [Viseme(viseme=str(v), start=int(s), end=int(e)) for v, s, e in segments]  # type: ignore[call-overload]
