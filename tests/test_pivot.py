"""English answers translated from a checked Chinese answer keep its citations (rag/pivot.py)."""

from rag.cite import CheckedSentence
from rag.pivot import carry_citations, source_lines


def _checked():
    return [CheckedSentence("苍南县建立党建联盟48个。", cites=[1], supported=True),
            CheckedSentence("覆盖党员325名。", cites=[2], supported=True)]


def test_lines_keep_their_sentences_citations():
    assert source_lines(_checked()) == "苍南县建立党建联盟48个。\n覆盖党员325名。"
    text, english = carry_citations(_checked(), "Cangnan set up 48 alliances.\nThey cover 325 members.")
    assert text == "Cangnan set up 48 alliances[1]. They cover 325 members[2]."
    assert all(c.supported for c in english)


def test_a_number_the_translation_changed_is_flagged():
    text, english = carry_citations(_checked(), "Cangnan set up 84 alliances.\nThey cover 325 members.")
    assert not english[0].supported and english[0].unverified_numbers == ["84"]
    assert text.startswith("Cangnan set up 84 alliances[?].")


def test_unaligned_translation_becomes_one_sentence_with_every_citation():
    text, english = carry_citations(_checked(), "Cangnan set up 48 alliances covering 325 members")
    assert len(english) == 1 and english[0].cites == [1, 2] and english[0].supported
    assert carry_citations(_checked(), "   ") == ("", [])
