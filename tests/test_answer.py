"""Unit tests of answer building (pure: hand-made hits over a known article text)."""
from qa.answer import build_answer, merge_overlapping, pick_highlights, stitch
from qa.config import Settings
from qa.types import Hit, Passage, ScoredSpan

TEXT = ("Heading here\n\nFirst sentence is about ports. Second sentence names the union. "
        "Third sentence gives wages.\n\nAnother paragraph on ships. It ends here.")


# Characters of two, three and four bytes before and inside the sentences: offsets count
# characters, as Python slices do, never bytes.
WIDE = ("Zürich’s café report\n\nThe café in Zürich opened in 1921. Its owner, Jürgen Müller, "
        "won the 🎉 Golden Bean in 北京. The prize pays for a roaster.\n\nA last paragraph.")


def sentence_spans(start, end, text=TEXT):
    """Sentences paragraph by paragraph, as the chunker makes them."""
    from qa.text.chunk import split_sentences
    from qa.text.clean import paragraph_spans

    return [s for a, b in paragraph_spans(text) if a < end and b > start
            for s in split_sentences(text[max(a, start):min(b, end)], max(a, start))]


def hit(start, end, score, similarity=0.6, article="a", best=None, text=TEXT):
    spans = sentence_spans(start, end, text)
    sentences = tuple(
        ScoredSpan(s.start, s.end, (0.9 if i == best else 0.3), (similarity if i == best else 0.2))
        for i, s in enumerate(spans)
    )
    passage = Passage(id=start, article_id=article, title=f"T{article}", source=f"{article}.txt",
                      date=None, start=start, end=end, text=text[start:end], sentences=spans)
    return Hit(passage=passage, score=score, dense_score=similarity, sentences=sentences)


def marks(quote, article_text):
    """Each highlight as (its offset in the article, the text it marks), once the quote is
    checked to be the article's own characters at its offsets."""
    assert article_text[quote.start:quote.end] == quote.text
    return [(quote.start + h.start, quote.text[h.start:h.end]) for h in quote.highlights]


def at(article_text, *sentences):
    """The expected marks: each sentence where the article has it."""
    return [(article_text.index(s), s) for s in sentences]


def test_stitch_joins_overlapping_slices_in_either_order():
    a, b = (0, TEXT[0:50]), (30, TEXT[30:90])
    assert stitch(*a, *b) == (0, TEXT[0:90])
    assert stitch(*b, *a) == (0, TEXT[0:90])
    assert stitch(0, TEXT[0:90], 10, TEXT[10:40]) == (0, TEXT[0:90])


def test_overlapping_hits_of_one_article_merge_into_one_verbatim_quote():
    p1 = TEXT.index("First")
    p2 = TEXT.index("Second")
    end1 = TEXT.index("Third") - 1
    end2 = TEXT.index("\n\nAnother")
    merged = merge_overlapping([hit(p1, end1, 0.9, best=0), hit(p2, end2, 0.8, best=1)])
    assert len(merged) == 1
    assert merged[0].text == TEXT[p1:end2]
    assert merged[0].rank_score == 0.9


def test_an_articles_quotes_past_the_cap_wait_for_other_articles_and_quotes_are_exact():
    para = TEXT.index("Another")
    first = TEXT.index("First")
    hits = [hit(first, first + 30, 0.9, best=0), hit(para, para + 27, 0.8, best=0),
            hit(0, 12, 0.7, best=0), hit(para, len(TEXT), 0.6, best=0, article="b")]
    settings = Settings(max_quotes_per_article=2)
    answer = build_answer("ports?", hits, k=5, settings=settings)
    # a's third quote (rank 3) waits behind b's first; it fills the list, not dropped.
    assert [q.article_id for q in answer.quotes] == ["a", "a", "b", "a"]
    assert answer.quotes[3].text == TEXT[0:12]
    assert answer.confidence == "answered"
    three = build_answer("ports?", hits, k=3, settings=settings)
    assert [q.article_id for q in three.quotes] == ["a", "a", "b"]
    assert [marks(q, TEXT) for q in answer.quotes] == [
        at(TEXT, "First sentence is about ports."), at(TEXT, "Another paragraph on ships."),
        at(TEXT, "Another paragraph on ships."), at(TEXT, "Heading here"),
    ]


def test_a_single_hit_mid_article_marks_its_best_sentence_at_the_articles_offset():
    start, end = TEXT.index("First"), TEXT.index("\n\nAnother")
    answer = build_answer("union?", [hit(start, end, 0.9, best=1)], k=1, settings=Settings())
    (quote,) = answer.quotes
    assert (quote.start, quote.end) == (start, end) and start > 0
    assert marks(quote, TEXT) == at(TEXT, "Second sentence names the union.")


def test_a_quote_merged_from_overlapping_hits_marks_at_the_articles_offset():
    # The better hit is the later passage, so the quote starts before it: its highlight
    # is an offset into the merged quote, not into the passage that ranked first.
    first, second = TEXT.index("First"), TEXT.index("Second")
    third_end = TEXT.index("\n\nAnother")
    hits = [hit(second, third_end, 0.9, best=1), hit(first, TEXT.index("Third") - 1, 0.8)]
    (quote,) = build_answer("wages?", hits, k=5, settings=Settings()).quotes
    assert (quote.start, quote.end) == (first, third_end)
    assert marks(quote, TEXT) == at(TEXT, "Third sentence gives wages.")


def test_offsets_count_characters_not_bytes():
    start = WIDE.index("The café")
    end = WIDE.index("\n\nA last")
    (quote,) = build_answer("prize?", [hit(start, end, 0.9, best=1, text=WIDE)], k=1,
                            settings=Settings()).quotes
    assert marks(quote, WIDE) == at(WIDE, "Its owner, Jürgen Müller, won the 🎉 Golden Bean in 北京.")
    assert quote.start == 22  # "Zürich’s café report" and the blank line, in characters


def test_low_relevance_abstains_and_offers_the_closest():
    hits = [hit(0, 40, 0.9, similarity=0.1, best=0)]
    answer = build_answer("Who won the marathon?", hits, k=3,
                          settings=Settings(abstain_threshold=0.35))
    assert answer.abstained and answer.quotes == () and answer.confidence == "none"
    assert len(answer.closest) == 1


def test_answers_are_graded_by_their_best_relevance():
    first, para = TEXT.index("First"), TEXT.index("Another")
    settings = Settings(abstain_threshold=0.26, confident_threshold=0.42)

    def graded(best_similarity, other_similarity):
        hits = [hit(first, first + 30, 0.9, similarity=best_similarity, best=0),
                hit(para, len(TEXT), 0.5, similarity=other_similarity, best=0)]
        return build_answer("q?", hits, k=5, settings=settings)

    answered = graded(0.6, 0.2)  # confident; the quote under 0.26 is left out
    assert answered.confidence == "answered" and not answered.abstained
    assert [q.text[:5] for q in answered.quotes] == ["First"]
    low = graded(0.3, 0.2)  # between the thresholds: every quote offered, best first
    assert low.confidence == "low" and not low.abstained
    assert [q.text[:5] for q in low.quotes] == ["First", "Anoth"]
    assert low.quotes[0].highlights  # the answering sentence is still marked
    none = graded(0.2, 0.1)
    assert none.confidence == "none" and none.abstained and none.quotes == ()
    assert len(none.closest) == 2


def test_no_hits_at_all_abstains():
    answer = build_answer("anything?", [], k=3, settings=Settings())
    assert answer.abstained and answer.quotes == () and answer.closest == ()


def test_highlight_skips_a_heading_and_marks_a_near_tie_too():
    heading, first, second, third = sentence_spans(0, TEXT.index("\n\nAnother"))
    sentences = (ScoredSpan(heading.start, heading.end, 0.99, 0.9),
                 ScoredSpan(first.start, first.end, 0.78, 0.5),
                 ScoredSpan(second.start, second.end, 0.80, 0.5),
                 ScoredSpan(third.start, third.end, 0.20, 0.1))
    spans = pick_highlights(sentences, TEXT, 0, margin=0.05)
    assert [TEXT[s.start:s.end] for s in spans] == [
        "First sentence is about ports.", "Second sentence names the union.",
    ]
    only_best = pick_highlights(sentences, TEXT, 0, margin=0.0)
    assert [TEXT[s.start:s.end] for s in only_best] == ["Second sentence names the union."]


def test_where_overlapping_spans_score_alike_only_what_they_share_is_marked():
    first, second, third = sentence_spans(0, TEXT.index("\n\nAnother"))[1:4]
    # The reader's span of a sentence read with the one before it, and that one alone.
    together = ScoredSpan(first.start, second.end, 0.80, 0.5)
    alone = ScoredSpan(first.start, first.end, 0.79, 0.5)
    after = ScoredSpan(third.start, third.end, 0.78, 0.5)
    spans = pick_highlights((alone, together, after), TEXT, 0, margin=0.05)
    assert [(s.start, s.end) for s in spans] == [(first.start, first.end),
                                                 (third.start, third.end)]
    # Far below it, the sentence alone does not answer: the two are marked together, once.
    alone = ScoredSpan(first.start, first.end, 0.30, 0.5)
    spans = pick_highlights((alone, together), TEXT, 0, margin=0.05)
    assert [(s.start, s.end) for s in spans] == [(first.start, second.end)]
    # Two such spans, close: the sentence both read is the one marked.
    later = ScoredSpan(second.start, third.end, 0.81, 0.5)
    spans = pick_highlights((together, later), TEXT, 0, margin=0.05)
    assert [(s.start, s.end) for s in spans] == [(second.start, second.end)]


def test_a_quote_carries_its_article_url():
    from dataclasses import replace

    h = hit(0, 40, 0.9, best=0)
    h = replace(h, passage=replace(h.passage, url="https://example.org/story"))
    answer = build_answer("ports?", [h], k=1, settings=Settings())
    assert answer.quotes[0].url == "https://example.org/story"
